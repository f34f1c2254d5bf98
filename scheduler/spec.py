"""Schedule specs: when a schedule fires, as a pure function of the spec.

A spec is the union of calendar specs (cron strings are parsed into them) and
intervals, minus its exclusions, inside its start and end time, in one IANA
time zone. apscheduler's cron trigger does the calendar arithmetic, but on the
*wall clock* (its trigger runs in UTC over local wall times): Baton maps each
wall time to real instants itself, under an explicit daylight-saving policy,
so apscheduler's own handling of a repeated hour (it can return the same time
twice, agronholm/apscheduler#1021) never matters. Each next fire time is
strictly later than the one before.

apscheduler is asked once per date, not once per time (``scheduler.wallclock``
keeps a calendar's times of day), and a run of excluded times is counted a day
at a time where that is exact, so a frequent spec minus a long exclusion is
cheap to walk: the walk still yields, and stops after
:data:`MAX_EXCLUDED_IN_A_ROW` excluded times, exactly where it did when it
asked apscheduler about each time.

Day of month and day of week are ANDed (both must match), unlike classic cron
which ORs them when both are restricted: ``0 9 1-7 * MON`` is "the first
Monday of the month at 09:00".

Daylight saving, for calendar specs with a fixed hour (no ``*`` and no step in
the hour field):

* ``missing``: a wall time that does not exist that day (02:30 when clocks
  jump from 02:00 to 03:00) is ``shift``-ed forward by the gap (03:30,
  default) or ``skip``-ped.
* ``repeated``: a wall time that happens twice (02:30 when clocks fall back)
  fires at the ``first`` instant (default), the ``last``, or ``both``.

Specs with ``*`` or a step in the hour fire at every real instant that matches
(an hourly ``:30`` fires 23 times on a spring-forward day and 25 on a
fall-back day). ``TEMPORAL_COMPATIBLE`` (skip, both) is Temporal's behaviour.
"""

from __future__ import annotations

import functools
import hashlib
import heapq
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.triggers.cron import CronTrigger

from scheduler.wallclock import ExcludedRun, RunTooLong, next_wall, wall_matches


class SpecError(ValueError):
    """A schedule spec is not valid; the message says which part and why."""


#: Candidate times in a row the exclusions may swallow before :func:`fires`
#: stops to say so, instead of looking for ever (``* * * * *`` minus itself).
MAX_EXCLUDED_IN_A_ROW = 20_000
#: Such runs :func:`next_fires` looks past before it answers with what it found.
NEXT_FIRES_RUNS = 3


class ExclusionsTooWide(SpecError):
    """The exclusions swallowed :data:`MAX_EXCLUDED_IN_A_ROW` candidate times
    in a row; ``last`` is the last one looked at (every time up to it is
    excluded), from which a caller that must go on looks further."""

    def __init__(self, last: datetime) -> None:
        self.last = last
        super().__init__(
            f"the exclusions leave no fire among {MAX_EXCLUDED_IN_A_ROW} times in a row "
            f"of the spec (up to {last.isoformat()}): narrow spec.exclude"
        )


@dataclass(frozen=True)
class DstPolicy:
    missing: str = "shift"  # shift | skip
    repeated: str = "first"  # first | last | both

    def __post_init__(self) -> None:
        if self.missing not in ("shift", "skip"):
            raise SpecError(f"dst missing policy {self.missing!r} is not shift or skip")
        if self.repeated not in ("first", "last", "both"):
            raise SpecError(f"dst repeated policy {self.repeated!r} is not first, last or both")


DEFAULT_DST = DstPolicy()
TEMPORAL_COMPATIBLE = DstPolicy(missing="skip", repeated="both")

_FIELDS = ("second", "minute", "hour", "day", "month", "day_of_week", "year")


