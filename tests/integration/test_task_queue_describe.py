"""`baton task-queue describe Q` (SDK `describe_task_queue`, HTTP `GET
.../task-queues/Q`): the workers polling a task queue, versioned or not, with
their last poll, and its backlog, where nothing listed the pollers of an
unversioned queue."""

from __future__ import annotations

import asyncio
import json
import sys

import httpx
import pytest

from tests.apps.workflows import ALL_ACTIVITIES, ThreeSteps
from tests.conftest import Region
from tests.helpers import baton_json, eventually
from worker import Client, InvalidArgumentError, Worker

pytestmark = pytest.mark.integration
QUEUE = "described/queue"  # a '/' travels as %2F


async def test_describe_lists_the_pollers_and_the_backlog(client: Client, region: Region) -> None:
    # nobody polls yet: two workflow tasks wait
    for i in range(2):
        await client.start_workflow(ThreeSteps, i, id=f"waits-{i}", task_queue=QUEUE)
    await asyncio.sleep(0.2)
    before = await client.describe_task_queue(QUEUE)
    assert before["pollers"] == [] and before["task_queue"] == QUEUE
    assert before["backlog"]["workflow"]["count"] == 2
    assert before["backlog"]["workflow"]["oldest_age_s"] >= 0.1
    assert before["backlog"]["activity"] == {"count": 0, "oldest_age_s": None}

    async with Worker(
        client,
        task_queue=QUEUE,
        workflows=[ThreeSteps],
        activities=ALL_ACTIVITIES,
        identity="described-worker",
    ):
        for i in range(2):
            await client.get_workflow_handle(f"waits-{i}").result(timeout=30)

        async def both_kinds() -> dict[str, object] | None:
            d = await client.describe_task_queue(QUEUE)
            kinds = {p["kind"] for p in d["pollers"] if p["identity"] == "described-worker"}
            return d if kinds == {"workflow", "activity"} else None

        d = await eventually(both_kinds, what="the worker's polls of both kinds")
        assert d["backlog"]["workflow"]["count"] == 0
        for p in d["pollers"]:
            assert p["live"] is True and p["stopped_at"] is None
            assert p["deployment"] is None and p["build_id"] is None
            assert p["last_poll_time"] >= p["first_poll_time"]

        # the HTTP route, the queue's '/' sent as %2F
        async with httpx.AsyncClient() as http:
            answer = await http.get(
                f"{region.url}/api/v1/namespaces/default/task-queues/described%2Fqueue"
            )
        assert answer.status_code == 200, answer.text
        assert {p["kind"] for p in answer.json()["pollers"]} == {"workflow", "activity"}

        # the CLI, as JSON and as a table
        code, out, err = await baton_json(region.config_path, "task-queue", "describe", QUEUE)
        assert code == 0, err
        assert {p["identity"] for p in out["pollers"]} == {"described-worker"}
        assert out["backlog"]["activity"]["count"] == 0
        assert all(p["last_access_time"] == p["last_poll_time"] for p in out["pollers"])
        # as Temporal's CLI names it too, and not both ways at once
        code, same, err = await baton_json(
            region.config_path, "task-queue", "describe", "-t", QUEUE
        )
        assert code == 0 and same["task_queue"] == QUEUE, err
        code, both, _ = await baton_json(
            region.config_path, "task-queue", "describe", QUEUE, "--task-queue", QUEUE
        )
        assert code == 2 and both["error"]["code"] == "USAGE_ERROR"
        proc = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "ops.cli", "--config", str(region.config_path)),
            *("task-queue", "describe", QUEUE),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        text, _ = await proc.communicate()
        assert proc.returncode == 0 and b"described-worker" in text

    # it said it stopped as it shut down, unversioned as it is
    after = (await client.describe_task_queue(QUEUE))["pollers"]
    assert {p["kind"] for p in after} == {"workflow", "activity"}
    assert all(p["live"] is False and p["stopped_at"] for p in after), after

    # another queue: nobody
    other = await client.describe_task_queue("nobody-polls")
    assert other["pollers"] == [] and other["backlog"]["workflow"]["count"] == 0
    json.dumps(other)


async def test_describe_refuses_an_empty_queue_name(client: Client, region: Region) -> None:
    with pytest.raises(InvalidArgumentError):
        await client.describe_task_queue("")
    code, out, _ = await baton_json(region.config_path, "task-queue", "describe", "")
    assert code == 2 and out["error"]["code"] == "USAGE_ERROR"


async def test_a_versioned_worker_is_listed_with_its_version(client: Client) -> None:
    async with Worker(
        client,
        task_queue="versioned-queue",
        workflows=[ThreeSteps],
        activities=ALL_ACTIVITIES,
        identity="v-worker",
        deployment=("shop", "7"),
        default_versioning_behavior="pinned",
    ):

        async def listed() -> list[dict[str, object]] | None:
            d = await client.describe_task_queue("versioned-queue")
            return d["pollers"] if len(d["pollers"]) == 2 else None

        pollers = await eventually(listed, what="the versioned worker's polls")
    assert {(p["deployment"], p["build_id"]) for p in pollers} == {("shop", "7")}
    # it said it stopped as it shut down
    after = (await client.describe_task_queue("versioned-queue"))["pollers"]
    assert all(p["live"] is False and p["stopped_at"] for p in after), after


async def test_a_stop_report_names_both_parts_of_a_version_or_neither(region: Region) -> None:
    async with httpx.AsyncClient() as http:
        url = f"{region.url}/api/v1/namespaces/default/pollers/stopped"
        half = await http.post(url, json={"identity": "w", "deployment": "shop"})
        assert half.status_code == 400, half.text
        assert half.json()["error"]["code"] == "INVALID_ARGUMENT"
        unversioned = await http.post(url, json={"identity": "w"})
        assert unversioned.status_code == 200, unversioned.text
