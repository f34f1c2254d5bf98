"""The walk past excluded times gives exactly what it gave when it asked
apscheduler twice per candidate time: the same fires, and the same cut after
the same number of excluded times in a row, which the schedule workflow
records (its ``last_processed`` and its timers), so recorded runs replay as
they ran. The reference below is that walk, kept as it was."""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from scheduler import spec as spec_module
from scheduler.spec import (
    DEFAULT_DST,
    TEMPORAL_COMPATIBLE,
    CalendarSpec,
    DstPolicy,
    ExclusionsTooWide,
    IntervalSpec,
    ScheduleSpec,
    _interval_fires,
    _near_change,
    _real_instants,
    fires,
    fires_until,
    parse_cron,
    parse_duration,
    zone,
)
from scheduler.wallclock import (
    ExcludedRun,
    RunTooLong,
    names_some_date,
    next_wall,
    wall_matches,
)

# ----------------------------------------------------------------- the reference walk


def _ref_calendar_fires(
    cal: CalendarSpec, tz: ZoneInfo, after: datetime, dst: DstPolicy
) -> Iterator[datetime]:
    trigger = cal.trigger()
    lookback = timedelta(days=1) if _near_change(tz, after) else timedelta(0)
    wall = (after.astimezone(tz).replace(tzinfo=UTC) - lookback).replace(microsecond=0)
    wall -= timedelta(seconds=1)
    pending: list[datetime] = []
    last = after
    while True:
        nxt = trigger.get_next_fire_time(None, wall + timedelta(seconds=1))
        if nxt is None:
            yield from sorted(p for p in pending if p > last)
            return
        wall = nxt
        for t in _real_instants(nxt, tz, cal.fixed_hour, dst):
            if t > last:
                pending.append(t)
        real = nxt.replace(tzinfo=None).replace(tzinfo=tz).astimezone(UTC)
        horizon = real if not _near_change(tz, real) else real - timedelta(days=2)
        pending.sort()
        while pending and pending[0] <= horizon:
            t = pending.pop(0)
            if t > last:
                last = t
                yield t


def _ref_matches(cal: CalendarSpec, tz: ZoneInfo, t: datetime) -> bool:
    wall = t.astimezone(tz).replace(tzinfo=UTC)
    return bool(cal.trigger().get_next_fire_time(None, wall) == wall)


def ref_fires(spec: ScheduleSpec, after: datetime, limit: int) -> Iterator[datetime]:
    tz = zone(spec.timezone)
    if spec.start is not None and after < spec.start:
        after = spec.start - timedelta(microseconds=1)
    streams: list[Iterator[datetime]] = [
        _ref_calendar_fires(c, tz, after, spec.dst) for c in spec.calendars
    ]
    streams += [_interval_fires(i, after) for i in spec.intervals]
    heads: list[datetime | None] = [next(s, None) for s in streams]
    last = after
    excluded = 0
    while True:
        live = [h for h in heads if h is not None]
        if not live:
            return
        t = min(live)
        for i, h in enumerate(heads):
            while h is not None and h <= t:
                h = next(streams[i], None)
            heads[i] = h
        if spec.end is not None and t > spec.end:
            return
        if t <= last:
            continue
        if any(_ref_matches(x, tz, t) for x in spec.exclude):
            excluded += 1
            if excluded >= limit:
                raise ExclusionsTooWide(t)
            continue
        last, excluded = t, 0
        yield t


# ----------------------------------------------------------------- comparing


def outcome(walk: Iterator[datetime], n: int) -> list[object]:
    """The first ``n`` fires, then where the walk was cut or ended."""
    out: list[object] = []
    try:
        for t in walk:
            out.append(t)
            if len(out) == n:
                return out
    except ExclusionsTooWide as cut:
        out.append(("cut", cut.last))
        return out
    out.append("end")
    return out


def both(spec: ScheduleSpec, after: datetime, n: int, limit: int) -> tuple[list, list]:
    new, old = [], []
    for _ in range(3):  # and on from each cut, as the schedule does
        a = outcome(fires(spec, after), n)
        b = outcome(ref_fires(spec, after, limit), n)
        new.append(a)
        old.append(b)
        if a != b or not (isinstance(a[-1], tuple) and a[-1][0] == "cut"):
            break
        after = a[-1][1]  # type: ignore[index]
    return new, old


