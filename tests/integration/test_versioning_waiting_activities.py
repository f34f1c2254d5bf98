"""`deployment describe` counts runs whose activity waits with no poller.

A version's `waiting_no_poller` says how many runs wait for a worker of it
that is gone. It counted pinned runs whose next workflow task waited, and no
run whose due activity attempt waited, though that run is as stuck: a build
retired while its runs still had activities to run showed nothing waiting.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.apps.versioned import ACTIVITIES, V1
from tests.helpers import eventually
from tests.versioning_helpers import QUEUE, registered
from tests.versioning_helpers import shop_worker as build
from worker import Client, Worker

pytestmark = pytest.mark.integration


async def waiting(client: Client, build_id: str) -> int:
    d = await client.describe_deployment("shop")
    v = next(v for v in d["versions"] if v["build_id"] == build_id)
    return int(v["waiting_no_poller"])


async def test_a_run_whose_activity_waits_for_a_gone_build_counts_as_waiting(
    client: Client,
) -> None:
    async with build(client, "1"), build(client, "2"):
        await registered(client, "1", "2")
        await client.set_current_version("shop", "1")
    # build 1 runs workflow tasks only, then goes: the pinned run's activity waits
    async with Worker(client, task_queue=QUEUE, workflows=V1, deployment=("shop", "1")):
        h = await client.start_workflow("Order", 3, id="stuck-act", task_queue=QUEUE)

        async def scheduled() -> bool:
            events = await h.history()
            return any(e["event_type"] == "ActivityTaskScheduled" for e in events)

        await eventually(scheduled, timeout=20, what="the activity scheduled")
    view: dict[str, Any] = (await h.describe())["versioning"]
    assert view["waiting_for_poller"] and "activity" in view["note"]
    async with build(client, "2"):  # another build polls the queue: the run still waits
        assert await waiting(client, "1") == 1
        assert await waiting(client, "2") == 0
    await h.pause("look first")
    assert await waiting(client, "1") == 0  # it waits for an unpause
    await h.unpause()
    assert await waiting(client, "1") == 1
    async with Worker(
        client, task_queue=QUEUE, workflows=V1, activities=ACTIVITIES, deployment=("shop", "1")
    ):

        async def taken() -> bool:
            return await waiting(client, "1") == 0

        await eventually(taken, timeout=20, what="nothing waits once build 1 is back")
        await h.signal("proceed")
        assert await h.result(timeout=20) == "v1"
