"""An operator moving paused runs between builds: `unpause --build-id` and
`--to-current` check the build as an override does, the build a run leaves
says when it drained, and a batch override counts a run already as asked as
skipped.

Builds are in-process Workers of the ``shop`` deployment (see
``tests/apps/versioned.py``).
"""

from __future__ import annotations

import asyncpg
import pytest

from tests.apps.versioned import ACTIVITIES, V2
from tests.conftest import Region
from tests.helpers import eventually
from tests.versioning_helpers import registered
from tests.versioning_helpers import shop_worker as build
from worker import Client, Worker
from worker.errors import DeploymentNotFoundError, InvalidArgumentError

pytestmark = pytest.mark.integration
QUEUE = "shop"


async def kinds(client: Client, wid: str) -> list[str]:
    return [e["event_type"] for e in await client.get_workflow_handle(wid).history()]


async def test_unpause_onto_a_build_that_does_not_poll_the_runs_queue_is_refused(
    client: Client,
) -> None:
    """`unpause --build-id 2` (or `--to-current` with 2 current) of a run of
    task queue "shop" was accepted though build 2's workers poll only "mail":
    the run was unpaused in name only, its tasks waiting on "shop" for ever.
    `update-versioning --pinned` refuses that build; unpause now does too, and
    nothing is recorded."""
    mail = Worker(
        client, task_queue="mail", workflows=V2, activities=ACTIVITIES, deployment=("shop", "2")
    )
    async with build(client, "1"), mail:
        await registered(client, "1", "2")
        await client.set_current_version("shop", "1")
        h = await client.start_workflow("Flow", id="held", task_queue=QUEUE)

        async def first_task() -> bool:
            return "WorkflowTaskCompleted" in await kinds(client, h.id)

        await eventually(first_task, timeout=20, what="the first task")
        await h.pause("look first")
        before = await kinds(client, h.id)
        with pytest.raises(InvalidArgumentError, match="not the run's 'shop'"):
            await h.unpause("onto the fix", build_id="2")
        await client.set_current_version("shop", "2", allow_no_pollers=True)
        with pytest.raises(InvalidArgumentError, match="not the run's 'shop'"):
            await h.unpause("onto the fix", to_current=True)
        d = await h.describe()
        assert d["execution"]["paused"] and d["versioning"]["override"] is None
        assert await kinds(client, h.id) == before
        # onto a build of its queue: unpaused and runs there, as the answer says
        res = await h.unpause("onto build 1", build_id="1")
        assert res["changed"] and res["next_task_version"] == "shop:1"
        await h.signal("finish")
        assert await h.result(timeout=20) == []


async def test_a_build_an_unpause_moved_the_last_pinned_run_off_says_when_it_drained(
    client: Client,
) -> None:
    """An unpause onto another build leaves the old one as an override does:
    the old build showed `drained` with no `drained_since` (or the time of an
    older close), where an override recorded when the run left."""
    async with build(client, "1"), build(client, "2"):
        await registered(client, "1", "2")
        await client.set_current_version("shop", "1")
        h = await client.start_workflow("Order", 1, id="moved", task_queue=QUEUE)

        async def waiting() -> bool:
            return bool(await h.query("waiting"))

        await eventually(waiting, timeout=20, what="the first step")
        await client.set_current_version("shop", "2")
        await h.pause("deploy the fix")
        await h.unpause("onto the fix", build_id="2")
        d = await client.describe_deployment("shop")
        old = next(v for v in d["versions"] if v["build_id"] == "1")
        assert (old["status"], old["open_pinned"]) == ("drained", 0)
        assert old["drained_since"] is not None
        await h.signal("proceed")
        assert await h.result(timeout=20) == "v2"


async def test_a_batch_override_counts_a_run_already_so_as_skipped(client: Client) -> None:
    """Clearing the override of runs that have none counted each as done; as a
    pause of a paused run, a run already as asked is skipped."""
    async with build(client, "1"):
        await registered(client, "1")
        await client.set_current_version("shop", "1")
        pinned = await client.start_workflow("Flow", id="b-pinned", task_queue=QUEUE)
        plain = await client.start_workflow("Flow", id="b-plain", task_queue=QUEUE)
        await pinned.update_versioning("pinned", version="shop:1")
        job = await client.start_batch(
            "WorkflowId STARTS_WITH 'b-'",
            "update-versioning",
            reason="clear",
            params={"override": None},
            rps=100,
        )

        async def ended() -> bool:
            return (await client.describe_batch(job["job_id"]))["state"] != "running"

        await eventually(ended, timeout=60, what="the batch")
        res = await client.describe_batch(job["job_id"])
        assert (res["state"], res["done"], res["skipped"], res["failed"]) == (
            "completed",
            1,
            1,
            0,
        )
        assert (await pinned.describe())["versioning"]["override"] is None
        for h in (pinned, plain):
            await h.signal("finish")
            assert await h.result(timeout=20) == []


async def test_a_batch_unpause_onto_a_build_no_deployment_has_is_refused_before_it_is_stored(
    client: Client,
) -> None:
    """`batch start --op unpause --build-id 9` was stored and run: a durable job
    that failed on every paused run it matched, and `batch start` exited 0,
    where an override batch onto a missing build is refused at once."""
    async with build(client, "1"):
        await registered(client, "1")
        await client.set_current_version("shop", "1")
        h = await client.start_workflow("Flow", id="held-1", task_queue=QUEUE)
        await h.pause("hold")
        with pytest.raises(DeploymentNotFoundError, match="has a build '9'"):
            await client.start_batch(
                "WorkflowId = 'held-1'", "unpause", reason="r", params={"build_id": "9"}
            )
        assert await client.list_batches() == []
        assert (await h.describe())["execution"]["paused"]
        job = await client.start_batch(
            "WorkflowId = 'held-1'", "unpause", reason="r", params={"build_id": "1"}, rps=100
        )

        async def unpaused() -> bool:
            d = await client.describe_batch(job["job_id"])
            return (d["state"], d["done"]) == ("completed", 1)

        await eventually(unpaused, timeout=30, what="the batch unpaused the run")
        await h.signal("finish")
        assert await h.result(timeout=20) == []


async def test_an_unpause_onto_another_build_takes_the_waiting_task_off_the_old_one(
    client: Client, region: Region
) -> None:
    """A pinned run's workflow task waited for build 1, whose workers were gone;
    `unpause --build-id 2` gave build 2 a task of its own but left the waiting
    one tagged for build 1, where a worker of 1 coming back would take it (and
    run the run's next step on the build it was moved off)."""
    async with build(client, "1"), build(client, "2"):
        await registered(client, "1", "2")
        await client.set_current_version("shop", "1")
        h = await client.start_workflow("Order", 1, id="moved-off", task_queue=QUEUE)

        async def waiting() -> bool:
            return bool(await h.query("waiting"))

        await eventually(waiting, timeout=20, what="the first step")
    # no worker of either build now: the task waits where routing put it
    await h.signal("proceed")
    await h.pause("build 1 is gone")
    await h.unpause("onto build 2", build_id="2")
    conn = await asyncpg.connect(region.dsn)
    try:
        tags = await conn.fetch("SELECT build_id FROM tasks WHERE workflow_id = 'moved-off'")
    finally:
        await conn.close()
    assert tags and {r["build_id"] for r in tags} == {"shop:2"}
    async with build(client, "2"):
        assert await h.result(timeout=20) == "v2"