@dataclass(frozen=True)
class CalendarSpec:
    """Fields as apscheduler's cron trigger reads them (``*`` when not given);
    ``day_of_week`` in apscheduler's names (mon..sun)."""

    second: str = "0"
    minute: str = "0"
    hour: str = "0"
    day: str = "*"
    month: str = "*"
    day_of_week: str = "*"
    year: str = "*"

    @property
    def fixed_hour(self) -> bool:
        return "*" not in self.hour and "/" not in self.hour

    def trigger(self) -> CronTrigger:
        return _trigger(self)


@functools.lru_cache(maxsize=1024)
def _trigger(cal: CalendarSpec) -> CronTrigger:
    # built once per calendar: exclusions ask it once per candidate time
    try:
        return CronTrigger(
            **{f: getattr(cal, f) for f in _FIELDS},
            timezone=UTC,  # the wall clock: mapped to real instants below
        )
    except (ValueError, TypeError) as exc:
        raise SpecError(f"calendar spec {cal}: {exc}") from None


@dataclass(frozen=True)
class IntervalSpec:
    """Every ``every`` from the Unix epoch, shifted by ``phase``."""

    every: timedelta
    phase: timedelta = timedelta(0)

    def __post_init__(self) -> None:
        if self.every < timedelta(seconds=1):
            raise SpecError(f"an interval is at least 1 second, not {self.every}")
        if not timedelta(0) <= self.phase < self.every:
            raise SpecError(f"an interval's phase is in [0, {self.every}), not {self.phase}")

    def after(self, t: datetime) -> datetime:
        """The first fire strictly after ``t``."""
        epoch = datetime(1970, 1, 1, tzinfo=UTC) + self.phase
        n = (t - epoch) // self.every + 1
        return epoch + n * self.every


@dataclass(frozen=True)
class ScheduleSpec:
    calendars: tuple[CalendarSpec, ...] = ()
    intervals: tuple[IntervalSpec, ...] = ()
    exclude: tuple[CalendarSpec, ...] = ()
    timezone: str = "UTC"
    start: datetime | None = None
    end: datetime | None = None
    jitter: timedelta = timedelta(0)
    dst: DstPolicy = field(default_factory=DstPolicy)

    def __post_init__(self) -> None:
        if not self.calendars and not self.intervals:
            raise SpecError("a schedule spec needs a calendar, a cron string or an interval")
        zone(self.timezone)
        for t in (self.start, self.end):
            if t is not None and t.tzinfo is None:
                raise SpecError("start and end times carry a UTC offset")
        if self.start and self.end and self.end <= self.start:
            raise SpecError("a schedule's end is after its start")
        if self.jitter < timedelta(0):
            raise SpecError("jitter is not negative")


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise SpecError(f"time zone {name!r} is not an IANA zone (e.g. Europe/Berlin)") from None


# --------------------------------------------------------------------------- wall clock


def _real_instants(
    wall: datetime, tz: ZoneInfo, fixed_hour: bool, dst: DstPolicy
) -> list[datetime]:
    """The real instants (UTC) of a local wall time, under the DST policy."""
    naive = wall.replace(tzinfo=None)
    first = naive.replace(tzinfo=tz, fold=0)
    last = naive.replace(tzinfo=tz, fold=1)
    a, b = first.astimezone(UTC), last.astimezone(UTC)
    exists = a.astimezone(tz).replace(tzinfo=None) == naive
    if not exists:
        # In a gap: fold=0 maps with the offset before it, i.e. past the gap.
        if not fixed_hour or dst.missing == "skip":
            return []
        return [max(a, b)]  # the same wall time, as far past the gap as the gap is long
    if a == b:
        return [a]
    if not fixed_hour:
        return sorted({a, b})
    return {"first": [min(a, b)], "last": [max(a, b)], "both": sorted({a, b})}[dst.repeated]


