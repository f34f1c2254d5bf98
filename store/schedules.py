"""Create and change schedules (describe and list: :mod:`store.schedule_view`).

A schedule ``S`` is the system workflow ``schedule/S`` (``scheduler/workflow.py``).
Every change is checked here first (a bad definition, time or mode gets
``INVALID_ARGUMENT`` and nothing is sent), then sent to it as a signal with a
request id, so a retried call is applied once. ``describe`` folds the
schedule's own history (its start input, its last recorded snapshot, the
signals since), so it needs no worker and reads the same in every region.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import logging
import uuid
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError

from scheduler import definition
from scheduler.definition import iso, parse_time
from scheduler.policy import action_workflow_id
from scheduler.spec import SpecError, fires_until, next_fires
from scheduler.wallclock import names_some_date
from scheduler.workflow import (
    MAX_BACKFILL,
    WATCH_ACTIVITY,
    WORKFLOW_TYPE,
    schedule_workflow_id,
)
from store import starts, workflows
from store.batch.job import TASK_QUEUE
from store.chain import start_policy
from store.clock import utcnow
from store.context import Store
from store.errors import (
    InvalidArgument,
    RequestIdReused,
    ScheduleAlreadyExists,
    ScheduleNotFound,
    WorkflowAlreadyStarted,
    WorkflowNotFound,
    WorkflowNotRunning,
)
from store.namespaces import get_namespace, require_active_here
from store.schedule_view import decode_payload, describe_schedule, not_found
from store.sql import QUERIES as Q
from store.visibility import validate_upsert
from worker import wire
from worker.converter import PayloadConverter

_CONVERTER = PayloadConverter()
log = logging.getLogger("baton.schedules")


def _checked(schedule: dict[str, Any]) -> dict[str, Any]:
    try:
        parsed = definition.parse(schedule)
        checked = definition.to_wire(parsed)
    except SpecError as exc:
        raise InvalidArgument(f"schedule: {exc}") from None
    spec, now = parsed.spec, utcnow()
    # the calendars of spec.cron come first, then those of spec.calendars
    from_cron = len(spec.calendars) - len((schedule.get("spec") or {}).get("calendars") or [])
    for what, cals in (
        ("spec.cron", spec.calendars[:from_cron]),
        ("spec.calendars", spec.calendars[from_cron:]),
        ("spec.exclude", spec.exclude),
    ):
        for cal in cals:
            if not names_some_date(cal):
                # apscheduler would look up to the year 9999 for it, for seconds, at every look
                fields = ", ".join(
                    f"{k} {v!r}" for k, v in vars(cal).items() if v not in ("*", "0")
                )
                raise InvalidArgument(
                    f"schedule: {what} has a calendar that names no date ({fields}), like "
                    "February 30 or a 2nd Monday that is a Saturday: fix or remove it"
                )
    if (
        spec.exclude
        and not next_fires(spec, now, 1)
        and next_fires(replace(spec, exclude=()), now, 1)
    ):
        raise InvalidArgument(
            "schedule: the exclusions leave no fire among the times the spec names next "
            "(tens of thousands): narrow spec.exclude"
        )
    _check_startable(checked["action"])
    if checked["action"].get("retry_policy") is not None:
        checked["action"]["retry_policy"] = start_policy(checked["action"]["retry_policy"])
    return checked


def _check_startable(action: dict[str, Any]) -> None:
    """The action must be a start the API takes: refused now, not at every fire.

    The start activity sends these fields as they are; what the start request
    would refuse (an input that is not payloads, a task timeout over an hour)
    would otherwise fail each fire as ``start-failed``.
    """
    try:
        wire.StartWorkflowRequest(
            workflow_id="schedule-action",
            workflow_type=action["workflow_type"],
            task_queue=action["task_queue"],
            input=action["input"],
            task_timeout_s=action["task_timeout_s"],
            run_timeout_s=action["run_timeout_s"],
            execution_timeout_s=action.get("execution_timeout_s"),
            retry_policy=action.get("retry_policy"),
            memo=action["memo"],
            versioning_behavior=action["versioning_behavior"],
        )
    except ValidationError as exc:
        problems = [
            {"field": "action." + ".".join(str(p) for p in e["loc"]), "problem": e["msg"]}
            for e in exc.errors()
        ]
        text = "; ".join(f"{p['field']}: {p['problem']}" for p in problems[:5])
        raise InvalidArgument(f"schedule: {text}", problems=problems) from None


async def _check_attributes(store: Store, namespace: str, sched: dict[str, Any]) -> None:
    """The action's search attributes must be registered: refused now, not at the first fire."""
    async with store.pool.acquire() as conn:
        ns = await get_namespace(conn, namespace)
    validate_upsert(ns.active_search_attributes(), {}, sched["action"]["search_attributes"])


