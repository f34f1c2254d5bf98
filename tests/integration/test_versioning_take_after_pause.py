"""An activity take that waits for a pause holding the run starts nothing.

In a namespace with worker deployments the take holds the run (so that an
override moving it is seen) and so waits for any write of the run in flight.
It checked the run's status and pause flag as they were when its statement
began, before that wait: a pause that committed meanwhile was missed and an
attempt started on the paused run, which no new attempt may do.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from store import db
from tests.apps.versioned import V1
from tests.conftest import Region
from tests.helpers import eventually
from tests.versioning_helpers import QUEUE, registered
from tests.versioning_helpers import shop_worker as build
from worker import Client, Worker

pytestmark = pytest.mark.integration
WID = "paused-mid-take"


async def test_a_take_behind_a_pause_of_its_run_leaves_the_attempt_waiting(
    client: Client, region: Region
) -> None:
    async with build(client, "1"):
        await registered(client, "1")
        await client.set_current_version("shop", "1")
    conn = await db.connect(region.dsn)
    holder = await db.connect(region.dsn)
    try:

        async def locked_out(like: str) -> bool:
            n = await conn.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                "AND datname = current_database() AND query LIKE $1",
                like,
            )
            return bool(n)

        async def activity_states() -> list[Any]:
            rows = await conn.fetch("SELECT state FROM activities WHERE workflow_id = $1", WID)
            return [r["state"] for r in rows]

        # build 1 runs the run's first workflow task only: its activity waits for build 1
        async with Worker(client, task_queue=QUEUE, workflows=V1, deployment=("shop", "1")):
            h = await client.start_workflow("Order", 7, id=WID, task_queue=QUEUE)

            async def queued() -> bool:
                return await activity_states() == ["scheduled"]

            await eventually(queued, timeout=20, what="the activity task")
        tx = holder.transaction()
        await tx.start()
        # a write of the run in flight, ahead of the pause
        await holder.execute("SELECT 1 FROM executions WHERE workflow_id = $1 FOR UPDATE", WID)
        pause = asyncio.ensure_future(h.pause("look first"))
        await eventually(lambda: locked_out("%FOR UPDATE OF e%"), timeout=20, what="the pause")
        async with build(client, "1"):
            await eventually(lambda: locked_out("%FOR KEY SHARE%"), timeout=20, what="the take")
            await tx.commit()
            await pause

            async def take_went_on() -> bool:
                return not await locked_out("%FOR KEY SHARE%")

            await eventually(take_went_on, timeout=20, what="the take past the pause")
            await asyncio.sleep(0.5)  # an attempt it started would have run by now
            assert await activity_states() == ["scheduled"]
            assert (await h.describe())["execution"]["paused"]
            # nothing is lost: unpaused, the attempt runs
            await h.unpause("go on")
            await h.signal("proceed")
            assert await h.result(timeout=20) == "v1"
    finally:
        await holder.close()
        await conn.close()
