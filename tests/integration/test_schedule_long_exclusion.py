"""Frequent schedules where looking for the next fire used to take seconds
inside the schedule's workflow task: across a long exclusion, with the real
walk limit, and every few seconds in the days before a change of the zone's
UTC offset. Every task completes, and the fires are the ones the spec names."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from scheduler.policy import action_workflow_id
from tests.apps.scheduled import Report
from tests.helpers import eventually
from tests.integration.test_schedules import (
    QUEUE,
    advance_to,
    align,
    now,
    parse,
    processed,
    settled,
    started_ids,
    worker,
)
from worker import Client, ScheduleHandle

pytestmark = pytest.mark.integration


async def idle(client: Client, h: ScheduleHandle) -> None:
    """Wait until the actions started so far have closed and the schedule has
    seen them close: a jump of the clock while it handles a close would time
    its workflow task out on the test clock."""

    async def none_running() -> bool:
        d = await h.describe()
        assert d["running_count"] == 0, d["running"]
        return True

    await eventually(none_running, timeout=30, what="the actions closed")
    await settled(client, h)


def month_start(t: datetime, ahead: int) -> datetime:
    """Midnight (UTC) of the first of the month ``ahead`` months after ``t``'s."""
    years, month = divmod(t.month - 1 + ahead, 12)
    return t.replace(
        year=t.year + years, month=month + 1, day=1, hour=0, minute=0, second=0, microsecond=0
    )


@pytest.mark.timeout(240)
@pytest.mark.parametrize("cron", ["* * * * *", "@every 1m"])
async def test_a_minutely_schedule_walks_six_excluded_months_without_failing_a_task(
    clock_client: Client, cron: str
) -> None:
    """Regression: each walk past the excluded times asked apscheduler twice
    for each of up to 20,000 minutes (seconds of CPU), twice per pass, inside
    the schedule's workflow task: past the last fire before the exclusion every
    task failed the worker's deadlock guard, and the schedule never fired again."""
    async with worker(clock_client):
        t = await now(clock_client)
        first = month_start(t + timedelta(minutes=10), 1)  # the stretch starts here
        back = month_start(first, 6)  # and ends here
        months = ",".join(str(month_start(first, k).month) for k in range(6))
        await advance_to(clock_client, first - timedelta(minutes=2, seconds=50))
        sched = await clock_client.schedule_definition(
            workflow=Report,
            task_queue=QUEUE,
            args=["tick"],
            cron=cron,
            spec={"exclude": [f"* * * {months} *"]},
            policy={"overlap": "allow-all"},
        )
        h = await clock_client.create_schedule("half-year", sched)
        # describe looks past three runs of 20,000 excluded times, not six months
        assert (await h.describe())["next_fires"] == [
            iso_z(first - timedelta(minutes=2)),
            iso_z(first - timedelta(minutes=1)),
        ]
        await settled(clock_client, h)
        # the last two fires before the stretch
        await advance_to(clock_client, first + timedelta(seconds=1))
        await processed(h, first - timedelta(minutes=1))
        await idle(clock_client, h)
        before = [action_workflow_id("half-year", first - timedelta(minutes=k)) for k in (2, 1)]
        assert await started_ids(clock_client, "half-year") == sorted(before)

        # across the six months, a few weeks at a time, as the timers fire
        at = first
        while at + timedelta(days=25) < back:
            at += timedelta(days=25)
            await advance_to(clock_client, at)
            await settled(clock_client, h)
        assert await started_ids(clock_client, "half-year") == sorted(before)

        # the fires come back at the end of the stretch, each once, on time
        await advance_to(clock_client, back + timedelta(seconds=1))
        await processed(h, back)
        await idle(clock_client, h)
        await advance_to(clock_client, back + timedelta(minutes=1, seconds=1))
        await processed(h, back + timedelta(minutes=1))
        await settled(clock_client, h)
        after = [action_workflow_id("half-year", back + timedelta(minutes=k)) for k in (0, 1)]
        assert await started_ids(clock_client, "half-year") == sorted(before + after)
        d = await h.describe()
        assert d["counters"]["actions"] == 4, d["counters"]
        assert d["counters"]["missed_catchup"] == 0, d["counters"]
        assert parse(d["next_fires"][0]) == back + timedelta(minutes=2)

        history = await clock_client.get_workflow_handle("schedule/half-year").history()
        # every workflow task completed: none failed (a deadlock) or timed out
        bad = [
            e for e in history if e["event_type"] in ("WorkflowTaskFailed", "WorkflowTaskTimedOut")
        ]
        assert not bad, [(e["event_id"], e["event_time"], e["attributes"]) for e in bad[:2]]


def iso_z(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


def next_offset_change(zone: str, t: datetime) -> datetime:
    """The first whole hour (UTC) after ``t`` at which the zone's offset differs."""
    tz = ZoneInfo(zone)
    at = t.replace(minute=0, second=0, microsecond=0)
    offset = at.astimezone(tz).utcoffset()
    while at.astimezone(tz).utcoffset() == offset:
        at += timedelta(hours=1)
    return at


@pytest.mark.timeout(180)
async def test_a_schedule_every_ten_seconds_fires_in_the_days_before_an_offset_change(
    clock_client: Client,
) -> None:
    """Regression: within two days of a change of the zone's offset, each look
    for the next fire generated two days of fire times into a list it sorted
    again for each one: 3 s for every ten seconds (minutes for every second),
    past the worker's deadlock guard on every pass of the schedule."""
    async with worker(clock_client):
        change = next_offset_change("Europe/Berlin", (await now(clock_client)).astimezone(UTC))
        await advance_to(clock_client, change - timedelta(days=1))
        await align(clock_client, timedelta(seconds=10))
        sched = await clock_client.schedule_definition(
            workflow=Report,
            task_queue=QUEUE,
            args=["tick"],
            cron="*/10 * * * * *",
            spec={"timezone": "Europe/Berlin"},
            policy={"overlap": "allow-all"},
        )
        h = await clock_client.create_schedule("tens", sched)
        await settled(clock_client, h)
        first = parse((await h.describe())["next_fires"][0])
        for k in range(3):
            await advance_to(clock_client, first + timedelta(seconds=10 * k, milliseconds=500))
            await processed(h, first + timedelta(seconds=10 * k))
            await idle(clock_client, h)
        fired = [action_workflow_id("tens", first + timedelta(seconds=10 * k)) for k in range(3)]
        assert await started_ids(clock_client, "tens") == sorted(fired)
        history = await clock_client.get_workflow_handle("schedule/tens").history()
        bad = [
            e for e in history if e["event_type"] in ("WorkflowTaskFailed", "WorkflowTaskTimedOut")
        ]
        assert not bad, [(e["event_id"], e["event_time"], e["attributes"]) for e in bad[:2]]
