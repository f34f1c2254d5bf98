"""A schedule's description folded from its history, before its first workflow task."""

from __future__ import annotations

from store.schedules import fold
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
