"""A trigger and a backfill name the workflows they start, from the SDK and
the CLI, so a caller can follow the run it asked for (Temporal users look for
the workflow id a trigger started)."""

from __future__ import annotations

import asyncio

import pytest

from tests.apps.scheduled import Hold, Report
from tests.conftest import Region
from tests.helpers import baton_json, eventually
from tests.integration.test_schedules import QUEUE, settled, started_ids, worker
from worker import Client
from worker.errors import WorkflowNotFoundError

pytestmark = pytest.mark.integration


async def _yearly(client: Client, workflow: type) -> dict[str, object]:
    return await client.schedule_definition(
        workflow=workflow, task_queue=QUEUE, args=["tick"], cron="0 0 1 1 *"
    )


async def result_of(client: Client, workflow_id: str) -> object:
    """The result of the run a schedule starts a moment after it was asked to."""

    async def started() -> bool:
        try:
            await client.get_workflow_handle(workflow_id).describe()
        except WorkflowNotFoundError:
            return False
        return True

    await eventually(started, what=f"the run {workflow_id}")
    return await client.get_workflow_handle(workflow_id).result(timeout=30)


async def test_a_trigger_names_the_run_it_starts_and_its_retry_names_the_same(
    clock_client: Client,
) -> None:
    """Regression: a trigger answered only ``triggered: true``; its run's id
    (``ID-<time>-trigger-<tag>``) was drawn later by the schedule, so the
    caller could not tell which run was its own."""
    async with worker(clock_client):
        h = await clock_client.create_schedule("poked", await _yearly(clock_client, Report))
        await settled(clock_client, h)
        first = await h.trigger(request_id="poke-1")
        wid = first["workflow_id"]
        assert wid.startswith("poked-") and "-trigger-" in wid, first
        assert wid.startswith(f"poked-{first['nominal']}"), first
        # its own run, started under that id and finished
        result = await result_of(clock_client, wid)
        assert isinstance(result, dict) and result["label"] == "tick"
        # the retry (a lost answer) acts once and names the same run
        again = await h.trigger(request_id="poke-1")
        assert again["workflow_id"] == wid
        other = await h.trigger(request_id="poke-2")
        assert other["workflow_id"] != wid
        await result_of(clock_client, other["workflow_id"])
        assert await started_ids(clock_client, "poked") == sorted([wid, other["workflow_id"]])
        await settled(clock_client, h)
        recent = (await h.describe())["recent"]
        assert [(a["kind"], a["workflow_id"]) for a in recent] == [
            ("trigger", wid),
            ("trigger", other["workflow_id"]),
        ]


async def test_a_trigger_buffered_behind_a_running_action_starts_the_run_it_named(
    clock_client: Client,
) -> None:
    """With buffer-one the named run starts once the running one closes."""
    async with worker(clock_client):
        sched = await _yearly(clock_client, Hold)
        sched["policy"] = {"overlap": "buffer-one"}
        h = await clock_client.create_schedule("held", sched, paused=True, note="off")
        first = (await h.trigger())["workflow_id"]
        second = (await h.trigger())["workflow_id"]
        await eventually(lambda: started_ids(clock_client, "held"), what="the first run")
        assert await started_ids(clock_client, "held") == [first]
        await clock_client.get_workflow_handle(first).signal("release")

        async def both() -> bool:
            return await started_ids(clock_client, "held") == sorted([first, second])

        await eventually(both, what="the buffered trigger's run")
        await clock_client.get_workflow_handle(second).signal("release")
        assert await clock_client.get_workflow_handle(second).result(timeout=30) == "tick"


async def test_a_backfill_names_the_runs_of_its_fires(
    clock_client: Client, clock_region: Region
) -> None:
    async with worker(clock_client):
        sched = await clock_client.schedule_definition(
            workflow=Report, task_queue=QUEUE, args=["tick"], cron="0 * * * *"
        )
        h = await clock_client.create_schedule("filled", sched)
        res = await h.backfill("2026-01-01T00:00:00Z", "2026-01-01T02:30:00Z")
        names = ["filled-2026-01-01T00:00:00Z", "filled-2026-01-01T01:00:00Z"]
        names.append("filled-2026-01-01T02:00:00Z")
        assert (res["fires"], res["workflow_ids"]) == (3, names)

        async def three() -> bool:
            return await started_ids(clock_client, "filled") == names

        await eventually(three, what="the backfill's runs")
        code, out, err = await baton_json(
            clock_region.config_path,
            *("schedule", "backfill", "filled", "--start", "2026-01-01T01:00:00Z"),
            *("--end", "2026-01-01T01:00:00Z"),
        )
        assert code == 0, err
        assert out["workflow_ids"] == [names[1]]
        code, out, err = await baton_json(clock_region.config_path, "schedule", "trigger", "filled")
        assert code == 0, err
        assert "-trigger-" in out["workflow_id"] and out["request_id"], out
        await result_of(clock_client, out["workflow_id"])


async def test_triggers_that_wait_behind_a_started_task_are_named_too(
    clock_client: Client,
) -> None:
    """Regression: a trigger that came while the schedule's workflow task ran
    (its signal buffered, not yet in history) answered ``workflow_id: None``."""
    async with worker(clock_client):
        sched = await _yearly(clock_client, Report)
        sched["policy"] = {"overlap": "allow-all"}
        # the system worker polls the namespace already: the new schedule's
        # first task runs at once, and the triggers land while it runs
        await settled(clock_client, await clock_client.create_schedule("warm", sched))
        h = await clock_client.create_schedule("busy", sched)
        answers = []
        for _ in range(6):
            answers += await asyncio.gather(*(h.trigger() for _ in range(3)))
        named = [a["workflow_id"] for a in answers]
        assert all(named) and len(set(named)) == len(named), answers

        async def all_started() -> bool:
            return await started_ids(clock_client, "busy") == sorted(named)

        await eventually(all_started, what="every trigger's named run")
