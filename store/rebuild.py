"""Rebuilding the pending work of a namespace that just became active here.

A standby keeps history, execution rows, buffered inputs, updates and what it
learnt of activities in flight, but no tasks, timers or activity rows: it does
not run the workflows. When a namespace becomes active in this region, every
open workflow's pending work is derived again from its own history and state,
in the new failover version:

* a workflow task a worker of the old region held is closed as timed out and
  scheduled anew, after the inputs that waited behind it; a scheduled one is
  dispatched; one waiting out its retry backoff gets its retry timer, due when
  it would have been in the old region;
* every open activity is scheduled with its attempt and heartbeat details; an
  attempt that was running in the old region is lost with it and counts as a
  failed attempt under the activity's retry policy; a retry waiting out its
  backoff keeps its due time; schedule-to-close deadlines run from the
  original schedule time;
* user timers keep their fire times and the run timeout its deadline;
* inputs that waited behind the old region's started workflow task are
  written after it, and what they closed there (an activity's end, a timer
  that fired) stays closed: it is not scheduled again.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from store.chain import add_execution_timer, fill_from_started
from store.errors import WorkflowNotFound
from store.mutable_state import (
    ACTIVITY_RETRY,
    ACTIVITY_SCHEDULE_TO_CLOSE,
    ACTIVITY_SCHEDULE_TO_START,
    USER_TIMER,
    WT_RETRY,
    RunTxn,
    utcnow,
)
from store.retry import retry_decision, workflow_task_retry_delay
from store.sql import QUERIES as Q
from store.workflow_retry import add_backoff_timer, add_run_timer, first_task_backoff
from worker.wire import EventType

_ACTIVITY_CLOSE = {
    EventType.ACTIVITY_TASK_COMPLETED.value,
    EventType.ACTIVITY_TASK_FAILED.value,
    EventType.ACTIVITY_TASK_TIMED_OUT.value,
    EventType.ACTIVITY_TASK_CANCELED.value,
}
_TIMER_CLOSE = {EventType.TIMER_FIRED.value, EventType.TIMER_CANCELED.value}
_TASK_ENDS = {EventType.WORKFLOW_TASK_FAILED.value, EventType.WORKFLOW_TASK_TIMED_OUT.value}


@dataclass
class OpenActivity:
    """An activity history shows scheduled and not closed."""

    attributes: dict[str, Any]
    scheduled_time: datetime
    cancel_requested: bool = False
    #: Paused (reason, who, since), from its ActivityTaskPaused event.
    pause: dict[str, Any] | None = None


@dataclass
class PendingWork:
    """What history says is still open in a run."""

    activities: dict[int, OpenActivity]
    timers: dict[str, str]  # timer id -> fire_at (ISO)
    last_task_end: datetime | None  # time of the last failed or timed-out workflow task


def pending_from_history(events: list[Any]) -> PendingWork:
    """Activities (by scheduled event id), timers and workflow-task retries still open."""
    activities: dict[int, OpenActivity] = {}
    timers: dict[str, str] = {}
    last_task_end: datetime | None = None
    for e in events:
        kind, attrs = e["event_type"], e["attributes"]
        if kind == EventType.ACTIVITY_TASK_SCHEDULED.value:
            activities[e["event_id"]] = OpenActivity(attrs, _time(e["event_time"]))
        elif kind == EventType.ACTIVITY_TASK_CANCEL_REQUESTED.value:
            act = activities.get(attrs.get("scheduled_event_id"))
            if act is not None:
                act.cancel_requested = True
        elif kind in _ACTIVITY_CONTROL:
            act = activities.get(attrs.get("scheduled_event_id"))
            if act is not None:
                act.pause = _pause_after(act.pause, kind, attrs, e["event_time"])
        elif kind in _ACTIVITY_CLOSE:
            activities.pop(attrs.get("scheduled_event_id"), None)
        elif kind == EventType.TIMER_STARTED.value:
            timers[attrs["timer_id"]] = attrs["fire_at"]
        elif kind in _TIMER_CLOSE:
            timers.pop(attrs.get("timer_id"), None)
        elif kind in _TASK_ENDS:
            last_task_end = _time(e["event_time"])
    return PendingWork(activities, timers, last_task_end)


_ACTIVITY_CONTROL = frozenset(
    {
        EventType.ACTIVITY_TASK_PAUSED.value,
        EventType.ACTIVITY_TASK_UNPAUSED.value,
        EventType.ACTIVITY_TASK_RESET.value,
    }
)


def _pause_after(
    pause: dict[str, Any] | None, kind: str, attrs: dict[str, Any], at: datetime | str
) -> dict[str, Any] | None:
    """An activity's pause after one of its pause, unpause or reset events."""
    if kind == EventType.ACTIVITY_TASK_PAUSED.value:
        since = _time(at).isoformat()
        keys = ("reason", "identity", "source", "request_id")
        return {**{k: attrs.get(k) for k in keys}, "since": since}
    if kind == EventType.ACTIVITY_TASK_RESET.value and attrs.get("keep_paused"):
        return pause
    return None


