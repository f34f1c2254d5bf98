"""A reset of a run an earlier release started (its start event names no
original run): the kept events replay with the seed that run drew with."""

from __future__ import annotations

import uuid

import asyncpg
import pytest

from tests.conftest import Region
from tests.helpers import eventually
from tests.integration.test_reset_updates import QUEUE, DrawsIds, echo_id
from worker import Client, Worker

pytestmark = pytest.mark.integration


async def test_a_reset_of_a_run_an_earlier_release_started_replays_its_ids(
    region: Region, client: Client
) -> None:
    async with Worker(
        client,
        task_queue=QUEUE,
        workflows=[DrawsIds],
        activities=[echo_id],
        max_cached_workflows=0,
    ):
        h = await client.start_workflow(DrawsIds, id="draws-old", task_queue=QUEUE)

        async def waiting() -> bool:
            kinds = [e["event_type"] for e in await h.history()]
            return kinds.count("WorkflowTaskCompleted") >= 2

        await eventually(waiting, what="the activity's result taken")
        await h.signal(DrawsIds.release)
        before = await h.result(timeout=30)
        assert h.run_id is not None
        # the start event as an earlier release wrote it
        conn = await asyncpg.connect(region.dsn)
        try:
            await conn.execute(
                "UPDATE history_events SET attributes = attributes - 'original_run_id' "
                "WHERE namespace = 'default' AND workflow_id = $1 AND run_id = $2 "
                "AND event_id = 1",
                h.id,
                uuid.UUID(h.run_id),
            )
        finally:
            await conn.close()
        completed = [
            e["event_id"] for e in await h.history() if e["event_type"] == "WorkflowTaskCompleted"
        ]
        new_run = await h.reset(event_id=completed[1], reason="again", reapply="none")
        reset = client.get_workflow_handle("draws-old", run_id=new_run)

        async def reset_waiting() -> list[str] | None:
            ids = await reset.query(DrawsIds.ids)
            return ids if ids else None

        # the id the kept history handed its activity, as the old run drew it
        assert await eventually(reset_waiting, what="the reset run") == [before["first"]]
        await reset.signal(DrawsIds.release)
        after = await reset.result(timeout=30)
        assert (after["first"], after["echoed"]) == (before["first"], before["first"])
