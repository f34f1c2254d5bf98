"""What a promotion rebuilds of a run whose activity id was used again after
its first activity closed: the pending activity only, by its scheduled event."""

from __future__ import annotations

from typing import Any

from store.rebuild import pending_from_history


def _event(event_id: int, kind: str, **attrs: Any) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "event_type": kind,
        "event_time": "2026-01-01T00:00:00+00:00",
        "attributes": attrs,
    }


def test_an_activity_id_used_again_rebuilds_the_pending_activity_only() -> None:
    events = [
        _event(5, "ActivityTaskScheduled", activity_id="same", activity_type="a"),
        _event(6, "ActivityTaskPaused", scheduled_event_id=5, reason="look"),
        _event(7, "ActivityTaskCompleted", scheduled_event_id=5),
        _event(10, "ActivityTaskScheduled", activity_id="same", activity_type="a"),
        _event(11, "ActivityTaskCancelRequested", scheduled_event_id=5, activity_id="same"),
    ]
    work = pending_from_history(events)
    assert list(work.activities) == [10]
    # the first activity's pause and a late cancel request of it are not the second's
    assert work.activities[10].pause is None
    assert not work.activities[10].cancel_requested