def _time(value: datetime | str) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(value)


def _rebuild_workflow_task(rt: RunTxn, work: PendingWork, retry_max_s: float) -> None:
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
    elif rt.exe["buffered_events"]:
        rt.flush_buffered()
        rt.schedule_workflow_task()
    elif int(rt.exe["wt_attempt"]) > 1:
        # A failing workflow task waiting out its backoff (a bug waiting for a
        # fix): its retry is due when it would have been in the old region.
        attempt = int(rt.exe["wt_attempt"])
        delay = workflow_task_retry_delay(attempt, retry_max_s)
        fire_at = (work.last_task_end or rt.now) + timedelta(seconds=delay)
        rt.add_timer(WT_RETRY, "retry", max(fire_at, rt.now), attempt=attempt)


def _activity_row(rt: RunTxn, sid: int, act: OpenActivity) -> dict[str, Any]:
    a = act.attributes
    return {
        "namespace": rt.namespace,
        "workflow_id": rt.workflow_id,
        "run_id": rt.run_id,
        "scheduled_event_id": sid,
        "activity_id": a["activity_id"],
        "activity_type": a["activity_type"],
        "task_queue": a["task_queue"],
        "input": a.get("input") or [],
        "state": "scheduled",
        "attempt": 1,
        "first_scheduled_time": act.scheduled_time,
        "scheduled_time": rt.now,
        "started_time": None,
        "started_identity": None,
        "schedule_to_close_s": a.get("schedule_to_close_s"),
        "schedule_to_start_s": a.get("schedule_to_start_s"),
        "start_to_close_s": a.get("start_to_close_s"),
        "heartbeat_s": a.get("heartbeat_s"),
        "retry_policy": a.get("retry_policy") or {},
        "heartbeat_details": None,
        "last_heartbeat_time": None,
        "last_failure": None,
        "cancel_requested": act.cancel_requested,
        "paused": act.pause is not None,
        "control": {"pause": act.pause} if act.pause else None,
    }


def _rebuild_activity(
    rt: RunTxn, sid: int, act: OpenActivity, seen: asyncpg.Record | None, old_region: str
) -> bool:
    """Re-create one open activity; returns True if it closed (the workflow has a task)."""
    row = _activity_row(rt, sid, act)
    now = rt.now
    s2c = row["schedule_to_close_s"]
    deadline = act.scheduled_time + timedelta(seconds=s2c) if s2c else None
    if seen is not None:
        row["attempt"] = int(seen["attempt"])
        row["heartbeat_details"] = seen["heartbeat_details"]
        row["last_failure"] = seen["last_failure"]
    due = now
    if seen is not None and seen["state"] == "started":
        # The attempt ran in the old region and is lost with it: a failed
        # attempt, retried (or not) as the policy says.
        failure = {
            "message": f"the attempt was running in {old_region} when the namespace moved "
            "to another region",
            "type": "ActivityAttemptLost",
        }
        row["last_failure"] = failure
        delay, retry_state = None, ""
        if not act.cancel_requested:
            delay, retry_state = retry_decision(
                row["retry_policy"],
                attempt=row["attempt"],
                error_type=failure["type"],
                non_retryable=False,
                seconds_left=None if deadline is None else (deadline - now).total_seconds(),
            )
        if delay is None:
            _close_lost_activity(rt, row, act, failure, retry_state)
            return True
        row["attempt"] += 1
        due = now + timedelta(seconds=delay)
    elif seen is not None and seen["scheduled_time"] is not None:
        due = max(now, seen["scheduled_time"])  # a retry waiting out its backoff
    if act.cancel_requested and (seen is None or seen["state"] == "scheduled"):
        # Never started here: cancel it at once, as the old region would have.
        rt.add_input_event(
            EventType.ACTIVITY_TASK_CANCELED, {"scheduled_event_id": sid, "identity": "server"}
        )
        return True
    row["scheduled_time"] = due
    rt.insert_activity(row)
    if act.pause is not None:
        pass  # paused: its next attempt waits for unpause, here as in the old region
    elif due > now:
        rt.add_timer(ACTIVITY_RETRY, sid, due, attempt=row["attempt"])
    else:
        rt.add_task("activity", row["task_queue"], sid, row["attempt"])
        if row["schedule_to_start_s"]:
            rt.add_timer(
                ACTIVITY_SCHEDULE_TO_START,
                sid,
                now + timedelta(seconds=row["schedule_to_start_s"]),
                row["attempt"],
            )
    if deadline is not None:
        rt.add_timer(ACTIVITY_SCHEDULE_TO_CLOSE, sid, deadline)  # fires at once if past
    return False


