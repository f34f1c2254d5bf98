"""Rebuilding the pending work of a namespace that just became active here.

A standby keeps history and execution rows but no tasks, timers or activity
rows: it does not run the workflows. When a namespace becomes active in this
region, every open workflow's pending workflow task, activities and timers
are derived again from its own history, in the new failover version. A
workflow task that a worker of the old region held is closed as timed out and
scheduled anew.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from store.errors import WorkflowNotFound
from store.mutable_state import (
    ACTIVITY_SCHEDULE_TO_CLOSE,
    ACTIVITY_SCHEDULE_TO_START,
    RUN_TIMEOUT,
    USER_TIMER,
    RunTxn,
)
from store.sql import QUERIES as Q
from worker.wire import EventType

_ACTIVITY_CLOSE = {
    EventType.ACTIVITY_TASK_COMPLETED.value,
    EventType.ACTIVITY_TASK_FAILED.value,
    EventType.ACTIVITY_TASK_TIMED_OUT.value,
    EventType.ACTIVITY_TASK_CANCELED.value,
}
_TIMER_CLOSE = {EventType.TIMER_FIRED.value, EventType.TIMER_CANCELED.value}


def pending_from_history(events: list[Any]) -> tuple[dict[int, dict[str, Any]], dict[str, str]]:
    """Activities (by scheduled event id) and timers (id -> fire_at) still open."""
    activities: dict[int, dict[str, Any]] = {}
    timers: dict[str, str] = {}
    for e in events:
        kind, attrs = e["event_type"], e["attributes"]
        if kind == EventType.ACTIVITY_TASK_SCHEDULED.value:
            activities[e["event_id"]] = attrs
        elif kind in _ACTIVITY_CLOSE:
            activities.pop(attrs.get("scheduled_event_id"), None)
        elif kind == EventType.TIMER_STARTED.value:
            timers[attrs["timer_id"]] = attrs["fire_at"]
        elif kind in _TIMER_CLOSE:
            timers.pop(attrs.get("timer_id"), None)
    return activities, timers


async def rebuild_execution_txn(rt: RunTxn) -> None:
    """Re-create the pending work of one open run (inside the caller's transaction)."""
    events = await rt.conn.fetch(
        Q["history_from"], rt.namespace, rt.workflow_id, uuid.UUID(rt.run_id), 1, 1_000_000
    )
    activities, timers = pending_from_history(list(events))
    if rt.wt_started:
        # A worker of the old region held this task: close it and start over here.
        rt.add_event(
            EventType.WORKFLOW_TASK_TIMED_OUT,
            {
                "scheduled_event_id": rt.exe["wt_scheduled_event_id"],
                "started_event_id": rt.exe["wt_started_event_id"],
            },
        )
        rt.clear_workflow_task()
        rt.exe["wt_attempt"] = int(rt.exe["wt_attempt"]) + 1
        rt.flush_buffered()
        rt.schedule_workflow_task()
    elif rt.wt_pending:
        rt.add_task(
            "workflow",
            rt.exe["task_queue"],
            rt.exe["wt_scheduled_event_id"],
            int(rt.exe["wt_attempt"]),
        )
    elif rt.exe.get("pending_updates"):
        rt.schedule_workflow_task()
    now = rt.now
    # What a standby learnt of the activities in flight: their attempt and
    # last heartbeat details. An attempt that was running in the old region
    # is lost with it and counts as one; the next sees its heartbeat details.
    progress = {
        r["scheduled_event_id"]: r
        for r in await rt.conn.fetch(
            Q["take_activity_progress_of_run"], rt.namespace, rt.workflow_id, uuid.UUID(rt.run_id)
        )
    }
    for sid, a in activities.items():
        seen = progress.get(sid)
        attempt = 1
        if seen is not None:
            attempt = int(seen["attempt"]) + (1 if seen["state"] == "started" else 0)
        row = {
            "namespace": rt.namespace,
            "workflow_id": rt.workflow_id,
            "run_id": rt.run_id,
            "scheduled_event_id": sid,
            "activity_id": a["activity_id"],
            "activity_type": a["activity_type"],
            "task_queue": a["task_queue"],
            "input": a.get("input") or [],
            "state": "scheduled",
            "attempt": attempt,
            "first_scheduled_time": now,
            "scheduled_time": now,
            "started_time": None,
            "started_identity": None,
            "schedule_to_close_s": a.get("schedule_to_close_s"),
            "schedule_to_start_s": a.get("schedule_to_start_s"),
            "start_to_close_s": a.get("start_to_close_s"),
            "heartbeat_s": a.get("heartbeat_s"),
            "retry_policy": a.get("retry_policy") or {},
            "heartbeat_details": seen["heartbeat_details"] if seen else None,
            "last_heartbeat_time": None,
            "last_failure": seen["last_failure"] if seen else None,
            "cancel_requested": False,
        }
        rt.insert_activity(row)
        rt.add_task("activity", a["task_queue"], sid, attempt)
        if a.get("schedule_to_close_s"):
            rt.add_timer(
                ACTIVITY_SCHEDULE_TO_CLOSE, sid, now + timedelta(seconds=a["schedule_to_close_s"])
            )
        if a.get("schedule_to_start_s"):
            rt.add_timer(
                ACTIVITY_SCHEDULE_TO_START,
                sid,
                now + timedelta(seconds=a["schedule_to_start_s"]),
                attempt,
            )
    for timer_id, fire_at in timers.items():
        rt.add_timer(USER_TIMER, timer_id, datetime.fromisoformat(fire_at))
    if rt.exe["run_timeout_s"]:
        rt.add_timer(
            RUN_TIMEOUT, "run", rt.exe["start_time"] + timedelta(seconds=rt.exe["run_timeout_s"])
        )
    await rt.write_txn()


async def rebuild_namespace_txn(
    conn: asyncpg.Connection, namespace: str, region: str, region_urls: dict[str, str]
) -> int:
    """Rebuild every open run of ``namespace`` (now active here); returns how many."""
    rows = await conn.fetch(Q["open_runs"], namespace)
    rebuilt = 0
    for r in rows:
        try:
            rt = await RunTxn.lock(
                conn,
                namespace,
                r["workflow_id"],
                str(r["run_id"]),
                region=region,
                region_urls=region_urls,
            )
        except WorkflowNotFound:
            continue  # replication archived that run in the meantime
        if rt.running:
            await rebuild_execution_txn(rt)
            rebuilt += 1
    return rebuilt
