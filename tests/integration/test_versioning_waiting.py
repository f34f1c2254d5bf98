"""What `describe` says of a pinned run whose work waits for a build with no
live worker: its next workflow task, and also an activity attempt that is
due on a task queue of the build whose workers are gone."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import pytest

from tests.apps.versioned import ACTIVITIES, V1, step
from tests.helpers import eventually
from tests.versioning_helpers import registered
from worker import Client, Worker, workflow

pytestmark = pytest.mark.integration
QUEUE = "shop"
SIDE = "side"


@workflow.defn(name="Aside", versioning_behavior="pinned")
class Aside:
    """One activity on the ``side`` task queue."""

    @workflow.run
    async def run(self) -> str:
        return await workflow.execute_activity(
            step, "aside", task_queue=SIDE, start_to_close_timeout=timedelta(seconds=10)
        )


async def test_an_activity_waiting_for_its_pinned_builds_gone_workers_is_said_to_wait(
    client: Client,
) -> None:
    """Build 1 polled "side" for activities, and its workers there stopped: a
    pinned run's activity on "side" waited for ever while describe said
    `waiting_for_poller: false` (only a waiting workflow task was looked at)."""
    side = Worker(client, task_queue=SIDE, activities=ACTIVITIES, deployment=("shop", "1"))
    async with side:
        await registered(client, "1")

        async def polls_side() -> bool:
            d = await client.describe_deployment("shop")
            return SIDE in d["versions"][0]["task_queues"]

        await eventually(polls_side, timeout=20, what="build 1 polls side")
    shop = Worker(
        client,
        task_queue=QUEUE,
        workflows=[*V1, Aside],
        activities=ACTIVITIES,
        deployment=("shop", "1"),
    )
    async with shop:
        await client.set_current_version("shop", "1", allow_no_pollers=True)
        h = await client.start_workflow("Aside", id="aside", task_queue=QUEUE)

        async def waiting() -> dict[str, object] | None:
            d = await h.describe()
            acts = d["pending_activities"]
            if acts and acts[0]["state"] == "scheduled" and d["versioning"]["waiting_for_poller"]:
                return dict(d["versioning"])
            return None

        view = await eventually(waiting, timeout=20, what="describe says the activity waits")
        assert "activity '1' (step) waits for a worker of shop:1 on task queue 'side'" in str(
            view["note"]
        )
        # a worker of the build on "side" again: it runs, and nothing waits
        async with Worker(client, task_queue=SIDE, activities=ACTIVITIES, deployment=("shop", "1")):
            assert await h.result(timeout=20) == "did aside"
        assert not (await h.describe())["versioning"]["waiting_for_poller"]


async def test_the_wait_note_dates_the_builds_workers_from_when_they_stopped(
    client: Client,
) -> None:
    """A pinned run's build lost its workers: the note said none had polled
    since the first poll of the last one (a poller's last poll is written at
    most every ten seconds), though it had polled until it stopped."""
    async with Worker(
        client, task_queue=QUEUE, workflows=V1, activities=ACTIVITIES, deployment=("shop", "1")
    ):
        await registered(client, "1")
        await client.set_current_version("shop", "1")
        h = await client.start_workflow("Order", 1, id="order", task_queue=QUEUE)
        assert await h.query("waiting") is True  # on build 1, waiting for `proceed`
        await asyncio.sleep(1.5)  # polls on after the first
    await h.signal("proceed")
    d = await client.describe_deployment("shop")
    pollers = d["versions"][0]["pollers"]
    stopped = max(p["stopped_at"] for p in pollers)
    # `deployment describe` sees it last when it stopped, too
    assert all(p["last_seen"] == p["stopped_at"] for p in pollers), pollers

    async def note() -> str | None:
        v = (await h.describe())["versioning"]
        return str(v["note"]) if v["waiting_for_poller"] else None

    text = await eventually(note, timeout=20, what="describe says the task waits")
    assert f"none has polled since {datetime.fromisoformat(stopped).isoformat()}" in text, (
        text,
        stopped,
    )