async def create_schedule(
    store: Store, namespace: str, req: wire.CreateScheduleRequest
) -> dict[str, Any]:
    try:
        definition.check_schedule_id(req.schedule_id)
    except SpecError as exc:
        raise InvalidArgument(str(exc)) from None
    sched = _checked(req.schedule)
    await _check_attributes(store, namespace, sched)
    start = wire.StartWorkflowRequest(
        workflow_id=schedule_workflow_id(req.schedule_id),
        workflow_type=WORKFLOW_TYPE,
        task_queue=TASK_QUEUE,
        input=[
            _CONVERTER.to_payload(
                {
                    "schedule_id": req.schedule_id,
                    "namespace": namespace,
                    "schedule": sched,
                    "state": None,
                    "paused": req.paused,
                    "note": req.note,
                    "created_at": iso(utcnow()),
                }
            )
        ],
        request_id=req.request_id or f"schedule-create:{req.schedule_id}:{uuid.uuid4().hex}",
        # a deleted schedule's id may be used again; a running one is refused
        id_reuse_policy=wire.WorkflowIdReusePolicy.ALLOW_DUPLICATE,
        task_timeout_s=10.0,
        search_attributes=req.search_attributes,
        identity=req.identity,
    )
    try:
        res = await starts.start_workflow(store, namespace, start, system=True)
    except WorkflowAlreadyStarted:
        raise ScheduleAlreadyExists(
            f"schedule {req.schedule_id!r} exists in namespace {namespace!r}: "
            "`baton schedule update` changes it"
        ) from None
    return {"schedule_id": req.schedule_id, "run_id": res.run_id, "created": res.started}


async def _signal(
    store: Store, namespace: str, schedule_id: str, name: str, body: dict[str, Any], req: Any
) -> str:
    """Send signal ``name`` to the schedule; the run that took it (or, for a
    retried request id, took it the first time)."""
    signal = wire.SignalRequest(
        signal_name=name,
        input=[_CONVERTER.to_payload(body)],
        request_id=req.request_id or f"schedule-{name}:{schedule_id}:{uuid.uuid4().hex}",
        identity=req.identity or "baton",
    )
    try:
        return await workflows.signal_workflow(
            store, namespace, schedule_workflow_id(schedule_id), signal, system=True
        )
    except (WorkflowNotFound, WorkflowNotRunning):
        raise not_found(namespace, schedule_id) from None


async def update_schedule(
    store: Store, namespace: str, schedule_id: str, req: wire.UpdateScheduleRequest
) -> dict[str, Any]:
    sched = _checked(req.schedule)
    await _check_attributes(store, namespace, sched)
    try:
        await _signal(store, namespace, schedule_id, "update", {"schedule": sched}, req)
    except RequestIdReused as exc:
        if not (req.create and exc.details.get("used_by") == "start"):
            raise
        # the retry of an update that created the schedule: created once
        return {"schedule_id": schedule_id, "updated": False, "created": False}
    except ScheduleNotFound:
        if not req.create:
            raise
        created = await create_schedule(
            store,
            namespace,
            wire.CreateScheduleRequest(
                schedule_id=schedule_id,
                schedule=req.schedule,
                request_id=req.request_id,
                identity=req.identity,
            ),
        )
        return {"schedule_id": schedule_id, "updated": False, "created": created["created"]}
    return {"schedule_id": schedule_id, "updated": True, "created": False}


async def pause_schedule(
    store: Store, namespace: str, schedule_id: str, req: wire.PauseScheduleRequest
) -> dict[str, Any]:
    await _signal(store, namespace, schedule_id, "pause", {"note": req.note}, req)
    return {"schedule_id": schedule_id, "paused": True, "note": req.note}


async def unpause_schedule(
    store: Store, namespace: str, schedule_id: str, req: wire.UnpauseScheduleRequest
) -> dict[str, Any]:
    body = {"note": req.note, "catch_up": req.catch_up}
    await _signal(store, namespace, schedule_id, "unpause", body, req)
    return {"schedule_id": schedule_id, "paused": False, "catch_up": req.catch_up}


