"""What `baton workflow describe` prints as a table: the pause and the versioning
an operator looks for, not only the JSON."""

from __future__ import annotations

from typing import Any

from rich.console import Console

from ops.cli_workflow_view import describe_view as _describe_view


def rendered(d: dict[str, Any]) -> str:
    console = Console(record=True, width=240)
    console.print(_describe_view(d))
    return console.export_text()


def described(**extra: Any) -> dict[str, Any]:
    execution = {
        "workflow_id": "order-7",
        "run_id": "5b826dbf-7ee9-4b3f-b89d-61bb91d7b3da",
        "workflow_type": "Order",
        "task_queue": "orders",
        "status": "running",
        "paused": False,
        "pause": None,
    }
    execution.update(extra.pop("execution", {}))
    return {"execution": execution, "pending_activities": [], "pending_timers": [], **extra}


def test_a_paused_run_shows_why_who_since_and_its_source() -> None:
    pause = {
        "reason": "incident downstream",
        "source": "operator",
        "identity": "oncall@ops",
        "since": "2026-12-03T19:10:48+00:00",
        "request_id": "r-1",
    }
    text = rendered(described(execution={"paused": True, "pause": pause}))
    for value in ("incident downstream", "operator", "oncall@ops", "2026-12-03T19:10:48"):
        assert value in text
    assert "pause" not in rendered(described()).replace("paused", "")


def test_a_held_run_shows_its_version_and_what_its_next_task_waits_for() -> None:
    note = "the next workflow task waits for a worker of payments:41: none has ever polled"
    versioning = {
        "deployment": "payments",
        "build_id": "41",
        "effective_behavior": "pinned",
        "override": {"kind": "pinned", "build_id": "41"},
        "next_task_version": "payments:41",
        "target_version_changed": False,
        "waiting_for_poller": True,
        "note": note,
    }
    activity = {
        "activity_id": "1",
        "activity_type": "charge",
        "state": "scheduled",
        "attempt": 3,
        "paused": True,
    }
    text = rendered(described(versioning=versioning, pending_activities=[activity]))
    for value in ("payments:41", "pinned 41", note, "scheduled (paused)"):
        assert value in text


def test_a_run_shows_its_limit_warnings_memo_and_search_attributes() -> None:
    """`describe` warns before a run reaches its limits: the table says so too,
    and shows the memo (as values, or what a payload without its key is)."""
    warning = "history length 10300 is past 10240 events; at 51200 the run is terminated"
    sealed = {"metadata": {"encoding": "binary/encrypted"}, "data": "AAAA"}
    text = rendered(
        described(
            execution={
                "memo": {"owner": "alice", "card": sealed},
                "search_attributes": {"CustomerId": "c-7"},
            },
            warnings=[warning],
        )
    )
    assert warning in text
    assert "alice" in text and "binary/encrypted payload" in text
    assert "CustomerId" in text and "c-7" in text


def test_pending_work_shows_heartbeat_details_and_when_each_timer_fires() -> None:
    """The table shows what an operator looks at a stuck activity or a sleeping
    run for: the details the next attempt resumes from, when it last beat,
    and when each timer fires (not a timer's raw JSON)."""
    activity = {
        "activity_id": "charge-1",
        "activity_type": "charge",
        "state": "started",
        "attempt": 2,
        "heartbeat_details": [
            {
                "metadata": {"encoding": "json/plain"},
                "data": "eyJwYWdlIjogN30=",
                "value": {"page": 7},
            }
        ],
        "last_heartbeat_time": "2026-12-05T12:42:07.396173+00:00",
    }
    timer = {"timer_id": "t-9", "fire_at": "2026-12-05T13:42:16.819443+00:00"}
    text = rendered(described(pending_activities=[activity], pending_timers=[timer]))
    assert '{"page": 7}' in text
    assert "2026-12-05T12:42:07" in text
    assert "t-9" in text and "2026-12-05T13:42:16" in text
    assert '"timer_id"' not in text
