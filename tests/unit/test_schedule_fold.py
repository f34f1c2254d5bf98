"""A schedule's description folded from its history, before its first workflow task."""

from __future__ import annotations

from datetime import UTC, datetime

from scheduler import definition
from store.schedule_view import fold
from worker.converter import PayloadConverter
from worker.wire import EventType


def started(inp: dict[str, object]) -> dict[str, object]:
    payload = PayloadConverter().to_payload(inp).model_dump(mode="json")
    return {
        "event_type": EventType.WORKFLOW_EXECUTION_STARTED.value,
        "attributes": {"input": [payload]},
    }


def test_a_schedule_not_yet_run_shows_its_counters_at_zero() -> None:
    """Describe right after create answers the counters the first task will
    show, not an empty object a table prints as an empty box."""
    d = fold([started({"schedule": {"policy": {}}, "created_at": "2026-01-01T00:00:00Z"})])
    assert d["counters"] == {
        "actions": 0,
        "skipped": 0,
        "buffer_dropped": 0,
        "missed_catchup": 0,
        "missed_paused": 0,
    }


def signaled(name: str, body: dict[str, object]) -> dict[str, object]:
    payload = PayloadConverter().to_payload(body).model_dump(mode="json")
    return {
        "event_type": EventType.WORKFLOW_EXECUTION_SIGNALED.value,
        "event_time": datetime(2026, 1, 1, 1, tzinfo=UTC),
        "attributes": {"signal_name": name, "input": [payload]},
    }


def test_a_pause_or_update_not_taken_yet_shows_as_the_call_made_it() -> None:
    """Regression: ``pause()`` then ``describe()`` (or ``baton schedule
    list``) said the schedule was not paused, with the old note and the old
    definition after an ``update()``, until the schedule's next workflow task."""
    start = started(
        {"schedule": {"policy": {"overlap": "skip"}}, "created_at": "2026-01-01T00:00:00Z"}
    )
    new = definition.to_wire(
        definition.parse(
            {
                "spec": {"cron": ["0 3 * * *"]},
                "action": {"workflow_type": "Report", "task_queue": "q"},
                "policy": {"overlap": "allow-all"},
            }
        )
    )
    d = fold([start, signaled("pause", {"note": "deploy"}), signaled("update", {"schedule": new})])
    assert (d["paused"], d["note"], d["schedule"]) == (True, "deploy", new)
    assert d["paused_at"] == "2026-01-01T01:00:00Z"
    assert d["pending_signals"] == 2
    d = fold([start, signaled("pause", {"note": "a"}), signaled("unpause", {"note": "b"})])
    assert (d["paused"], d["note"], d["paused_at"]) == (False, "b", None)
    # a trigger or backfill waits for the schedule; nothing to show early
    d = fold([start, signaled("trigger", {"overlap": "skip"})])
    assert (d["paused"], d["pending_signals"]) == (False, 1)
