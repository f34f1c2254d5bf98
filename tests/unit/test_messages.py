"""Replication messages: what one outbox row becomes on the topic."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import orjson

from replication.publisher import message_for


def row(events: list[dict[str, object]]) -> dict[str, object]:
    return {
        "kind": "history",
        "namespace": "ns",
        "workflow_id": "wf",
        "run_id": uuid.UUID(int=1),
        "first_event_id": 1,
        "last_event_id": len(events),
        "version": 1,
        "created_at": datetime(2026, 1, 1, tzinfo=UTC),
        "events": events,
        "execution": {"status": "running"},
        "activities": None,
        "conflict": None,
        "ns": {"name": "ns"},
    }


def test_key_is_namespace_and_workflow_id() -> None:
    key, value = message_for(row([{"event_id": 1}]), "region-a")
    assert key == b"ns/wf"
    msg = orjson.loads(value)
    assert msg["type"] == "history_v1" and msg["source_region"] == "region-a"
    assert msg["events"] == [{"event_id": 1}] and "events_by_reference" not in msg


def test_a_batch_over_the_limit_travels_by_reference() -> None:
    events = [{"event_id": i, "attributes": {"blob": "x" * 1000}} for i in range(1, 11)]
    _, value = message_for(row(events), "region-a", max_inline_bytes=4096)
    msg = orjson.loads(value)
    assert msg["events"] == [] and msg["events_by_reference"] is True
    assert (msg["first_event_id"], msg["last_event_id"]) == (1, 10)
    assert len(value) < 4096


BIG = "x" * 5000


def test_a_large_memo_and_result_are_left_to_the_receiver_s_history() -> None:
    r = row([{"event_id": 1}])
    r["execution"] = {"status": "completed", "memo": {"m": BIG}, "result": {"data": BIG}}
    _, value = message_for(r, "region-a", max_inline_bytes=4096)
    msg = orjson.loads(value)
    assert msg["execution_fields_from_history"] is True
    assert msg["execution"]["memo"] == {} and msg["execution"]["result"] is None
    assert msg["execution"]["status"] == "completed" and len(value) <= 4096


def test_large_heartbeat_details_are_left_where_the_receiver_has_them() -> None:
    r = row([])
    r["kind"] = "progress"
    r["activities"] = [
        {"scheduled_event_id": 5, "attempt": 2, "heartbeat_details": [{"data": BIG}]}
    ]
    _, value = message_for(r, "region-a", max_inline_bytes=4096)
    msg = orjson.loads(value)
    assert msg["details_dropped"] == [5]
    assert msg["activities"] == [
        {"scheduled_event_id": 5, "attempt": 2, "heartbeat_details": None, "last_failure": None}
    ]


def test_large_buffered_inputs_and_conflicts_travel_by_reference() -> None:
    r = row([])
    r["kind"] = "buffered"
    r["buffered"] = [{"seq": 1, "event_type": "WorkflowExecutionSignaled", "attributes": BIG}]
    msg = orjson.loads(message_for(r, "region-a", max_inline_bytes=4096)[1])
    assert msg["buffered"] == [] and msg["buffered_by_reference"] is True
    r = row([])
    r["kind"] = "conflict"
    r["conflict"] = {"id": 9, "events": [{"event_id": 4, "attributes": BIG}]}
    value = message_for(r, "region-a", max_inline_bytes=4096)[1]
    msg = orjson.loads(value)
    assert msg["conflict"] == {"id": 9, "events": []} and msg["conflict_by_reference"] is True
    assert len(value) <= 4096


def test_a_small_message_keeps_everything_inline() -> None:
    r = row([{"event_id": 1}])
    r["execution"] = {"status": "running", "memo": {"m": "small"}}
    msg = orjson.loads(message_for(r, "region-a")[1])
    assert not any(k.endswith("by_reference") or k.endswith("from_history") for k in msg)
    assert msg["execution"]["memo"] == {"m": "small"}