MINUTELY = CalendarSpec(minute="*", hour="*")
JAN_TO_JUN = CalendarSpec(second="0", minute="*", hour="*", month="1-6")
ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata"]
POLICIES = [DEFAULT_DST, TEMPORAL_COMPATIBLE, DstPolicy(missing="skip", repeated="last")]


def random_calendar(rng: random.Random, *, exclusion: bool) -> CalendarSpec:
    pick = rng.choice
    if exclusion and rng.random() < 0.6:
        # wide ones: whole days, months, weekends, hours of every day
        return CalendarSpec(
            second=pick(["0", "0", "*/30"]),
            minute=pick(["*", "*", "*", "0-29"]),
            hour=pick(["*", "*", "*", "9-17", "0-5"]),
            day=pick(["*", "*", "1-10", "15-31", "last", "1-7"]),
            month=pick(["*", "*", "1-6", "3", "10-12", "*/2"]),
            day_of_week=pick(["*", "*", "*", "sat,sun", "mon-fri", "wed"]),
            year=pick(["*", "*", "*", "*", "2027"]),
        )
    day = pick(["*", "*", "*", "1", "29", "31", "last", "1-7", "2nd mon", "last fri"])
    month = pick(["*", "*", "*", "2", "1-6", "*/3", "11,12", "3,10"])
    if month == "2" and day == "31":
        day = "last"
    # (a calendar that names no time at all sends apscheduler on to the year
    # 9999, which takes seconds: none here)
    return CalendarSpec(
        second=pick(["0", "0", "0", "0", "*/20", "15,45"]),
        minute=pick(["*", "*", "*", "0", "*/15", "5,35", "0-10/5", "59", "30"]),
        hour=pick(["*", "*", "*", "2", "1-3", "*/6", "0,12", "23", "2,3"]),
        day=day,
        month=month,
        day_of_week="*" if " " in day else pick(["*", "*", "*", "mon-fri", "sat,sun", "sun"]),
        year=pick(["*", "*", "*", "*", "*", "2026-2035"]),
    )


def random_spec(rng: random.Random) -> ScheduleSpec:
    calendars = tuple(
        random_calendar(rng, exclusion=False) for _ in range(rng.choice([0, 1, 1, 1, 2, 3]))
    )
    if rng.random() < 0.35:  # frequent: long runs of excluded times
        calendars = (CalendarSpec(second=rng.choice(["0", "*/20"]), minute="*", hour="*"),)
    intervals: tuple[IntervalSpec, ...] = ()
    if not calendars or rng.random() < 0.3:
        every = timedelta(seconds=rng.choice([1, 60, 90, 600, 3600, 7 * 3600, 2 * 86400]))
        phase = timedelta(seconds=rng.randrange(60), microseconds=rng.choice([0, 0, 500_000]))
        intervals = (IntervalSpec(every, phase if phase < every else timedelta(0)),)
    exclude = tuple(random_calendar(rng, exclusion=True) for _ in range(rng.choice([1, 1, 2, 3])))
    start = end = None
    if rng.random() < 0.2:
        start = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(hours=rng.randrange(24 * 400))
    if rng.random() < 0.3:
        end = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(
            minutes=rng.randrange(60 * 24 * 600), seconds=rng.randrange(2) / 2
        )
        if start is not None and end <= start:
            end = start + timedelta(days=3)
    return ScheduleSpec(
        calendars=calendars,
        intervals=intervals,
        exclude=exclude,
        timezone=rng.choice(ZONES),
        start=start,
        end=end,
        dst=rng.choice(POLICIES),
    )


def test_next_wall_and_matches_are_apschedulers_answers() -> None:
    rng = random.Random(7)
    for _ in range(300):
        cal = random_calendar(rng, exclusion=rng.random() < 0.5)
        trigger = cal.trigger()
        for _ in range(20):
            wall = datetime(2025, 12, 1, tzinfo=UTC) + timedelta(
                seconds=rng.randrange(3 * 366 * 86400)
            )
            assert next_wall(cal, wall) == trigger.get_next_fire_time(None, wall), (cal, wall)
            named = trigger.get_next_fire_time(None, wall)
            for probe in (wall, named, wall.replace(microsecond=1)):
                if probe is not None:
                    expected = trigger.get_next_fire_time(None, probe) == probe
                    assert wall_matches(cal, probe) == expected, (cal, probe)


