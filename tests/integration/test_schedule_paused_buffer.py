"""A schedule's own fire waiting in its buffer (``buffer-one``, ``buffer-all``)
waits for the unpause too, as the README says a paused schedule's fires do
(and as Temporal holds them); a trigger behind it still acts."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from scheduler.policy import action_workflow_id
from tests.apps.scheduled import Hold
from tests.helpers import eventually
from tests.integration.test_schedules import (
    align,
    definition,
    fire,
    settled,
    started_ids,
    worker,
)
from worker import Client, ScheduleHandle

pytestmark = pytest.mark.integration


async def _state(h: ScheduleHandle, **want: Any) -> dict[str, Any]:
    async def reached() -> dict[str, Any] | None:
        d = await h.describe()
        ok = d["pending_signals"] == 0 and all(d[k] == v for k, v in want.items())
        return d if ok else None

    return await eventually(reached, what=f"schedule {h.id} with {want}")


async def test_a_buffered_fire_waits_for_the_unpause(clock_client: Client) -> None:
    """Regression: the fire started as soon as the running action closed,
    paused or not."""
    async with worker(clock_client):
        sched = await definition(clock_client, Hold, {"overlap": "buffer-one"}, cron="0 * * * *")
        await align(clock_client, timedelta(hours=1))
        h = await clock_client.create_schedule("held", sched)
        first = action_workflow_id("held", await fire(clock_client, h))
        second = action_workflow_id("held", await fire(clock_client, h))
        await _state(h, buffered=1, running_count=1)
        await h.pause("deploy window")
        await _state(h, paused=True)
        await clock_client.get_workflow_handle(first).signal("release")
        await _state(h, running_count=0)
        await settled(clock_client, h)
        d = await h.describe()
        assert (d["paused"], d["buffered"]) == (True, 1), d
        assert await started_ids(clock_client, "held") == [first]

        # a trigger acts while paused, ahead of the fire that waits
        trigger = (await h.trigger(overlap="buffer-all"))["workflow_id"]
        await _state(h, running_count=1)
        assert await started_ids(clock_client, "held") == sorted([first, trigger])
        await clock_client.get_workflow_handle(trigger).signal("release")
        await _state(h, running_count=0, buffered=1)

        await h.unpause()
        await _state(h, paused=False, buffered=0, running_count=1)
        assert await started_ids(clock_client, "held") == sorted([first, second, trigger])
        await clock_client.get_workflow_handle(second).signal("release")
        assert await clock_client.get_workflow_handle(second).result(timeout=30) == "tick"
