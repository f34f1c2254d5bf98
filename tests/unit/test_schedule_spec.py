"""Schedule specs: cron parsing, unions, exclusions, intervals, jitter, and the
daylight-saving policy across Europe/Berlin's 2026 changes."""

from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from scheduler.spec import (
    DEFAULT_DST,
    TEMPORAL_COMPATIBLE,
    CalendarSpec,
    DstPolicy,
    ExclusionsTooWide,
    IntervalSpec,
    ScheduleSpec,
    SpecError,
    fires,
    fires_until,
    jittered,
    next_fires,
    parse_cron,
    spec_from_crons,
)

BERLIN = "Europe/Berlin"
SPRING = datetime(2026, 3, 29, tzinfo=ZoneInfo(BERLIN))  # 02:00 -> 03:00
AUTUMN = datetime(2026, 10, 25, tzinfo=ZoneInfo(BERLIN))  # 03:00 -> 02:00


def utc(*a: int) -> datetime:
    return datetime(*a, tzinfo=UTC)


def local(ts: list[datetime]) -> list[str]:
    return [t.astimezone(ZoneInfo(BERLIN)).strftime("%m-%d %H:%M%z") for t in ts]


def on_day(spec: ScheduleSpec, day: datetime) -> list[datetime]:
    start = day.astimezone(UTC) - timedelta(microseconds=1)
    end = (day + timedelta(days=1)).astimezone(UTC)  # wall midnight to midnight
    out = []
    for t in fires(spec, start):
        if t >= end:
            return out
        out.append(t)
    return out


def berlin(cron: str, dst: DstPolicy = DEFAULT_DST) -> ScheduleSpec:
    return spec_from_crons([cron], timezone=BERLIN, dst=dst)


def test_a_fixed_hour_missing_on_spring_forward_is_shifted_by_default_or_skipped() -> None:
    assert local(on_day(berlin("30 2 * * *"), SPRING)) == ["03-29 03:30+0200"]
    assert on_day(berlin("30 2 * * *", DstPolicy(missing="skip")), SPRING) == []
    assert on_day(berlin("30 2 * * *", TEMPORAL_COMPATIBLE), SPRING) == []
    # the days around are untouched
    assert local(on_day(berlin("30 2 * * *"), SPRING - timedelta(days=1))) == ["03-28 02:30+0100"]


def test_a_fixed_hour_repeated_on_fall_back_fires_first_last_or_both() -> None:
    cron = "30 2 * * *"
    assert local(on_day(berlin(cron), AUTUMN)) == ["10-25 02:30+0200"]
    assert local(on_day(berlin(cron, DstPolicy(repeated="last")), AUTUMN)) == ["10-25 02:30+0100"]
    both = on_day(berlin(cron, DstPolicy(repeated="both")), AUTUMN)
    assert local(both) == ["10-25 02:30+0200", "10-25 02:30+0100"]
    assert both == on_day(berlin(cron, TEMPORAL_COMPATIBLE), AUTUMN)
    assert both[1] - both[0] == timedelta(hours=1)


def test_hourly_and_every_quarter_fire_at_every_real_instant() -> None:
    hourly = on_day(berlin("30 * * * *"), SPRING)
    assert len(hourly) == 23 and "03-29 02:30" not in " ".join(local(hourly))
    hourly = on_day(berlin("30 * * * *"), AUTUMN)
    assert len(hourly) == 25
    assert [t - hourly[0] for t in hourly] == [timedelta(hours=h) for h in range(25)]
    quarter = on_day(berlin("*/15 * * * *"), AUTUMN)
    assert len(quarter) == 100
    assert all(b - a == timedelta(minutes=15) for a, b in itertools.pairwise(quarter))
    assert len(on_day(berlin("*/15 * * * *"), SPRING)) == 92


def test_regression_apscheduler_1021_no_time_twice_inside_a_repeated_hour() -> None:
    # apscheduler's cron trigger, asked for the next time inside the repeated
    # hour, can return the same time again; Baton's iteration never does.
    spec = berlin("*/15 * * * *", DstPolicy(repeated="both"))
    seen = next_fires(spec, utc(2026, 10, 24, 23, 50), 12)
    assert seen == sorted(set(seen))
    assert local(seen[:10]) == [
        "10-25 02:00+0200",
        "10-25 02:15+0200",
        "10-25 02:30+0200",
        "10-25 02:45+0200",
        "10-25 02:00+0100",
        "10-25 02:15+0100",
        "10-25 02:30+0100",
        "10-25 02:45+0100",
        "10-25 03:00+0100",
        "10-25 03:15+0100",
    ]
    assert [t - seen[0] for t in seen] == [timedelta(minutes=15 * i) for i in range(12)]
    # asking from each fire gives the next one, strictly later
    t = utc(2026, 10, 24, 23, 50)
    for expected in seen:
        t = next_fires(spec, t, 1)[0]
        assert t == expected