def test_the_walk_gives_the_fires_and_cuts_it_gave(monkeypatch: pytest.MonkeyPatch) -> None:
    limit = 120
    monkeypatch.setattr(spec_module, "MAX_EXCLUDED_IN_A_ROW", limit)
    counted = 0
    past = ExcludedRun.past

    def counting(run: ExcludedRun, t: datetime, count: int) -> tuple[datetime, int] | None:
        nonlocal counted
        try:
            got = past(run, t, count)
        except RunTooLong:
            counted += 1
            raise
        counted += got is not None
        return got

    monkeypatch.setattr(ExcludedRun, "past", counting)
    rng = random.Random(11)
    cuts = 0
    for case in range(400):
        spec = random_spec(rng)
        after = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=rng.randrange(2 * 366 * 86400))
        if rng.random() < 0.3:
            # just before a change of Berlin's or New York's offset
            after = rng.choice(
                [
                    datetime(2026, 3, 28, 22, tzinfo=UTC),
                    datetime(2026, 10, 24, 23, 30, tzinfo=UTC),
                    datetime(2026, 11, 1, 4, tzinfo=UTC),
                    datetime(2027, 3, 27, 12, tzinfo=UTC),
                ]
            )
        new, old = both(spec, after, 40, limit)
        assert new == old, (case, spec, after)
        cuts += sum(1 for o in old if isinstance(o[-1], tuple))
    # long runs of excluded times were among them, cut or counted a day at a time
    assert cuts > 25 and counted > 60, (cuts, counted)


def cal(cron: str) -> CalendarSpec:
    parsed, _ = parse_cron(cron)
    assert isinstance(parsed, CalendarSpec)
    return parsed


@pytest.mark.parametrize(
    ("crons", "exclude", "tz", "dst", "after", "end"),
    [
        # every few seconds across an offset change, with and without exclusions
        (["*/10 * * * * *"], [], "Europe/Berlin", TEMPORAL_COMPATIBLE, (2026, 3, 29, 0, 50), None),
        (
            ["*/10 * * * * *"],
            ["* 2 * * *"],
            "Europe/Berlin",
            DEFAULT_DST,
            (2026, 10, 25, 0, 50),
            None,
        ),
        (["*/15 * * * * *"], [], "America/New_York", DEFAULT_DST, (2026, 11, 1, 5, 50), None),
        (
            ["*/20 * * * * *"],
            [],
            "Australia/Lord_Howe",
            TEMPORAL_COMPATIBLE,
            (2026, 4, 4, 14, 50),
            None,
        ),
        # intervals: alone, with a calendar, with half seconds, and sparser than days
        (["@every 1m"], ["* * * 1-6 *"], "UTC", DEFAULT_DST, (2026, 12, 31, 23, 58), None),
        (
            ["* * * * *", "@every 90s"],
            ["* * * * sat,sun"],
            "Europe/Berlin",
            DEFAULT_DST,
            (2026, 10, 22),
            None,
        ),
        (["@every 2d"], ["* * 1-20 * *"], "America/New_York", DEFAULT_DST, (2026, 2, 1), None),
        # across spring forward inside the excluded month
        (["* * * * *"], ["* * * 3 *"], "Europe/Berlin", DEFAULT_DST, (2026, 2, 27), None),
        # a union of calendars, weekends excluded, across New York's fall back
        (
            ["* * * * *", "*/20 * 2 * * *"],
            ["* * * * sat,sun"],
            "America/New_York",
            TEMPORAL_COMPATIBLE,
            (2026, 10, 30, 20),
            None,
        ),
        # hourly, both instants of the repeated hour, days before it excluded
        (
            ["0 * * * *"],
            ["* * 20-24 10 *", "* * 26-31 10 *"],
            "Europe/Berlin",
            TEMPORAL_COMPATIBLE,
            (2026, 10, 19),
            None,
        ),
        # the spec ends inside an excluded run, on a time and between two
        (
            ["* * * * *"],
            ["* * * 1-6 *"],
            "UTC",
            DEFAULT_DST,
            (2026, 12, 31, 23, 58),
            (2027, 1, 1, 12, 0, 30),
        ),
        (
            ["* * * * *"],
            ["* * * 1-6 *"],
            "UTC",
            DEFAULT_DST,
            (2026, 12, 31, 23, 58),
            (2027, 1, 1, 12, 0),
        ),
        # only some hours of each day excluded
        (
            ["*/30 * * * * *"],
            ["* 9-17 * * *", "* * * * sun"],
            "Asia/Kolkata",
            DEFAULT_DST,
            (2026, 6, 1),
            None,
        ),
    ],
)
def test_chosen_runs_across_offset_changes_ends_and_unions(
    monkeypatch: pytest.MonkeyPatch,
    crons: list[str],
    exclude: list[str],
    tz: str,
    dst: DstPolicy,
    after: tuple[int, ...],
    end: tuple[int, ...] | None,
) -> None:
    limit = 2000
    monkeypatch.setattr(spec_module, "MAX_EXCLUDED_IN_A_ROW", limit)
    half = IntervalSpec(timedelta(seconds=90), timedelta(seconds=0.5))
    spec = ScheduleSpec(
        calendars=tuple(cal(c) for c in crons if not c.startswith("@")),
        intervals=tuple(
            half if c == "@every 90s" else IntervalSpec(parse_duration(c.split()[1]))
            for c in crons
            if c.startswith("@")
        ),
        exclude=tuple(cal(x) for x in exclude),
        timezone=tz,
        dst=dst,
        end=datetime(*end, tzinfo=UTC) if end else None,
    )
    new, old = both(spec, datetime(*after, tzinfo=UTC), 200, limit)
    assert new == old


