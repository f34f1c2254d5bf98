"""A take that was under way when an override moved its run to another build.

An override re-tags the run's waiting task rows for the build it names, but
skips a row a poll of the old build has already locked to take. That poll
then started the task on the old build: a run just pinned to shop:2 ran its
next task (here: to the end) on shop:1. The take now checks the run's
routing once it holds the run, and a task that belongs elsewhere goes there.
"""

from __future__ import annotations

import pytest

from store import db
from tests.conftest import Region
from tests.versioning_helpers import QUEUE, registered
from tests.versioning_helpers import shop_worker as build
from worker import Client

pytestmark = pytest.mark.integration


async def test_a_task_a_poll_of_the_old_build_was_taking_goes_to_the_overrides_build(
    client: Client, region: Region
) -> None:
    async with build(client, "1"), build(client, "2"):
        await registered(client, "1", "2")
        await client.set_current_version("shop", "1")
    # no worker now: the run's first task waits as a row tagged for build 1
    h = await client.start_workflow("Flow", id="raced", task_queue=QUEUE)
    holder = await db.connect(region.dsn)
    try:
        async with holder.transaction():
            # a poll of build 1 holds the row, taking it, while the override runs
            locked = await holder.fetch(
                "SELECT build_id FROM tasks WHERE namespace = 'default' AND workflow_id = $1 "
                "AND kind = 'workflow' FOR UPDATE",
                "raced",
            )
            assert [r["build_id"] for r in locked] == ["shop:1"]
            res = await h.update_versioning("pinned", version="shop:2", reason="move")
            assert res["next_task_version"] == "shop:2" and res["tasks_rerouted"] == 0
        rows = await holder.fetch(
            "SELECT build_id FROM tasks WHERE namespace = 'default' AND workflow_id = $1",
            "raced",
        )
        assert [r["build_id"] for r in rows] == ["shop:1"]  # the row the poll was taking
    finally:
        await holder.close()
    await h.signal("finish")  # the task that finishes the run: where does it run?
    async with build(client, "1"), build(client, "2"):
        assert await h.result(timeout=20) == []
    events = await h.history()
    ran = [
        e["attributes"]["worker_version"]
        for e in events
        if e["event_type"] == "WorkflowTaskCompleted"
    ]
    assert ran == ["shop:2"], [(e["event_type"], e["attributes"]) for e in events]