def _calendar_fires(
    cal: CalendarSpec, tz: ZoneInfo, after: datetime, dst: DstPolicy
) -> Iterator[datetime]:
    """Real fire instants of one calendar spec, strictly after ``after``, ascending."""
    # Near an offset change, start early on the wall clock: a wall time before
    # ``after``'s may map to a real instant after it, one at most as far before
    # as the zone's offsets around differ.
    lookback = timedelta(0)
    if _near_change(tz, after):
        least, most = _offsets_around(tz, after.astimezone(tz).replace(tzinfo=None))
        lookback = most - least + _MARGIN
    wall = (after.astimezone(tz).replace(tzinfo=UTC) - lookback).replace(microsecond=0)
    wall -= timedelta(seconds=1)
    pending: list[datetime] = []  # a heap
    last = after
    while True:
        nxt = next_wall(cal, wall + timedelta(seconds=1))
        if nxt is None:
            yield from sorted(p for p in pending if p > last)
            return
        wall = nxt
        for t in _real_instants(nxt, tz, cal.fixed_hour, dst):
            if t > last:
                heapq.heappush(pending, t)
        # wall times go up; near an offset change real instants may come out of
        # order: release those no later wall time can come before (a later wall
        # time is at least this one less the largest offset around). Away from
        # a change, real instants follow wall times.
        real = nxt.replace(tzinfo=None).replace(tzinfo=tz).astimezone(UTC)
        horizon = real
        if _near_change(tz, real):
            horizon = nxt - _offsets_around(tz, nxt.replace(tzinfo=None))[1] - _MARGIN
        while pending and pending[0] <= horizon:
            t = heapq.heappop(pending)
            if t > last:
                last = t
                yield t


#: Slack on the offsets :func:`_offsets_around` finds (they are sampled hourly).
_MARGIN = timedelta(hours=1)


@functools.lru_cache(maxsize=4096)
def _offsets_hour(tz: ZoneInfo, hour: datetime) -> tuple[timedelta, timedelta]:
    offsets = [tz.utcoffset(hour + k * timedelta(hours=1)) for k in range(-48, 49)]
    return min(o for o in offsets if o is not None), max(o for o in offsets if o is not None)


def _offsets_around(tz: ZoneInfo, wall: datetime) -> tuple[timedelta, timedelta]:
    """The least and the largest UTC offset of the zone at the whole hours of
    the wall clock from two days before ``wall`` (naive) to two days after."""
    return _offsets_hour(tz, wall.replace(minute=0, second=0, microsecond=0, fold=0))


def _near_change(tz: ZoneInfo, t: datetime) -> bool:
    """Whether the zone's UTC offset changes within two days of ``t``."""
    day = timedelta(days=1)
    offsets = {tz.utcoffset(t + k * day) for k in (-2, -1, 0, 1, 2)}
    return len(offsets) > 1


def _matches(cal: CalendarSpec, tz: ZoneInfo, t: datetime) -> bool:
    return wall_matches(cal, t.astimezone(tz).replace(tzinfo=UTC))


def fires(spec: ScheduleSpec, after: datetime) -> Iterator[datetime]:
    """Nominal fire times (UTC) strictly after ``after``, each later than the last:
    the union of the calendars and intervals minus the exclusions.

    Raises :class:`ExclusionsTooWide` after that many excluded times in a row.
    """
    tz = zone(spec.timezone)
    if spec.start is not None and after < spec.start:
        after = spec.start - timedelta(microseconds=1)
    streams: list[Iterator[datetime]] = [
        _calendar_fires(c, tz, after, spec.dst) for c in spec.calendars
    ]
    streams += [_interval_fires(i, after) for i in spec.intervals]
    heads: list[datetime | None] = [next(s, None) for s in streams]
    last = after
    excluded = 0
    # a run of excluded times is counted a day at a time where that is exact:
    # a long exclusion of a frequent spec is not walked time by time, yet the
    # walk yields and stops where it always did
    run = (
        ExcludedRun(
            spec.calendars, spec.intervals, spec.exclude, tz, spec.end, MAX_EXCLUDED_IN_A_ROW
        )
        if spec.exclude
        else None
    )
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
        if any(_matches(x, tz, t) for x in spec.exclude):
            excluded += 1
            if excluded >= MAX_EXCLUDED_IN_A_ROW:
                raise ExclusionsTooWide(t)
            try:
                past = run.past(t, excluded) if run is not None else None
            except RunTooLong as cut:
                raise ExclusionsTooWide(cut.last) from None
            if past is not None:
                # on from the run's last time counted: the streams as they would be there
                resume, excluded = past
                streams = [_calendar_fires(c, tz, resume, spec.dst) for c in spec.calendars]
                streams += [_interval_fires(i, resume) for i in spec.intervals]
                heads = [next(s, None) for s in streams]
            continue
        last, excluded = t, 0
        yield t


