"""A buffering schedule (``buffer-one``, ``buffer-all``) starts no more actions
than ``limited_actions``: the fires waiting in its buffer are actions promised,
so a fire the limit has no room for is neither buffered nor started (as
Temporal's remaining actions are taken before a buffered start)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from scheduler.policy import action_workflow_id
from tests.apps.scheduled import Hold
from tests.helpers import eventually
from tests.integration.test_schedules import (
    advance_to,
    align,
    definition,
    fire,
    now,
    processed,
    settled,
    started_ids,
    worker,
)
from worker import Client

pytestmark = pytest.mark.integration


async def test_a_buffering_schedule_starts_no_more_than_its_limited_actions(
    clock_client: Client,
) -> None:
    """Regression: every fire went into the buffer while an action ran, and each
    started in turn, so two actions allowed became one per fire (the actions
    left went below zero)."""
    async with worker(clock_client):
        sched = await definition(
            clock_client,
            Hold,
            {"overlap": "buffer-all", "limited_actions": 2},
            cron="0 * * * *",
        )
        await align(clock_client, timedelta(hours=1))
        h = await clock_client.create_schedule("limited", sched)
        first = action_workflow_id("limited", await fire(clock_client, h))
        second = action_workflow_id("limited", await fire(clock_client, h))
        d = await h.describe()
        assert (d["running_count"], d["buffered"], d["remaining_actions"]) == (1, 1, 1), d
        assert d["next_fires"] == [], d  # the one action left waits in the buffer
        # more fires while the first action runs: no room left to buffer them
        for _ in range(3):
            t = await now(clock_client) + timedelta(hours=1)
            await advance_to(clock_client, t)
            await processed(h, t.replace(minute=0, second=0, microsecond=0))
            await settled(clock_client, h)
        d = await h.describe()
        assert (d["buffered"], d["remaining_actions"]) == (1, 1), d

        await clock_client.get_workflow_handle(first).signal("release")

        async def second_started() -> bool:
            return (await h.describe())["running_count"] == 1 and (
                await started_ids(clock_client, "limited")
            ) == sorted([first, second])

        await eventually(second_started, what="the buffered fire started")
        await clock_client.get_workflow_handle(second).signal("release")
        assert await clock_client.get_workflow_handle(second).result(timeout=30) == "tick"

        async def idle() -> bool:
            d = await h.describe()
            return d["running_count"] == 0 and d["buffered"] == 0

        await eventually(idle, what="the schedule idle")
        d = await h.describe()
        assert d["remaining_actions"] == 0 and d["counters"]["actions"] == 2, d
        assert await started_ids(clock_client, "limited") == sorted([first, second])
