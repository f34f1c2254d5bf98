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