@pytest.mark.parametrize("tz", ["UTC", "Europe/Berlin"])
def test_a_minutely_spec_minus_six_months_is_cut_where_it_was_at_the_real_limit(tz: str) -> None:
    spec = ScheduleSpec(calendars=(MINUTELY,), exclude=(JAN_TO_JUN,), timezone=tz)
    after = datetime(2026, 12, 31, 22, 58, tzinfo=UTC)
    limit = spec_module.MAX_EXCLUDED_IN_A_ROW
    old_started = time.perf_counter()
    old = outcome(ref_fires(spec, after, limit), 100)
    old_took = time.perf_counter() - old_started
    new_started = time.perf_counter()
    new = outcome(fires(spec, after), 100)
    new_took = time.perf_counter() - new_started
    assert new == old
    assert isinstance(old[-1], tuple) and old[-1][0] == "cut"
    # counted a day at a time, not asked of apscheduler for each of 20,000 times
    assert new_took * 10 < old_took, (new_took, old_took)
    # and past the six months the fires come back on July 1 (wall clock)
    wall = ZoneInfo(tz)
    before = datetime(2026, 12, 31, 23, 58, tzinfo=wall).astimezone(UTC)
    back = datetime(2027, 7, 1, tzinfo=wall).astimezone(UTC)
    assert list(fires_until(spec, before, back + timedelta(minutes=1))) == [
        before + timedelta(minutes=1),
        back,
        back + timedelta(minutes=1),
    ]


@pytest.mark.parametrize(
    ("cron", "named"),
    [
        ("0 0 31 2 *", False),
        ("0 0 31 4,6,9,11 *", False),
        ("0 0 29 2 *", True),
        ("0 0 29 2 1", True),  # February 29 on a Monday: 2044
        ("0 0 29 2 * 2100", False),  # not a leap year
        ("0 0 29 2 * 2100-2104", True),
        ("0 0 L * 5", True),
    ],
)
def test_a_calendar_that_names_no_date_is_told_apart_quickly(cron: str, named: bool) -> None:
    assert names_some_date(cal(cron if len(cron.split()) != 6 else f"0 {cron}")) is named


def test_a_second_monday_that_is_a_saturday_is_no_date() -> None:
    assert not names_some_date(CalendarSpec(day="2nd mon", day_of_week="sat"))
    assert names_some_date(CalendarSpec(day="2nd mon", day_of_week="mon"))