def _close_lost_activity(
    rt: RunTxn, row: dict[str, Any], act: OpenActivity, failure: dict[str, Any], retry_state: str
) -> None:
    sid = row["scheduled_event_id"]
    rt.add_input_event(
        EventType.ACTIVITY_TASK_STARTED,
        {
            "scheduled_event_id": sid,
            "attempt": row["attempt"],
            "identity": None,
            "last_failure": None,
        },
    )
    if act.cancel_requested:
        rt.add_input_event(
            EventType.ACTIVITY_TASK_CANCELED, {"scheduled_event_id": sid, "identity": "server"}
        )
    else:
        rt.add_input_event(
            EventType.ACTIVITY_TASK_TIMED_OUT,
            {
                "scheduled_event_id": sid,
                "timeout_type": "start_to_close",
                "failure": {**failure, "timeout_type": "start_to_close"},
                # why no attempt follows, as an attempt that timed out here says
                "retry_state": retry_state,
            },
        )


async def rebuild_execution_txn(
    rt: RunTxn, *, retry_max_s: float, old_region: str, old_version: int | None = None
) -> None:
    """Re-create the pending work of one open run (inside the caller's transaction).

    ``old_version``: the namespace's failover version before the move, under
    which the old active region wrote the inputs waiting here."""
    events = await rt.conn.fetch(
        Q["history_from"], rt.namespace, rt.workflow_id, uuid.UUID(rt.run_id), 1, 1_000_000
    )
    # Inputs buffered behind a started workflow task (an activity's end, a
    # timer that fired) already closed what they name in the old region, which
    # deleted its activity or timer row then; they become events here, after
    # the task. Read as history, or the activity would run again and the
    # timer fire twice.
    buffered = [
        {"event_type": kind, "attributes": attrs, "event_time": rt.now}
        for kind, attrs, _seq in rt.exe["buffered_events"]
    ]
    work = pending_from_history([*events, *buffered])
    if rt.exe["buffered_events"] and old_version is not None:
        # They are this region's now (written as events below): a later
        # message of the old region that carries them again, one it
        # re-ships or its waiting inputs once it is deposed, must not apply
        # them a second time beside those it never shipped.
        seqs = [int(seq) for *_, seq in rt.exe["buffered_events"]]
        await rt.conn.execute(
            Q["mark_waiting_inputs_held"],
            rt.namespace,
            rt.workflow_id,
            uuid.UUID(rt.run_id),
            seqs,
            old_version,
        )
    # Stickiness pointed at a worker of the old region; updates no task took
    # were dropped with the move (their callers retry here).
    rt.exe["sticky_queue"] = None
    rt.exe["sticky_timeout_s"] = None
    rt.exe["pending_updates"] = False
    _rebuild_workflow_task(rt, work, retry_max_s)
    if await _request_reapplied_updates(rt, events):
        rt.exe["pending_updates"] = True
        rt.schedule_workflow_task()
    progress = {
        r["scheduled_event_id"]: r
        for r in await rt.conn.fetch(
            Q["take_activity_progress_of_run"], rt.namespace, rt.workflow_id, uuid.UUID(rt.run_id)
        )
    }
    closed_any = False
    for sid, act in work.activities.items():
        closed_any |= _rebuild_activity(rt, sid, act, progress.get(sid), old_region)
    if closed_any:
        rt.schedule_workflow_task()
    for timer_id, fire_at in work.timers.items():
        rt.add_timer(USER_TIMER, timer_id, datetime.fromisoformat(fire_at))
    started = (events[0]["attributes"] or {}) if events else {}
    add_run_timer(rt, first_task_backoff(started, rt.run_id), rt.exe["start_time"])
    if events:
        await fill_from_started(rt, events[0]["attributes"] or {})
    add_execution_timer(rt)
    add_backoff_timer(rt, events)
    await rt.write_txn()


