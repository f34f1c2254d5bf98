"""What a standby's plain apply announces once its batch committed."""

from __future__ import annotations

from replication.applier import applied_notifications


def test_each_run_written_is_announced_and_each_closed_one_as_closed() -> None:
    msgs = [
        {
            "type": "history_v1",
            "namespace": "n",
            "workflow_id": "a",
            "execution": {"status": "running"},
        },
        {
            "type": "history_v1",
            "namespace": "n",
            "workflow_id": "b",
            "execution": {"status": "completed"},
        },
        {
            "type": "progress_v1",
            "namespace": "n",
            "workflow_id": "c",
            "execution": {"status": "failed"},
        },
        {"type": "history_v1", "namespace": "n", "workflow_id": "d"},
    ]
    assert applied_notifications(msgs) == [
        ("baton_history_v1", "n/a"),
        ("baton_history_v1", "n/b"),
        ("baton_closed_v1", "n/b"),
        ("baton_history_v1", "n/d"),
    ]


def test_a_message_without_a_run_announces_nothing() -> None:
    assert applied_notifications([{"type": "history_v1", "namespace": "n"}]) == []
