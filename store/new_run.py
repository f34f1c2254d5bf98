"""A run that does not exist yet: its execution row, ready for its first write."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import asyncpg

from store.mutable_state import RunTxn, utcnow
from store.namespaces import Namespace


def new_execution(
    conn: asyncpg.Connection,
    ns: Namespace,
    *,
    workflow_id: str,
    workflow_type: str,
    task_queue: str,
    request_id: str | None,
    task_timeout_s: float,
    run_timeout_s: float | None,
    memo: dict[str, Any],
    first_run_id: str | None = None,
    continued_from_run_id: str | None = None,
    now: datetime | None = None,
    search_attributes: dict[str, Any] | None = None,
    chain: dict[str, Any] | None = None,
) -> RunTxn:
    """A RunTxn for a run that does not exist yet (``chain``: its chain's
    options, see :mod:`store.chain`)."""
    run_id = str(uuid.uuid4())
    t = now or utcnow()
    exe: dict[str, Any] = {
        "namespace": ns.name,
        "workflow_id": workflow_id,
        "run_id": run_id,
        "workflow_type": workflow_type,
        "task_queue": task_queue,
        "status": "running",
        "paused": False,
        "next_event_id": 1,
        "last_write_version": ns.failover_version,
        "start_time": t,
        "close_time": None,
        "request_id": request_id,
        "first_run_id": first_run_id or run_id,
        "continued_from_run_id": continued_from_run_id,
        "continued_to_run_id": None,
        "task_timeout_s": task_timeout_s,
        "run_timeout_s": run_timeout_s,
        "memo": memo,
        "wt_scheduled_event_id": None,
        "wt_started_event_id": None,
        "wt_attempt": 1,
        "wt_started_at": None,
        "wt_identity": None,
        "last_completed_wt_started": 0,
        "buffered_events": [],
        "result": None,
        "failure": None,
        "pending_updates": False,
        "build_id": None,
        "buffered_seq": 0,
        "buffered_flushed_seq": 0,
        "signal_count": 0,
        "history_size_bytes": 0,
        "sticky_queue": None,
        "sticky_timeout_s": None,
        "search_attributes": search_attributes or {},
        "deployment": None,
        "versioning_behavior": None,
        "versioning": None,
        "pause_info": None,
        "execution_timeout_s": None,
        "execution_expiration_time": None,
        "retry_policy": None,
        "cron_schedule": None,
    }
    exe.update(chain or {})
    return RunTxn(conn=conn, ns=ns, exe=exe, now=t, is_new=True)
