"""The count activity an unpause uses: slice after slice, it counts exactly the
fires ``fires_until`` yields, across daylight-saving changes and long runs of
excluded times (pure logic)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from scheduler import activities
from scheduler.definition import iso, spec_to_wire
from scheduler.spec import CalendarSpec, IntervalSpec, ScheduleSpec, fires_until

AFTER = datetime(2026, 3, 1, tzinfo=UTC)
UNTIL = datetime(2026, 11, 1, 0, 0, 30, tzinfo=UTC)


def hourly_berlin() -> tuple[ScheduleSpec, datetime]:
    """Across both of Berlin's 2026 changes."""
    cal = CalendarSpec(minute="30", hour="*")
    return ScheduleSpec(calendars=(cal,), timezone="Europe/Berlin"), UNTIL


def quarter_hour_minus_weekends() -> tuple[ScheduleSpec, datetime]:
    cal = CalendarSpec(minute="*/15", hour="*")
    weekend = CalendarSpec(minute="*", hour="*", day_of_week="sat,sun")
    spec = ScheduleSpec(
        calendars=(cal,), intervals=(IntervalSpec(timedelta(hours=5)),), exclude=(weekend,)
    )
    return spec, AFTER + timedelta(days=10, seconds=30)


def sliced(spec: ScheduleSpec, after: datetime, until: datetime) -> tuple[int, str | None, int]:
    """Count as the schedule does: call after call until one says done."""
    wire: dict[str, Any] = spec_to_wire(spec)
    total, last, calls, at = 0, None, 0, iso(after)
    while True:
        page = activities.count_fires(wire, at, iso(until))
        calls += 1
        total += page["count"]
        last = page["last"] or last
        if page["done"]:
            return total, last, calls
        at = page["resume"]


@pytest.mark.parametrize("make", [hourly_berlin, quarter_hour_minus_weekends])
@pytest.mark.parametrize("page", [1, 1000, 50_000])
def test_slices_add_up_to_every_fire_of_the_range(
    monkeypatch: pytest.MonkeyPatch, make: Any, page: int
) -> None:
    spec, until = make()
    want = list(fires_until(spec, AFTER, until))
    monkeypatch.setattr(activities, "COUNT_PAGE", page)
    if page == 1:
        # the slices of one fire each are checked on a shorter range
        want = want[:300]
        until = want[-1] + timedelta(seconds=1)
    total, last, calls = sliced(spec, AFTER, until)
    assert (total, last) == (len(want), iso(want[-1]))
    assert calls >= len(want) // page


def test_an_empty_range_and_a_range_of_excluded_times_count_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from scheduler import spec as spec_module

    every_minute = CalendarSpec(minute="*", hour="*")
    spec = ScheduleSpec(calendars=(every_minute,))
    assert sliced(spec, AFTER, AFTER) == (0, None, 1)
    # a week of excluded minutes, looked past 100 at a time, each look its own slice
    monkeypatch.setattr(spec_module, "MAX_EXCLUDED_IN_A_ROW", 100)
    monkeypatch.setattr(activities, "COUNT_SLICE_S", 0.0)
    week = CalendarSpec(minute="*", hour="*", day="1-7")
    gap = ScheduleSpec(calendars=(every_minute,), exclude=(week,))
    total, last, calls = sliced(gap, AFTER, AFTER + timedelta(days=7, minutes=2))
    assert (total, last) == (3, iso(AFTER + timedelta(days=7, minutes=2)))  # 00:00 to 00:02
    assert calls > 7 * 24 * 60 // 100
