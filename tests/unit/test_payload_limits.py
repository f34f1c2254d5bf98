"""Measuring outcomes against the payload limit as the server does, and replaying a
run whose result was reported as too large."""

from __future__ import annotations

import base64

from worker._history import command_matches
from worker._limits import PAYLOAD_TOO_LARGE_TYPE, largest_over, outcome_over
from worker.wire import Command, CommandType, EventType, HistoryEvent


def payload(size: int) -> dict[str, object]:
    return {"metadata": {"encoding": "json/plain"}, "data": base64.b64encode(b"x" * size).decode()}


def failed_event(failure_type: str) -> HistoryEvent:
    return HistoryEvent(
        event_id=5,
        event_type=EventType.WORKFLOW_EXECUTION_FAILED,
        event_time="2024-01-01T00:00:00+00:00",
        version=1,
        attributes={"failure": {"message": "m", "type": failure_type}},
    )


def test_a_payload_counts_its_bytes_not_its_base64_padding() -> None:
    for size in (99, 100, 101):
        assert largest_over({"result": payload(size)}, 98) == size
    assert largest_over({"result": payload(100)}, 100) is None


def test_failure_text_counts_as_the_server_counts_it() -> None:
    failure = {"message": "m" * 60, "stack_trace": "s" * 50, "type": "Boom"}
    assert largest_over({"failure": failure}, 100) == 110
    assert largest_over({"failure": failure}, 110) is None


def test_only_outcomes_are_failed_in_place() -> None:
    big = payload(200)
    done = {"type": CommandType.COMPLETE_WORKFLOW.value, "attributes": {"result": big}}
    update = {
        "type": CommandType.COMPLETE_UPDATE.value,
        "attributes": {"update_id": "u1", "result": big},
    }
    schedule = {"type": CommandType.SCHEDULE_ACTIVITY.value, "attributes": {"input": [big]}}
    assert outcome_over(done, 100) == ("the workflow's result", 200)
    assert outcome_over(update, 100) == ("the result of update 'u1'", 200)
    assert outcome_over(schedule, 100) is None  # new work, not an outcome
    assert outcome_over(done, 200) is None


def test_a_close_replays_against_its_too_large_failure_only() -> None:
    complete = Command(type=CommandType.COMPLETE_WORKFLOW, attributes={})
    continued = Command(type=CommandType.CONTINUE_AS_NEW, attributes={})
    assert command_matches(complete, failed_event(PAYLOAD_TOO_LARGE_TYPE), lambda _: None)
    assert not command_matches(complete, failed_event("Boom"), lambda _: None)
    assert not command_matches(continued, failed_event(PAYLOAD_TOO_LARGE_TYPE), lambda _: None)