def test_cron_strings() -> None:
    cal, tz = parse_cron("CRON_TZ=Europe/Berlin 0 9 * * MON-FRI")
    assert tz == BERLIN and isinstance(cal, CalendarSpec)
    assert cal.day_of_week == "mon,tue,wed,thu,fri"
    assert parse_cron("0 0 * * 0")[0] == parse_cron("0 0 * * 7")[0] == parse_cron("@weekly")[0]
    assert parse_cron("0 0 * * 5-1")[0].day_of_week == "sun,mon,fri,sat"  # type: ignore[union-attr]
    six = parse_cron("15 30 8 * * *")[0]
    assert (six.second, six.minute, six.hour) == ("15", "30", "8")  # type: ignore[union-attr]
    assert parse_cron("0 0 0 1 1 * 2030")[0].year == "2030"  # type: ignore[union-attr]
    assert parse_cron("@every 1h30m")[0] == IntervalSpec(timedelta(minutes=90))
    spec = spec_from_crons(["0 12 L * *"])
    assert next_fires(spec, utc(2026, 2, 1), 2) == [utc(2026, 2, 28, 12), utc(2026, 3, 31, 12)]
    last_fri = ScheduleSpec(calendars=(CalendarSpec(hour="18", day="last fri"),))
    assert next_fires(last_fri, utc(2026, 3, 1), 1) == [utc(2026, 3, 27, 18)]
    for bad in ("* * *", "61 * * * *", "0 0 * * 8", "CRON_TZ=Mars/Base 0 0 * * *", "@every x"):
        with pytest.raises(SpecError):
            spec_from_crons([bad])


def test_day_of_month_and_day_of_week_are_anded() -> None:
    spec = spec_from_crons(["0 9 1-7 * MON"])  # the first Monday of the month
    assert next_fires(spec, utc(2026, 1, 1), 3) == [
        utc(2026, 1, 5, 9),
        utc(2026, 2, 2, 9),
        utc(2026, 3, 2, 9),
    ]


def test_union_minus_exclusions_with_start_end_and_intervals_with_a_phase() -> None:
    spec = ScheduleSpec(
        calendars=(CalendarSpec(hour="9"), CalendarSpec(hour="9,17")),
        intervals=(IntervalSpec(timedelta(hours=6), phase=timedelta(hours=1)),),
        exclude=(CalendarSpec(hour="*", day_of_week="sat,sun"),),
        start=utc(2026, 3, 5, 8),
        end=utc(2026, 3, 9, 10),
    )
    got = list(fires(spec, utc(2026, 1, 1)))
    assert got == sorted(set(got)) and got[0] == utc(2026, 3, 5, 9)
    assert utc(2026, 3, 5, 13) in got and utc(2026, 3, 5, 17) in got  # 13:00 = 1h + 2 x 6h
    assert all(t.weekday() < 5 for t in got) and got[-1] == utc(2026, 3, 9, 9)
    assert got.count(utc(2026, 3, 6, 9)) == 1  # two calendars, one fire


def test_jitter_is_stable_and_never_past_the_next_nominal_fire() -> None:
    spec = spec_from_crons(["*/5 * * * *"], jitter=timedelta(hours=1))
    nominal = utc(2026, 5, 1, 12, 5)
    a = jittered(spec, "nightly", nominal)
    assert a == jittered(spec, "nightly", nominal)
    assert nominal <= a < nominal + timedelta(minutes=5)
    assert jittered(spec, "other", nominal) != a
    assert jittered(spec_from_crons(["*/5 * * * *"]), "nightly", nominal) == nominal


def test_bad_specs_are_refused() -> None:
    with pytest.raises(SpecError, match="needs a calendar"):
        ScheduleSpec()
    with pytest.raises(SpecError, match="IANA"):
        spec_from_crons(["@daily"], timezone="Berlin")
    with pytest.raises(SpecError, match="phase"):
        IntervalSpec(timedelta(minutes=5), phase=timedelta(minutes=5))
    with pytest.raises(SpecError, match="offset"):
        spec_from_crons(["@daily"], start=datetime(2026, 1, 1))  # noqa: DTZ001  (the point)
    with pytest.raises(SpecError, match="CRON_TZ"):
        spec_from_crons(["@daily", "CRON_TZ=Europe/Berlin 0 1 * * *"])