async def _request_reapplied_updates(rt: RunTxn, events: list[Any]) -> bool:
    """Request again the updates this run's reset re-applied when no task of
    the old region took them (they waited outside history, so they did not
    replicate). A task that completed after the reset took them all: those it
    accepted are known from history, and those it rejected stay rejected."""
    updates: list[dict[str, Any]] = []
    for ev in events:
        a = ev["attributes"]
        if (
            ev["event_type"] == EventType.WORKFLOW_TASK_FAILED.value
            and a.get("cause") == "ResetWorkflow"
            and a.get("new_run_id") == rt.run_id
        ):
            updates = list(a.get("reapplied_updates") or [])
        elif ev["event_type"] == EventType.WORKFLOW_TASK_COMPLETED.value:
            updates = []
    inserted = False
    for u in updates:
        status = await rt.conn.execute(
            Q["insert_reset_update"],
            rt.namespace,
            rt.workflow_id,
            str(u["update_id"]),
            uuid.UUID(rt.run_id),
            u.get("name") or "",
            u.get("input") or [],
            "requested",
        )
        inserted |= status.endswith(" 1")
    return inserted


async def pending_on_standby(
    conn: asyncpg.Connection, row: asyncpg.Record
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """A running run's pending activities and user timers as a standby knows
    them (its describe): it holds no activity or timer rows, so they come from
    history, the inputs buffered behind a started task, and what it learnt of
    the activities in flight, as a promotion would rebuild them."""
    key = (row["namespace"], row["workflow_id"], row["run_id"])
    events = await conn.fetch(Q["history_from"], *key, 1, 1_000_000)
    buffered = [
        {"event_type": b["event_type"], "attributes": b["attributes"], "event_time": utcnow()}
        for b in await conn.fetch(Q["buffered_of_run"], *key, row["buffered_flushed_seq"])
    ]
    work = pending_from_history([*events, *buffered])
    progress = {
        p["scheduled_event_id"]: p for p in await conn.fetch(Q["activity_progress_of_run"], *key)
    }
    activities: list[dict[str, Any]] = []
    for sid, act in sorted(work.activities.items()):
        seen = progress.get(sid)
        activities.append(
            {
                "activity_id": act.attributes["activity_id"],
                "activity_type": act.attributes["activity_type"],
                "state": seen["state"] if seen else "scheduled",
                "attempt": int(seen["attempt"]) if seen else 1,
                "scheduled_event_id": sid,
                "last_failure": seen["last_failure"] if seen else None,
                "heartbeat_details": seen["heartbeat_details"] if seen else None,
                # (when this region learnt of it, not the worker's own time)
                "last_heartbeat_time": (
                    seen["updated_at"] if seen and seen["heartbeat_details"] else None
                ),
                "paused": act.pause is not None,
                "cancel_requested": act.cancel_requested,
                "control": {"pause": act.pause} if act.pause else None,
            }
        )
    fires = sorted((datetime.fromisoformat(at), timer_id) for timer_id, at in work.timers.items())
    timers: list[dict[str, Any]] = [{"timer_id": t, "fire_at": at} for at, t in fires]
    return activities, timers


async def rebuild_namespace_txn(
    conn: asyncpg.Connection,
    namespace: str,
    region: str,
    region_urls: dict[str, str],
    *,
    retry_max_s: float = 60.0,
    old_region: str = "the old region",
    old_version: int | None = None,
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
            await rebuild_execution_txn(
                rt, retry_max_s=retry_max_s, old_region=old_region, old_version=old_version
            )
            rebuilt += 1
    return rebuilt
