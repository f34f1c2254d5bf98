"""``workflow.continue_as_new(search_attributes=..., memo=...)``: the new run's
search attributes and memo in place of the old run's, as Temporal's
continue-as-new takes them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest

from tests.conftest import Region
from tests.helpers import eventually
from worker import Client, DataConverter, Worker, workflow
from worker.codec import AesGcmCodec, generate_key

pytestmark = pytest.mark.integration
QUEUE = "can-attributes"


@workflow.defn
class Stages:
    @workflow.run
    async def run(self, stage: int, replace: dict[str, Any] | None) -> dict[str, Any]:
        if stage == 1:
            if replace is None:
                workflow.continue_as_new(2, None)  # keeps this run's attributes
            workflow.continue_as_new(2, None, search_attributes=replace)
        return dict(workflow.info().search_attributes)


@workflow.defn
class Memos:
    @workflow.run
    async def run(self, stage: int, memo: dict[str, Any] | None) -> dict[str, Any]:
        if stage == 1:
            if memo is None:
                workflow.continue_as_new(2, None)
            workflow.continue_as_new(2, None, memo=memo)
        return dict(workflow.info().memo)


@workflow.defn
class BadStages:
    @workflow.run
    async def run(self, stage: int) -> str:
        if stage == 1:
            workflow.continue_as_new(2, search_attributes={"Unregistered": "x"})
        return "never"


async def ids(client: Client, query: str) -> list[str]:
    return [e.workflow_id async for e in client.list_workflows(query)]


async def test_a_continue_as_new_gives_its_run_the_attributes_it_names(client: Client) -> None:
    for name, kind in (("Stage", "Keyword"), ("Amount", "Int"), ("DueAt", "Datetime")):
        await client.add_search_attribute(name, kind)
    start = {"Stage": "first", "Amount": 1}
    due = datetime(2026, 12, 1, 12, tzinfo=UTC)
    async with Worker(client, task_queue=QUEUE, workflows=[Stages, BadStages]):
        kept = await client.start_workflow(
            Stages, 1, None, id="kept", task_queue=QUEUE, search_attributes=start
        )
        assert await kept.result() == start
        replaced = await client.start_workflow(
            Stages,
            1,
            {"Stage": "second", "DueAt": due, "Amount": None},
            id="replaced",
            task_queue=QUEUE,
            search_attributes=start,
        )
        # in place of the old run's (Amount is not carried), a datetime as RFC 3339
        second = {"Stage": "second", "DueAt": "2026-12-01T12:00:00Z"}
        assert await replaced.result() == second
        cleared = await client.start_workflow(
            Stages, 1, {}, id="cleared", task_queue=QUEUE, search_attributes=start
        )
        assert await cleared.result() == {}
        assert (await replaced.describe())["execution"]["search_attributes"] == second
        assert await ids(client, "Stage = 'second' AND ExecutionStatus = 'Completed'") == [
            "replaced"
        ]
        assert await ids(client, "Stage = 'first' AND ExecutionStatus = 'ContinuedAsNew'") == [
            "cleared",
            "replaced",
            "kept",
        ]
        assert await ids(client, "Stage = 'first' AND ExecutionStatus = 'Completed'") == ["kept"]

        # an attribute the namespace does not register fails the task, naming it,
        # and the run goes on as it was
        bad = await client.start_workflow(BadStages, 1, id="bad", task_queue=QUEUE)

        async def failed_task() -> dict[str, Any] | None:
            d = await bad.describe()
            return (d.get("pending_workflow_task") or {}).get("last_failure")

        failure = await eventually(failed_task, timeout=30, what="the task failed")
        assert "Unregistered" in failure["message"], failure
        d = await bad.describe()
        assert d["execution"]["status"] == "running"
        assert d["execution"]["run_id"] == bad.run_id


@pytest.mark.parametrize("codec", [False, True])
async def test_a_continue_as_new_gives_its_run_the_memo_it_names(
    client: Client, region: Region, codec: bool
) -> None:
    if codec:
        key = generate_key()
        converter = DataConverter(codec=AesGcmCodec(keys={"k": key}, active_key_id="k"))
        client = await Client.connect(region.url, namespace="default", data_converter=converter)
    async with Worker(client, task_queue=QUEUE, workflows=[Memos]):
        first = {"team": "a", "n": 1}
        kept = await client.start_workflow(
            Memos, 1, None, id="m-kept", task_queue=QUEUE, memo=first
        )
        assert await kept.result() == first
        given = {"team": "b", "when": [1, 2]}
        replaced = await client.start_workflow(
            Memos, 1, given, id="m-replaced", task_queue=QUEUE, memo=first
        )
        assert await replaced.result() == given
        assert (await replaced.describe())["execution"]["memo"] == given
    if codec:
        await client.close()
    conn = await asyncpg.connect(region.dsn)
    try:
        stored = await conn.fetchval(
            "SELECT memo::text FROM executions WHERE workflow_id = 'm-replaced' "
            "AND status = 'completed'"
        )
    finally:
        await conn.close()
    # stored as a start's memo is: payloads, encrypted with a codec
    assert '"team"' in stored and ("binary/encrypted" in stored) is codec, stored