def fires_until(spec: ScheduleSpec, after: datetime, until: datetime) -> Iterator[datetime]:
    """The fires in (``after``, ``until``], looking past any run of excluded times."""
    while True:
        try:
            for t in fires(spec, after):
                if t > until:
                    return
                after = t
                yield t
            return
        except ExclusionsTooWide as exc:
            if exc.last >= until:
                return
            after = exc.last


def _interval_fires(i: IntervalSpec, after: datetime) -> Iterator[datetime]:
    t = after
    while True:
        t = i.after(t)
        yield t


def next_fires(spec: ScheduleSpec, after: datetime, n: int) -> list[datetime]:
    """Up to ``n`` next fires, looking past at most ``NEXT_FIRES_RUNS`` runs of
    :data:`MAX_EXCLUDED_IN_A_ROW` excluded times (fewer fires past them)."""
    out: list[datetime] = []
    for _ in range(NEXT_FIRES_RUNS):
        try:
            for t in fires(spec, after):
                out.append(t)
                if len(out) == n:
                    return out
                after = t
            return out
        except ExclusionsTooWide as exc:
            after = exc.last
    return out


def jittered(spec: ScheduleSpec, schedule_id: str, nominal: datetime) -> datetime:
    """The actual time of a nominal fire: later by a stable hash of the schedule
    id and the nominal time, up to ``jitter`` and never past the next nominal."""
    if spec.jitter <= timedelta(0):
        return nominal
    try:
        nxt = next(fires(spec, nominal), None)
    except ExclusionsTooWide:
        nxt = None
    room = spec.jitter if nxt is None else min(spec.jitter, nxt - nominal)
    digest = hashlib.sha256(f"{schedule_id}\0{nominal.isoformat()}".encode()).digest()
    fraction = int.from_bytes(digest[:8], "big") / 2**64
    return nominal + timedelta(microseconds=int(room / timedelta(microseconds=1) * fraction))


# --------------------------------------------------------------------------- cron strings

_ALIASES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_DOW_NAMES = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]
_DOW_FULL = ["sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday"]
_DURATION = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")
#: The longest duration a spec or policy takes: fire times stay far inside
#: what datetime can hold (a longer one would overflow the arithmetic).
MAX_DURATION = timedelta(days=100 * 366)


def parse_duration(text: str) -> timedelta:
    m = _DURATION.match(text.strip())
    if not text.strip() or m is None:
        raise SpecError(f"{text!r} is not a duration like 1h30m, 15m or 90s")
    d, h, mi, s = (int(g or 0) for g in m.groups())
    try:
        span = timedelta(days=d, hours=h, minutes=mi, seconds=s)
    except OverflowError:
        span = MAX_DURATION * 2
    return check_duration(span, repr(text))


def check_duration(span: timedelta, what: str) -> timedelta:
    if span > MAX_DURATION:
        raise SpecError(
            f"{what} is longer than {MAX_DURATION.days} days, the longest a schedule takes"
        )
    return span


def _dow(field_text: str) -> str:
    """A cron day-of-week field (0 or 7 = Sunday, names, ranges, steps) in
    apscheduler's names (whose numbers would count from Monday = 0)."""
    if field_text in ("*", "?"):
        return "*"
    days: set[int] = set()
    for part in field_text.lower().split(","):
        base, _, step_text = part.partition("/")
        step = int(step_text) if step_text.isdigit() else 0 if step_text else 1
        if step < 1:
            raise SpecError(f"day of week step {step_text!r} is not a positive number")
        if base == "*":
            lo, hi = 0, 6
        else:
            a, _, b = base.partition("-")
            lo, hi = _dow_number(a), _dow_number(b) if b else _dow_number(a)
            if b and hi < lo:
                hi += 7  # a range across Sunday: fri-mon
        days.update(d % 7 for d in range(lo, hi + 1, step))
    return ",".join(_DOW_NAMES[d] for d in sorted(days))


