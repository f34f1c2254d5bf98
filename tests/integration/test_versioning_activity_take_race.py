"""An activity take that was under way when routing moved its run to another build.

An override or a `set-current` re-tags the run's waiting activity tasks for
the build the run now routes to, but skips a row a poll of the old build
has already locked to take. That poll then started the attempt on the old
build, which shows drained and may be retired. The take now checks the
run's routing once it holds the run, and a task that belongs elsewhere goes
there.
"""

from __future__ import annotations

from typing import Any

import pytest

from store import db
from tests.apps.versioned import ACTIVITIES, V1
from tests.conftest import Region
from tests.helpers import eventually
from tests.versioning_helpers import QUEUE, registered
from tests.versioning_helpers import shop_worker as build
from worker import Client, Worker, WorkflowHandle

pytestmark = pytest.mark.integration


def full_worker(client: Client, build_id: str) -> Worker:
    return Worker(
        client,
        task_queue=QUEUE,
        workflows=V1,
        activities=ACTIVITIES,
        deployment=("shop", build_id),
        identity=f"build-{build_id}",
    )


async def activity_row_waits(region: Region, wid: str, tag: str) -> None:
    """Wait until the run's activity task waits as a row tagged ``tag``."""
    conn = await db.connect(region.dsn)
    try:

        async def there() -> bool:
            rows = await conn.fetch(
                "SELECT build_id FROM tasks WHERE namespace = 'default' AND workflow_id = $1 "
                "AND kind = 'activity'",
                wid,
            )
            return [r["build_id"] for r in rows] == [tag]

        await eventually(there, timeout=20, what=f"an activity task of {wid} for {tag}")
    finally:
        await conn.close()


async def while_a_poll_holds_the_row(region: Region, wid: str, change: Any) -> Any:
    """Run ``change`` while a poll of the old build holds the run's activity task."""
    holder = await db.connect(region.dsn)
    try:
        async with holder.transaction():
            locked = await holder.fetch(
                "SELECT build_id FROM tasks WHERE namespace = 'default' AND workflow_id = $1 "
                "AND kind = 'activity' FOR UPDATE",
                wid,
            )
            assert [r["build_id"] for r in locked] == ["shop:1"]
            return await change()
    finally:
        await holder.close()


async def started_by(h: WorkflowHandle) -> list[str]:
    return [
        e["attributes"]["identity"]
        for e in await h.history()
        if e["event_type"] == "ActivityTaskStarted"
    ]


async def test_an_activity_a_poll_of_the_old_build_was_taking_goes_to_the_overrides_build(
    client: Client, region: Region
) -> None:
    async with build(client, "1"), build(client, "2"):
        await registered(client, "1", "2")
        await client.set_current_version("shop", "1")
    # build 1 runs the run's first workflow task only: its activity waits for build 1
    async with Worker(client, task_queue=QUEUE, workflows=V1, deployment=("shop", "1")):
        h = await client.start_workflow("Order", 7, id="raced-act", task_queue=QUEUE)
        await activity_row_waits(region, h.id, "shop:1")

    async def move() -> Any:
        return await h.update_versioning("pinned", version="shop:2", reason="move")

    res = await while_a_poll_holds_the_row(region, h.id, move)
    assert res["next_task_version"] == "shop:2" and res["tasks_rerouted"] == 0
    async with full_worker(client, "1"), full_worker(client, "2"):

        async def ran() -> list[str] | None:
            got = await started_by(h)
            return got or None

        assert await eventually(ran, timeout=20, what="the activity started") == ["build-2"]
        await h.signal("proceed")
        assert await h.result(timeout=20) == "v1"
    assert await started_by(h) == ["build-2", "build-2"]


async def test_an_auto_upgrade_runs_activity_follows_set_current_past_a_poll_taking_it(
    client: Client, region: Region
) -> None:
    async with build(client, "1"), build(client, "2"):
        await registered(client, "1", "2")
        await client.set_current_version("shop", "1")
    async with Worker(client, task_queue=QUEUE, workflows=V1, deployment=("shop", "1")):
        h = await client.start_workflow("Flow", id="raced-flow", task_queue=QUEUE)
        await h.signal("next", "x")
        await activity_row_waits(region, h.id, "shop:1")

    async def move() -> Any:
        # its workers stopped: they start once it is current
        return await client.set_current_version("shop", "2", allow_no_pollers=True)

    res = await while_a_poll_holds_the_row(region, h.id, move)
    assert res["changed"] and res["tasks_rerouted"] == 0
    async with full_worker(client, "1"), full_worker(client, "2"):

        async def ran() -> list[str] | None:
            got = await started_by(h)
            return got or None

        assert await eventually(ran, timeout=20, what="the activity started") == ["build-2"]
        await h.signal("finish")
        assert await h.result(timeout=20) == ["did x"]
