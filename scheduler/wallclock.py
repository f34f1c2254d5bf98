"""A calendar's wall-clock times, asked of apscheduler once a date, not once a time.

apscheduler answers one question, the first wall time at or after a given one
that a calendar names, by stepping field by field: tens of microseconds a call,
and a walk past excluded times asked it twice per time (the next candidate,
then whether an exclusion names it). A calendar's fields fall in two
independent groups: the date fields (year, month, day, week, day of week) and
the time fields (hour, minute, second). The times it names are every date its
date fields name at every time of day its time fields name. So this module
asks apscheduler once per date (cached) whether the calendar names it, keeps
the times of day as a sorted array, and answers both questions with a lookup.
The answers are apscheduler's own, exactly; the unit tests compare them.

On top of that, :class:`ExcludedRun` counts a run of excluded candidate times
a whole day at a time, where that is plain arithmetic: on a day far from any
change of the zone's UTC offset each wall time is one real instant and they
keep their order, so the day's candidates (the times its calendars name and
its intervals' instants) and which of them the exclusions name are arrays.
"""

from __future__ import annotations

import functools
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger

if TYPE_CHECKING:
    from scheduler.spec import CalendarSpec, IntervalSpec

_ONE_DAY = timedelta(days=1)
_ONE_HOUR = timedelta(hours=1)
#: Years a calendar is searched for a date it names before it is taken to name
#: none: the Gregorian calendar (leap years, weekdays, ISO weeks) repeats every 400.
CYCLE_YEARS = 400


@functools.lru_cache(maxsize=128)
def day_times(cal: CalendarSpec) -> array[int]:
    """The times of day (seconds since midnight, ascending) the calendar names."""
    fields = {f.name: f for f in cal.trigger().fields}
    probe = datetime(2000, 1, 1, tzinfo=UTC)

    def values(name: str, at: Callable[[int], datetime], count: int) -> list[int]:
        # apscheduler's own test of a value: the next one from it is itself
        return [v for v in range(count) if fields[name].get_next_value(at(v)) == v]

    hours = values("hour", lambda v: probe.replace(hour=v), 24)
    minutes = values("minute", lambda v: probe.replace(minute=v), 60)
    seconds = values("second", lambda v: probe.replace(second=v), 60)
    return array("l", (h * 3600 + m * 60 + s for h in hours for m in minutes for s in seconds))


@functools.lru_cache(maxsize=65_536)
def first_from(cal: CalendarSpec, day: date) -> datetime | None:
    """apscheduler's first wall time the calendar names at or after midnight of ``day``."""
    midnight = datetime(day.year, day.month, day.day, tzinfo=UTC)
    nxt: datetime | None = cal.trigger().get_next_fire_time(None, midnight)
    return nxt


@functools.lru_cache(maxsize=1024)
def names_some_date(cal: CalendarSpec) -> bool:
    """Whether the calendar names any date at all (not February 30, not a
    second Monday that is a Saturday). apscheduler would look for one up to
    the year 9999, for seconds, each time it is asked: this looks through
    one cycle of the calendar from the first year the calendar names."""
    years = next(f for f in cal.trigger().fields if f.name == "year")
    first = years.get_next_value(datetime(1970, 1, 1, tzinfo=UTC))
    if first is None:
        return False
    start = datetime(first, 1, 1, tzinfo=UTC)
    last = min(first + CYCLE_YEARS, 9999)
    bounded = CronTrigger(
        **asdict(cal),
        timezone=UTC,
        start_date=start,
        end_date=datetime(last, 12, 31, 23, 59, 59, tzinfo=UTC),
    )
    return bounded.get_next_fire_time(None, start) is not None


def names_date(cal: CalendarSpec, day: date) -> bool:
    first = first_from(cal, day)
    return first is not None and first.date() == day


def _at(day: date, second: int, tz: ZoneInfo | None = None) -> datetime:
    return datetime(
        day.year,
        day.month,
        day.day,
        second // 3600,
        second // 60 % 60,
        second % 60,
        tzinfo=tz or UTC,
    )


def _next_day(day: date) -> date | None:
    return None if day == date.max else day + _ONE_DAY


def next_wall(cal: CalendarSpec, wall: datetime) -> datetime | None:
    """``cal.trigger().get_next_fire_time(None, wall)`` for a whole-second wall
    time (UTC standing for the wall clock), from the caches."""
    day = wall.date()
    first = first_from(cal, day)
    if first is None or first.date() != day:
        return first  # not a date the calendar names: its next one
    times = day_times(cal)
    i = bisect_left(times, wall.hour * 3600 + wall.minute * 60 + wall.second)
    if i < len(times):
        return _at(day, times[i])
    after = _next_day(day)
    return None if after is None else first_from(cal, after)


def wall_matches(cal: CalendarSpec, wall: datetime) -> bool:
    """Whether the calendar names the wall time (UTC standing for the wall clock)."""
    if wall.microsecond:
        return False  # apscheduler rounds it up to the next second: not itself
    times = day_times(cal)
    second = wall.hour * 3600 + wall.minute * 60 + wall.second
    i = bisect_left(times, second)
    return i < len(times) and times[i] == second and names_date(cal, wall.date())