def _dow_number(text: str) -> int:
    # a name is three letters or more of a day's name: mon, tues, thursday
    for i, name in enumerate(_DOW_FULL):
        if len(text) >= 3 and name.startswith(text):
            return i
    if "#" in text:
        # Quartz's nth weekday: taken as the bare weekday it fired every week
        raise SpecError(
            f"day of week {text!r}: '#' is not supported; for the nth weekday of a "
            'month use a calendar\'s day field, e.g. {"day": "2nd mon"}'
        )
    if not text.isdigit() or not 0 <= int(text) <= 7:
        raise SpecError(f"day of week {text!r} is not 0-7 (0 and 7 are Sunday) or a name")
    return int(text) % 7


def parse_cron(text: str) -> tuple[CalendarSpec | IntervalSpec, str | None]:
    """A cron string as a calendar spec (or an ``@every`` interval), and the
    time zone its ``CRON_TZ=`` prefix names, if any.

    5 fields: minute hour day month day-of-week; 6: second first; 7: second
    first and year last. ``@daily`` and the other aliases; ``@every 1h30m``.
    """
    tz = None
    s = text.strip()
    if s.startswith(("CRON_TZ=", "TZ=")):
        head, _, s = s.partition(" ")
        tz = head.split("=", 1)[1]
        zone(tz)
        s = s.strip()
    if s.startswith("@every"):
        return IntervalSpec(parse_duration(s.removeprefix("@every"))), tz
    s = _ALIASES.get(s.lower(), s)
    parts = s.split()
    if len(parts) == 5:
        parts = ["0", *parts, "*"]
    elif len(parts) == 6:
        parts = [*parts, "*"]
    elif len(parts) != 7:
        raise SpecError(
            f"cron string {text!r} has {len(parts)} fields: use 5 (minute hour day month "
            "weekday), 6 (with seconds first) or 7 (and a year last)"
        )
    second, minute, hour, day, month, dow, year = parts
    cal = CalendarSpec(
        second=second,
        minute=minute,
        hour=hour,
        day=day.replace("?", "*").replace("L", "last"),
        month=month,
        day_of_week=_dow(dow),
        year=year,
    )
    cal.trigger()  # refuse what apscheduler cannot read, now
    return cal, tz


def spec_from_crons(
    crons: Sequence[str],
    *,
    timezone: str = "UTC",
    dst: DstPolicy = DEFAULT_DST,
    **kw: object,
) -> ScheduleSpec:
    """A spec from cron strings (all in one zone: a ``CRON_TZ=`` must agree)."""
    calendars: list[CalendarSpec] = []
    intervals: list[IntervalSpec] = []
    for c in crons:
        parsed, tz = parse_cron(c)
        if tz is not None and tz != timezone:
            if timezone != "UTC" or (calendars or intervals):
                raise SpecError(f"CRON_TZ={tz} differs from the schedule's zone {timezone}")
            timezone = tz
        if isinstance(parsed, IntervalSpec):
            intervals.append(parsed)
        else:
            calendars.append(parsed)
    return ScheduleSpec(
        calendars=tuple(calendars),
        intervals=tuple(intervals),
        timezone=timezone,
        dst=dst,
        **kw,  # type: ignore[arg-type]
    )


def next_cron_time(cron: str, after: datetime) -> datetime | None:
    """A workflow's ``cron_schedule``: its next time after ``after`` (None: it
    has none left). Raises :class:`SpecError` for text that is no cron."""
    fires = next_fires(spec_from_crons([cron]), after, 1)
    return fires[0] if fires else None