@pytest.mark.parametrize(
    ("spec", "policy", "says"),
    [
        ({"cron": ["0 9 * * */x"]}, {}, "step 'x'"),
        ({"calendars": [{"day_of_week": "mon/x"}]}, {}, "step 'x'"),
        ({"cron": ["@every 99999999999d"]}, {}, "longer than"),
        ({"cron": ["@daily"], "jitter": "99999999999d"}, {}, "spec.jitter"),
        ({"cron": ["@daily"], "jitter": 1e20}, {}, "spec.jitter"),
        ({"intervals": [{"every": 1e15}]}, {}, "intervals"),
        ({"cron": ["@daily"]}, {"catchup_window": "999999999d"}, "catchup_window"),
        ({"cron": ["@daily"], "start_at": "0001-01-01T00:00:00+05:00"}, {}, "start_at"),
        ({"cron": ["@daily"], "end_at": "9999-12-31T23:59:59-05:00"}, {}, "end_at"),
    ],
)
def test_a_definition_out_of_range_is_a_spec_error_not_a_crash(
    spec: dict[str, object], policy: dict[str, object], says: str
) -> None:
    """Regression: these escaped as ValueError or OverflowError, which the
    API answered with a 500 INTERNAL instead of INVALID_ARGUMENT."""
    from scheduler import definition

    action = {"workflow_type": "Report", "task_queue": "q"}
    with pytest.raises(SpecError, match=says):
        definition.parse({"spec": spec, "action": action, "policy": policy})


def test_a_day_of_week_is_a_name_or_a_number_never_a_name_with_more_after_it() -> None:
    """Regression: ``MON#2`` (Quartz's second Monday) and ``monxyz`` were read
    as every Monday, four times the fires asked for; full names still read."""
    with pytest.raises(SpecError, match="'#' is not supported"):
        parse_cron("0 9 * * MON#2")
    with pytest.raises(SpecError, match="monxyz"):
        parse_cron("0 9 * * monxyz")
    cal, _ = parse_cron("0 9 * * monday-thurs,fri")
    assert isinstance(cal, CalendarSpec) and cal.day_of_week == "mon,tue,wed,thu,fri"
    second_monday = CalendarSpec(hour="9", day="2nd mon")
    after = datetime(2026, 1, 1, tzinfo=UTC)
    spec = ScheduleSpec(calendars=(second_monday,))
    assert next_fires(spec, after, 2) == [
        datetime(2026, 1, 12, 9, tzinfo=UTC),
        datetime(2026, 2, 9, 9, tzinfo=UTC),
    ]


@pytest.mark.timeout(30)
def test_exclusions_that_swallow_every_time_are_said_not_looked_past_for_ever(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Regression: a spec minus exclusions that cover all of it (``* * * * *``
    minus itself) made fires() loop for ever: describe never answered and the
    schedule's workflow task held the system worker's event loop."""
    from scheduler import spec as spec_module

    monkeypatch.setattr(spec_module, "MAX_EXCLUDED_IN_A_ROW", 100)
    after = datetime(2026, 1, 1, tzinfo=UTC)
    everything = ScheduleSpec(calendars=(CalendarSpec(minute="*", hour="*"),))
    none_left = ScheduleSpec(calendars=everything.calendars, exclude=everything.calendars)
    with pytest.raises(ExclusionsTooWide, match=r"narrow spec\.exclude") as caught:
        next(fires(none_left, after))
    assert caught.value.last == after + timedelta(minutes=100)
    assert next_fires(none_left, after, 3) == []
    assert jittered(replace(none_left, jitter=timedelta(seconds=30)), "s", after) > after
    assert list(fires_until(none_left, after, after + timedelta(days=1))) == []
    # a run of excluded times longer than the cap is walked past to the fires after it
    two_hours = CalendarSpec(minute="*", hour="0-1")
    gap = ScheduleSpec(calendars=everything.calendars, exclude=(two_hours,))
    before = datetime(2025, 12, 31, 23, 58, tzinfo=UTC)
    assert list(fires_until(gap, before, datetime(2026, 1, 1, 2, 1, tzinfo=UTC))) == [
        datetime(2025, 12, 31, 23, 59, tzinfo=UTC),
        datetime(2026, 1, 1, 2, 0, tzinfo=UTC),
        datetime(2026, 1, 1, 2, 1, tzinfo=UTC),
    ]
    assert next_fires(gap, after, 1) == [datetime(2026, 1, 1, 2, 0, tzinfo=UTC)]