@functools.lru_cache(maxsize=4096)
def plain_day(tz: ZoneInfo, day: date) -> bool:
    """Whether the zone's offset is the same at every hour from a day before
    ``day`` to a day after it: each wall time of the day is one real instant,
    in order, and none of the day's times maps near another day's."""
    start = datetime(day.year, day.month, day.day, tzinfo=tz) - _ONE_DAY
    offset = tz.utcoffset(start)
    return all(tz.utcoffset(start + k * _ONE_HOUR) == offset for k in range(1, 73))


_US = 1_000_000
_DAY_US = 86_400 * _US


@functools.lru_cache(maxsize=64)
def _union_us(cals: tuple[CalendarSpec, ...]) -> array[int]:
    """The times of day the calendars name, in microseconds, ascending."""
    seconds: set[int] = set().union(*(day_times(c) for c in cals))
    return array("q", (s * _US for s in sorted(seconds)))


def _kept_from(times: Sequence[int], excluded: set[int]) -> array[int]:
    """For each index into a day's candidate times (microseconds of the day),
    the first index at or after it whose time no exclusion names (or the
    length). A time with microseconds is never named (apscheduler rounds up)."""
    out = array("q", [len(times)]) * (len(times) + 1)
    for i in range(len(times) - 1, -1, -1):
        us = times[i]
        out[i] = out[i + 1] if us % _US == 0 and us // _US in excluded else i
    return out


@functools.lru_cache(maxsize=64)
def _kept_cached(cals: tuple[CalendarSpec, ...], excl: tuple[CalendarSpec, ...]) -> array[int]:
    return _kept_from(_union_us(cals), set().union(*(day_times(x) for x in excl)))


class RunTooLong(Exception):
    """The run reached its limit; ``last`` is its time at the limit."""

    def __init__(self, last: datetime) -> None:
        self.last = last


@dataclass(frozen=True)
class ExcludedRun:
    """Counts a run of excluded candidate times a day at a time."""

    calendars: Sequence[CalendarSpec]
    intervals: Sequence[IntervalSpec]
    exclude: Sequence[CalendarSpec]
    tz: ZoneInfo
    end: datetime | None
    limit: int

    def _day(self, day: date) -> tuple[Sequence[int], Sequence[int]]:
        """The day's candidate times (microseconds since its wall midnight,
        ascending) and, for each, the first index at or after it that is kept."""
        cals = tuple(c for c in self.calendars if names_date(c, day))
        excl = tuple(x for x in self.exclude if names_date(x, day))
        if not self.intervals:
            return _union_us(cals), _kept_cached(cals, excl)
        start = self._real(day, 0)
        union = set(_union_us(cals))
        for iv in self.intervals:
            every = iv.every // _ONE_US
            behind = (start - _EPOCH - iv.phase) // _ONE_US
            union.update(range(-behind % every, _DAY_US, every))
        times = sorted(union)
        return times, _kept_from(times, set().union(*(day_times(x) for x in excl)))

    def _next_date(self, day: date) -> date | None:
        after = _next_day(day)
        if after is None:
            return None
        firsts = [f.date() for c in self.calendars if (f := first_from(c, after)) is not None]
        if self.intervals:
            since = self._real(after, 0) - _ONE_US
            firsts += [iv.after(since).astimezone(self.tz).date() for iv in self.intervals]
        return min(firsts) if firsts else None

    def _real(self, day: date, us: int) -> datetime:
        midnight = datetime(day.year, day.month, day.day, tzinfo=self.tz)
        return (midnight + timedelta(microseconds=us)).astimezone(UTC)

    def past(self, t: datetime, count: int) -> tuple[datetime, int] | None:
        """Past the excluded time ``t``, the ``count``-th of its run: the last
        time of the run counted here and the run's length up to it, or None
        when there is nothing to count this way. Raises :class:`RunTooLong`
        at the run's ``limit``-th time, as walking it time by time would."""
        wall = t.astimezone(self.tz)
        day = wall.date()
        if not plain_day(self.tz, day):
            return None
        times, kept = self._day(day)
        i = bisect_right(times, _micros(wall))
        if i == 0 or times[i - 1] != _micros(wall):
            return None  # not one of the day's candidates: leave it to the walk
        last: datetime | None = None
        while True:
            j = kept[i]
            stop = j < len(times)  # a time no exclusion names: the walk yields it
            if self.end is not None:
                cap = self._until_end(day, times)
                if cap < j:
                    j, stop = max(i, cap), True  # the walk ends at the spec's end
            if count + (j - i) >= self.limit:
                raise RunTooLong(self._real(day, times[i + self.limit - count - 1]))
            if j > i:
                last, count = self._real(day, times[j - 1]), count + j - i
            if stop:
                break
            nxt = self._next_date(day)
            if nxt is None or not plain_day(self.tz, nxt):
                break
            day, i = nxt, 0
            times, kept = self._day(day)
        return None if last is None else (last, count)

    def _until_end(self, day: date, times: Sequence[int]) -> int:
        """How many of the day's times are at or before the spec's end."""
        assert self.end is not None
        end_wall = self.end.astimezone(self.tz)
        if end_wall.date() != day:
            return len(times) if end_wall.date() > day else 0
        return bisect_right(times, _micros(end_wall))


_ONE_US = timedelta(microseconds=1)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _micros(t: datetime) -> int:
    return ((t.hour * 60 + t.minute) * 60 + t.second) * _US + t.microsecond
