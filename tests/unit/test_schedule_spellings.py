"""A schedule definition as a Temporal user writes one: overlap and catch-up
modes spelled with underscores or as Temporal's enum names, and a calendar
field given as a JSON list."""

from __future__ import annotations

import pytest

from scheduler import definition
from scheduler.policy import CatchUp, Overlap
from scheduler.spec import SpecError
from worker.wire import TriggerScheduleRequest, UnpauseScheduleRequest

_ACTION = {"workflow_type": "Report", "task_queue": "q"}


def _policy(**policy: object) -> definition.Policy:
    return definition.parse(
        {"spec": {"cron": ["@daily"]}, "action": _ACTION, "policy": policy}
    ).policy


@pytest.mark.parametrize(
    "spelled",
    ["buffer-one", "buffer_one", "BUFFER_ONE", "Buffer-One", "SCHEDULE_OVERLAP_POLICY_BUFFER_ONE"],
)
def test_an_overlap_mode_is_read_in_the_spellings_temporal_users_write(spelled: str) -> None:
    """Regression: only ``buffer-one`` was taken; ``buffer_one`` was refused."""
    assert _policy(overlap=spelled).overlap == Overlap.BUFFER_ONE
    assert TriggerScheduleRequest(overlap=spelled).overlap == "buffer-one"


def test_a_catch_up_mode_is_read_whatever_its_case() -> None:
    assert _policy(catchup="LATEST").catchup == CatchUp.LATEST
    assert UnpauseScheduleRequest(catch_up="None").catch_up == "none"
    # the normalized form is what is stored and shown
    wire = definition.to_wire(
        definition.parse(
            {"spec": {"cron": ["@daily"]}, "action": _ACTION, "policy": {"overlap": "ALLOW_ALL"}}
        )
    )
    assert wire["policy"]["overlap"] == "allow-all"


def test_an_unknown_mode_is_still_refused_naming_the_modes() -> None:
    with pytest.raises(SpecError, match="buffer-one"):
        _policy(overlap="buffer_two")


def test_a_calendar_field_given_as_a_list_is_its_values() -> None:
    """Regression: ``{"hour": [3, 4]}`` was refused as 'Unrecognized expression "[3"'."""
    spec = definition.parse_spec({"calendars": [{"hour": [3, 4], "minute": 15}]})
    [cal] = spec.calendars
    assert (cal.hour, cal.minute) == ("3,4", "15")
    assert definition.parse_spec({"calendars": [{"hour": "3,4", "minute": "15"}]}) == spec


@pytest.mark.parametrize("bad", ["a\x01b", "a\x7fb", "a b", "a/b", "x" * 201])
def test_a_schedule_id_with_a_control_character_is_refused_as_a_schedule_id(bad: str) -> None:
    """Regression: one with U+0001 was refused as "workflow id 'schedule/...' holds a
    control character", naming a workflow the user never named."""
    with pytest.raises(SpecError, match=r"schedule id .* is not valid"):
        definition.check_schedule_id(bad)
    assert definition.check_schedule_id("nightly.report-1_ü") == "nightly.report-1_ü"


def test_temporal_field_names_of_a_calendar_and_an_interval_are_read() -> None:
    """Regression: ``{"every": "7d", "offset": "1d"}`` (the name Temporal's
    SDKs give the phase) and a calendar's ``day_of_month`` were refused."""
    spec = definition.parse(
        {
            "spec": {
                "intervals": [{"every": "7d", "offset": "1d"}],
                "calendars": [{"hour": "9", "day_of_month": "1,15"}],
            },
            "action": _ACTION,
        }
    ).spec
    assert [(i.every.days, i.phase.days) for i in spec.intervals] == [(7, 1)]
    assert spec.calendars[0].day == "1,15"
    # stored and shown under Baton's names
    wire = definition.to_wire(
        definition.parse({"spec": {"intervals": [{"every": 60, "offset": 30}]}, "action": _ACTION})
    )
    assert wire["spec"]["intervals"] == [{"every": 60.0, "phase": 30.0}]
    with pytest.raises(SpecError, match="both phase and offset"):
        definition.parse(
            {"spec": {"intervals": [{"every": 60, "offset": 1, "phase": 1}]}, "action": _ACTION}
        )
    with pytest.raises(SpecError, match="both day and day_of_month"):
        definition.parse(
            {"spec": {"calendars": [{"day": "1", "day_of_month": "2"}]}, "action": _ACTION}
        )


def test_a_calendar_takes_ranges_as_temporal_writes_them() -> None:
    """Regression: ``{"hour": [{"start": 9, "end": 17, "step": 4}]}`` (a
    structured calendar's ``Range``) was refused with apscheduler's words."""
    cal = definition.parse(
        {
            "spec": {
                "calendars": [
                    {
                        "hour": [{"start": 9, "end": 17, "step": 4}, {"start": 22}],
                        "minute": {"start": 30},
                        "day_of_week": [{"start": 1, "end": 5}],
                        "month": [{"start": 3, "end": 1}],  # end below start: start alone
                        "comment": "weekday office hours",
                    }
                ]
            },
            "action": _ACTION,
        }
    ).spec.calendars[0]
    assert (cal.hour, cal.minute, cal.month) == ("9-17/4,22", "30", "3")
    assert (
        cal.day_of_week
        == definition.parse({"spec": {"calendars": [{"day_of_week": "1-5"}]}, "action": _ACTION})
        .spec.calendars[0]
        .day_of_week
    )
    for bad in ({"end": 3}, {"start": "9"}, {"start": 1, "stop": 2}, {"start": -1}):
        with pytest.raises(SpecError, match="calendar range"):
            definition.parse({"spec": {"calendars": [{"hour": [bad]}]}, "action": _ACTION})
