"""The activity commands of a workflow task completion: schedule and cancel."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from store.errors import InvalidArgument
from store.mutable_state import (
    ACTIVITY_HEARTBEAT,
    ACTIVITY_SCHEDULE_TO_CLOSE,
    ACTIVITY_SCHEDULE_TO_START,
    ACTIVITY_START_TO_CLOSE,
    RunTxn,
)
from store.retry import normalize_policy
from store.sql import QUERIES as Q
from versioning import routing
from worker.wire import EventType


def start_activity_timers(
    act: dict[str, Any], now: datetime
) -> list[tuple[str, str, int, datetime]]:
    """Timeout timers that start with an attempt (kind, ref, attempt, fire_at)."""
    sid, attempt = str(act["scheduled_event_id"]), int(act["attempt"])
    timers = []
    if act["start_to_close_s"]:
        timers.append(
            (
                ACTIVITY_START_TO_CLOSE,
                sid,
                attempt,
                now + timedelta(seconds=act["start_to_close_s"]),
            )
        )
    if act["heartbeat_s"]:
        timers.append(
            (ACTIVITY_HEARTBEAT, sid, attempt, now + timedelta(seconds=act["heartbeat_s"]))
        )
    return timers


def _seconds(attrs: dict[str, Any], key: str) -> float | None:
    v = attrs.get(key)
    if v is None:
        return None
    v = float(v)
    if v <= 0:
        raise InvalidArgument(f"{key} must be > 0 seconds, got {v}")
    return v


async def schedule_activity(
    rt: RunTxn,
    attrs: dict[str, Any],
    completed_id: int,
    eager: list[dict[str, Any]],
    eager_max: int,
    identity: str,
    worker_version: str | None,
) -> None:
    activity_type = attrs.get("activity_type")
    activity_id = attrs.get("activity_id")
    if not activity_type or not activity_id:
        raise InvalidArgument("ScheduleActivity needs activity_type and activity_id")
    s2c = _seconds(attrs, "schedule_to_close_s")
    st2c = _seconds(attrs, "start_to_close_s") or s2c
    s2s = _seconds(attrs, "schedule_to_start_s")
    hb = _seconds(attrs, "heartbeat_s")
    if st2c is None:
        raise InvalidArgument(
            f"activity {activity_type!r} needs start_to_close_s or schedule_to_close_s"
        )
    try:
        policy = normalize_policy(attrs.get("retry_policy"))
    except ValueError as exc:
        raise InvalidArgument(f"activity {activity_type!r}: {exc}") from None
    queue = attrs.get("task_queue") or rt.exe["task_queue"]
    inputs = attrs.get("input") or []
    sid = rt.add_event(
        EventType.ACTIVITY_TASK_SCHEDULED,
        {
            "activity_id": activity_id,
            "activity_type": activity_type,
            "task_queue": queue,
            "input": inputs,
            "schedule_to_close_s": s2c,
            "schedule_to_start_s": s2s,
            "start_to_close_s": st2c,
            "heartbeat_s": hb,
            "retry_policy": policy,
            "workflow_task_completed_event_id": completed_id,
        },
    )
    paused = bool(rt.exe["paused"])
    go_eager = (
        not paused
        and len(eager) < eager_max
        and queue == rt.exe["task_queue"]
        and routing.activity_task_tag(rt.ns.deployments, rt.exe, queue) == worker_version
    )
    now = rt.now
    row = {
        "namespace": rt.namespace,
        "workflow_id": rt.workflow_id,
        "run_id": rt.run_id,
        "scheduled_event_id": sid,
        "activity_id": activity_id,
        "activity_type": activity_type,
        "task_queue": queue,
        "input": inputs,
        "state": "started" if go_eager else "scheduled",
        "attempt": 1,
        "first_scheduled_time": now,
        "scheduled_time": now,
        "started_time": now if go_eager else None,
        "started_identity": identity if go_eager else None,
        "schedule_to_close_s": s2c,
        "schedule_to_start_s": s2s,
        "start_to_close_s": st2c,
        "heartbeat_s": hb,
        "retry_policy": policy,
        "heartbeat_details": None,
        "last_heartbeat_time": None,
        "last_failure": None,
        "cancel_requested": False,
    }
    rt.insert_activity(row)
    if s2c:
        rt.add_timer(ACTIVITY_SCHEDULE_TO_CLOSE, sid, now + timedelta(seconds=s2c))
    if go_eager:
        for kind, ref, attempt, fire_at in start_activity_timers(row, now):
            rt.add_timer(kind, ref, fire_at, attempt)
        eager.append(row)
    else:
        if not paused:  # a paused run's activities get their task at unpause
            rt.add_task("activity", queue, sid, 1)
        if s2s:
            rt.add_timer(ACTIVITY_SCHEDULE_TO_START, sid, now + timedelta(seconds=s2s), 1)


def _cancel_unwritten_activity(rt: RunTxn, activity_id: str) -> bool:
    """Cancel an activity scheduled by this same completion (not written yet)."""
    for row in rt.activity_inserts:
        if row["activity_id"] != activity_id:
            continue
        sid = row["scheduled_event_id"]
        rt.activity_inserts.remove(row)
        rt.tasks = [t for t in rt.tasks if not (t[0] == "activity" and t[2] == str(sid))]
        rt.timers = [
            t for t in rt.timers if not (t[0].startswith("activity_") and t[1] == str(sid))
        ]
        row["_canceled"] = True  # keeps it out of the eager activities handed back
        rt.add_event(
            EventType.ACTIVITY_TASK_CANCEL_REQUESTED,
            {"scheduled_event_id": sid, "activity_id": activity_id},
        )
        rt.add_event(
            EventType.ACTIVITY_TASK_CANCELED, {"scheduled_event_id": sid, "identity": "server"}
        )
        return True
    return False


async def request_cancel_activity(rt: RunTxn, attrs: dict[str, Any]) -> bool:
    """Record the workflow's cancel of an activity; True when it closed here
    (never handed to a worker), so the workflow must get a task to learn of it
    (as Temporal schedules one): code waiting for the cancel to complete
    would otherwise wait for ever."""
    activity_id = str(attrs.get("activity_id") or "")
    if _cancel_unwritten_activity(rt, activity_id):
        return True
    act = await rt.conn.fetchrow(
        Q["lock_activity_by_id"], rt.namespace, rt.workflow_id, uuid.UUID(rt.run_id), activity_id
    )
    sid = act["scheduled_event_id"] if act else attrs.get("scheduled_event_id")
    rt.add_event(
        EventType.ACTIVITY_TASK_CANCEL_REQUESTED,
        {"scheduled_event_id": sid, "activity_id": activity_id},
    )
    if act is None:
        return False  # it ended already; its result is on its way to the workflow
    if act["state"] == "scheduled":
        # Never handed to a worker: cancel it right here.
        rt.add_event(
            EventType.ACTIVITY_TASK_CANCELED, {"scheduled_event_id": sid, "identity": "server"}
        )
        rt.activity_deletes.append(int(act["scheduled_event_id"]))
        return True
    await rt.conn.execute(
        Q["request_cancel_activity"], rt.namespace, rt.workflow_id, uuid.UUID(rt.run_id), sid
    )
    return False
