"""Replication messages: what one outbox row becomes on the topic."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import orjson

from replication.publisher import message_for, messages_for


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


def history(wf: str, first: int, last: int, **fields: object) -> dict[str, object]:
    r = row([{"event_id": i} for i in range(first, last + 1)])
    r.update(workflow_id=wf, first_event_id=first, last_event_id=last, **fields)
    return r


def test_a_run_s_rows_that_continue_each_other_travel_as_one_message() -> None:
    later = datetime(2026, 1, 2, tzinfo=UTC)
    rows = [
        history("wf", 1, 2),
        history("other", 1, 2),
        history("wf", 3, 3),
        history("wf", 4, 6, execution={"status": "completed"}, created_at=later),
        history("other", 3, 4),
    ]
    msgs = [(k, orjson.loads(v)) for k, v in messages_for(rows, "region-a")]
    assert [k for k, _ in msgs] == [b"ns/wf", b"ns/other"]
    wf, other = msgs[0][1], msgs[1][1]
    assert (wf["first_event_id"], wf["last_event_id"]) == (1, 6)
    assert [e["event_id"] for e in wf["events"]] == [1, 2, 3, 4, 5, 6]
    # the last row's execution row and time: the state after all its events
    assert wf["execution"] == {"status": "completed"}
    assert wf["source_time"] == later.isoformat()
    assert [e["event_id"] for e in other["events"]] == [1, 2, 3, 4]


def test_rows_that_do_not_continue_each_other_keep_their_own_messages_in_order() -> None:
    progress = history("wf", 3, 3, kind="progress", events=None)
    cases = [
        [history("wf", 1, 2), history("wf", 4, 4)],  # a gap: the receiver fills it
        [history("wf", 1, 2), history("wf", 3, 3, run_id=uuid.UUID(int=2))],
        [history("wf", 1, 2), history("wf", 3, 3, version=101)],
        [history("wf", 1, 2), history("wf", 3, 3, ns={"name": "ns", "state": "moved"})],
        # a progress row between two batches of the run stays between them
        [history("wf", 1, 2), progress, history("wf", 3, 3)],
    ]
    for rows in cases:
        msgs = [orjson.loads(v) for _, v in messages_for(rows, "region-a")]
        assert len(msgs) == len(rows)
        assert [m["type"] for m in msgs] == [
            "progress_v1" if r["kind"] == "progress" else "history_v1" for r in rows
        ]
        assert [m["first_event_id"] for m in msgs] == [r["first_event_id"] for r in rows]


def test_rows_too_large_to_travel_together_keep_their_events_inline() -> None:
    blob = {"blob": "x" * 1500}
    rows = [history("wf", 1, 2), history("wf", 3, 4)]
    for r in rows:
        r["events"] = [{"event_id": e["event_id"], "attributes": blob} for e in r["events"]]
    msgs = [orjson.loads(v) for _, v in messages_for(rows, "region-a", max_inline_bytes=4096)]
    assert [[e["event_id"] for e in m["events"]] for m in msgs] == [[1, 2], [3, 4]]
    assert not any(m.get("events_by_reference") for m in msgs)