async def trigger_schedule(
    store: Store, namespace: str, schedule_id: str, req: wire.TriggerScheduleRequest
) -> dict[str, Any]:
    """Ask the schedule to act now, and name the workflow id its run gets.

    The signal carries the trigger's time and tag, from which the schedule
    makes the id (``ID-<time>-trigger-<tag>``), so the caller learns it now;
    a retry of the request (same id) reads them back from the signal the
    schedule took the first time, and names the same workflow."""
    request_id = req.request_id or f"schedule-trigger:{schedule_id}:{uuid.uuid4().hex}"
    digest = hashlib.sha256(f"{schedule_id}\0{request_id}".encode()).hexdigest()
    body = {
        "overlap": req.overlap,
        "at": iso(utcnow().replace(microsecond=0)),
        "tag": f"trigger-{digest[:8]}",
    }
    req = req.model_copy(update={"request_id": request_id})
    run_id = await _signal(store, namespace, schedule_id, "trigger", body, req)
    wid = schedule_workflow_id(schedule_id)
    async with store.pool.acquire() as conn:
        taken = await conn.fetchval(
            Q["signal_of_request"], namespace, wid, uuid.UUID(run_id), request_id
        ) or await conn.fetchval(Q["signal_of_request_any_run"], namespace, wid, request_id)
    sent = decode_payload(((taken or {}).get("input") or [None])[0]) or {}
    at = parse_time(sent.get("at"), "at") if isinstance(sent.get("at"), str) else None
    tag = sent.get("tag")
    # a signal an earlier release sent carries neither: its run's id is drawn by the schedule
    workflow_id = action_workflow_id(schedule_id, at, tag) if at and tag else None
    return {
        "schedule_id": schedule_id,
        "triggered": True,
        "workflow_id": workflow_id,
        "nominal": iso(at) if at else None,
        "request_id": request_id,
    }


async def backfill_schedule(
    store: Store, namespace: str, schedule_id: str, req: wire.BackfillScheduleRequest
) -> dict[str, Any]:
    try:
        start, end = parse_time(req.start, "start"), parse_time(req.end, "end")
    except SpecError as exc:
        raise InvalidArgument(f"backfill: {exc}") from None
    assert start is not None and end is not None
    if end < start:
        raise InvalidArgument(f"backfill: end {req.end} is before start {req.start}")
    current = await describe_schedule(store, namespace, schedule_id)
    sched = definition.load(current["schedule"])
    times = _fires(sched, start, end, MAX_BACKFILL + 1)
    if len(times) > MAX_BACKFILL:
        raise InvalidArgument(
            f"backfill: the range holds more than {MAX_BACKFILL} fires; split it into smaller ones"
        )
    body = {"start": iso(start), "end": iso(end), "overlap": req.overlap}
    await _signal(store, namespace, schedule_id, "backfill", body, req)
    return {
        "schedule_id": schedule_id,
        "fires": len(times),
        "overlap": req.overlap,
        # each fire's run is ID-<its time>: the run it starts, or the one that
        # time started already (its entry in recent says already-started)
        "workflow_ids": [action_workflow_id(schedule_id, t) for t in times[:BACKFILL_IDS]],
    }


#: Workflow ids a backfill's answer names (its first fires').
BACKFILL_IDS = 100


def _fires(sched: definition.Schedule, start: datetime, end: datetime, cap: int) -> list[datetime]:
    return list(
        itertools.islice(fires_until(sched.spec, start - timedelta(microseconds=1), end), cap)
    )


#: How long a delete waits for the schedule to act on what it was sent.
DELETE_SETTLE_S = 10.0


async def _settle(store: Store, namespace: str, wid: str) -> None:
    """Wait (up to :data:`DELETE_SETTLE_S`) until the schedule's workflow has
    nothing in flight but its timer and the watches of running actions: a
    trigger or backfill sent just before the delete starts the runs its answer
    named, rather than dying with the schedule untaken."""
    deadline = asyncio.get_running_loop().time() + DELETE_SETTLE_S
    while True:
        d = await workflows.describe_workflow(store, namespace, wid, None)
        busy = d["pending_workflow_task"] or any(
            a["activity_type"] != WATCH_ACTIVITY for a in d["pending_activities"]
        )
        if not busy or d["execution"]["status"] != "running":
            return
        if asyncio.get_running_loop().time() >= deadline:
            log.warning("schedule %s/%s deleted with work still in flight", namespace, wid)
            return
        await asyncio.sleep(0.05)


async def delete_schedule(
    store: Store, namespace: str, schedule_id: str, reason: str = "", request_id: str | None = None
) -> dict[str, Any]:
    """End the schedule; actions it started keep running. A retry with the
    same ``request_id`` finds the delete done and answers as it did."""
    req = wire.TerminateRequest(
        reason=reason or "schedule deleted",
        # the run's own request ids are per workflow id: the client's, kept short
        request_id="schedule-delete:"
        + hashlib.sha256((request_id or uuid.uuid4().hex).encode()).hexdigest()[:32],
        identity="baton",
    )
    wid = schedule_workflow_id(schedule_id)
    await require_active_here(store, namespace)  # a standby sends the caller on at once
    try:
        await _settle(store, namespace, wid)
        await workflows.terminate_workflow(store, namespace, wid, req, system=True)
    except (WorkflowNotFound, WorkflowNotRunning):
        raise not_found(namespace, schedule_id) from None
    async with store.pool.acquire() as conn:
        await conn.execute(Q["delete_schedule_stats"], namespace, schedule_id)
    return {"schedule_id": schedule_id, "deleted": True}
