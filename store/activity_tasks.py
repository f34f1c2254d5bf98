"""Activity tasks: polls, completions, failures and their retries, heartbeats.

An attempt's task is taken with the store's dispatch (see :mod:`store.tasks`);
its end is written in the run's transaction, with the workflow task it calls
for. A failed attempt is retried as its policy says, unless the activity is
paused (see :mod:`store.activity_control`).
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, TypeVar

import asyncpg

from store import speculation
from store.activity_commands import start_activity_timers
from store.activity_control import (
    activity_paused,
    clear_reset,
    pause_for_retries,
    pauses_at_max_attempts,
    reset_pending,
)
from store.commands import writes_only_the_run
from store.context import Store
from store.errors import InvalidArgument, TaskNotFound
from store.mutable_state import (
    ACTIVITY_RETRY,
    ACTIVITY_SCHEDULE_TO_CLOSE,
    RunTxn,
    utcnow,
)
from store.namespaces import get_namespace
from store.retry import RETRY_CANCEL_REQUESTED, RETRY_TIMEOUT, retry_decision
from store.sql import QUERIES as Q
from store.task_token import TaskToken
from store.task_views import activity_task, build_workflow_task
from store.tasks import (
    STALE,
    Disconnected,
    act_on_task_run,
    lock_for_task,
    long_poll,
    never_disconnected,
    poller_version,
)
from versioning import routing
from worker import wire
from worker.wire import EventType

T = TypeVar("T")


async def poll_activity_task(
    store: Store,
    namespace: str,
    req: wire.PollRequest,
    disconnected: Disconnected = never_disconnected,
) -> dict[str, Any] | None:
    row_queue = req.task_queue

    async def take(conn: asyncpg.Connection) -> Any:
        row = await conn.fetchrow(Q["take_task"], namespace, row_queue, True, poller_version(req))
        if row is None:
            return None
        now = utcnow()
        act = await conn.fetchrow(
            Q["start_activity"],
            namespace,
            row["workflow_id"],
            row["run_id"],
            int(row["ref"]),
            row["attempt"],
            now,
            req.identity,
            store.region,
        )
        if act is None:
            # Not the namespace's active region any more (a handover began):
            # raise, so the task row stays; otherwise the task is stale.
            ns = await get_namespace(conn, namespace)
            ns.require_writable(store.region, store.region_urls)
            return STALE
        if act["run_held"]:
            tag = routing.activity_task_tag(act["ns_deployments"], _run_routing(act), row_queue)
            if tag != poller_version(req):
                # An override or set-current moved the run's activities to
                # another build while this take held the task's row (their
                # re-tag skips rows being taken): the task goes there.
                await conn.execute(
                    Q["requeue_activity"],
                    namespace,
                    row["workflow_id"],
                    row["run_id"],
                    int(row["ref"]),
                    row["attempt"],
                    row_queue,
                    tag,
                )
                return STALE
        timers = start_activity_timers(dict(act), now)
        if timers:
            await conn.execute(
                Q["insert_timers"],
                namespace,
                row["workflow_id"],
                row["run_id"],
                [t[0] for t in timers],
                [t[1] for t in timers],
                [t[2] for t in timers],
                [t[3] for t in timers],
            )
        return activity_task(act, act["workflow_type"], act["ns_failover_version"]), row["more"]

    return await long_poll(store, namespace, "activity", req, take, disconnected)  # type: ignore[no-any-return]


def _run_routing(act: asyncpg.Record) -> dict[str, Any]:
    """The run's row as routing reads it, from a started activity's ``run_*`` columns."""
    return {
        "workflow_id": act["workflow_id"],
        "task_queue": act["run_task_queue"],
        "deployment": act["run_deployment"],
        "build_id": act["run_build_id"],
        "versioning": act["run_versioning"],
    }


async def _lock_started_activity(
    store: Store, conn: asyncpg.Connection, tok: TaskToken
) -> tuple[RunTxn, asyncpg.Record]:
    rt = await lock_for_task(store, conn, tok)
    act = await conn.fetchrow(
        Q["lock_activity"], tok.namespace, tok.workflow_id, uuid.UUID(tok.run_id), int(tok.ref)
    )
    _check_started(rt, act, tok)
    assert act is not None
    return rt, act


async def _on_started_activity(
    store: Store,
    conn: asyncpg.Connection,
    tok: TaskToken,
    fn: Callable[[RunTxn, dict[str, Any]], Awaitable[T]],
) -> T:
    """``fn`` on the run and the started activity a completion acts on, read
    without locks (or remembered, see :func:`act_on_task_run`)."""

    async def checked(rt: RunTxn, act: dict[str, Any] | None) -> T:
        _check_started(rt, act, tok)
        assert act is not None
        return await fn(rt, act)

    return await act_on_task_run(store, conn, tok, checked, activity=int(tok.ref))


def _check_started(rt: RunTxn, act: asyncpg.Record | dict[str, Any] | None, tok: TaskToken) -> None:
    if not rt.running or act is None or act["attempt"] != tok.attempt or act["state"] != "started":
        raise TaskNotFound(
            f"activity task (scheduled event {tok.ref}, attempt {tok.attempt}) of "
            f"{tok.workflow_id!r} is no longer open: it timed out, was retried, was canceled or "
            "the run closed"
        )


def close_activity(
    rt: RunTxn,
    act: asyncpg.Record | dict[str, Any],
    event_type: EventType,
    attributes: dict[str, Any],
    *,
    started: bool = True,
) -> None:
    """Record the end of an activity (with its started event) and wake the workflow."""
    sid = act["scheduled_event_id"]
    if started:
        rt.add_input_event(
            EventType.ACTIVITY_TASK_STARTED,
            {
                "scheduled_event_id": sid,
                "attempt": act["attempt"],
                "identity": act["started_identity"],
                "last_failure": act["last_failure"],
            },
        )
    rt.add_input_event(event_type, {"scheduled_event_id": sid, **attributes})
    rt.activity_deletes.append(sid)


async def finish_activity(
    store: Store, rt: RunTxn, return_new_workflow_task: bool, identity: str
) -> dict[str, Any]:
    """Schedule the workflow task an activity's end calls for, write, and answer."""
    if return_new_workflow_task and routing.workflow_task_tag(rt.ns.deployments, rt.exe):
        # a versioned run's task goes to a poller of its version, which the
        # activity's worker may not be
        return_new_workflow_task = False
    scheduled = rt.schedule_workflow_task(dispatch=not return_new_workflow_task)
    started = False
    if scheduled is not None and return_new_workflow_task:
        rt.start_workflow_task(identity, store.config.suggest_continue_as_new_events)
        started = True
    await rt.write_txn()
    if started:
        return {"workflow_task": await build_workflow_task(rt.conn, rt)}
    return {"workflow_task": None}


async def complete_activity_task(
    store: Store,
    namespace: str,
    req: wire.RespondActivityTaskCompleted,
    return_new_workflow_task: bool = False,
) -> dict[str, Any]:
    """Record an activity's result, and the workflow task the worker ran ahead
    with it if the run allows (see :mod:`store.speculation`)."""
    spec = req.workflow_task
    if spec is None:
        return await _complete_activity(store, namespace, req, return_new_workflow_task, None)
    if not return_new_workflow_task:
        raise InvalidArgument(
            "an activity completion with a workflow_task must ask for the next workflow task "
            "(return_new_workflow_task=true)"
        )
    try:
        done = await _complete_activity(store, namespace, req, True, spec)
    except speculation.Refused as refused:  # found once the task was applied: start over
        done = await _complete_activity(store, namespace, req, True, None)
        done |= refused.answer()
    store.speculation[done.get("speculation_reason") or "accepted"] += 1
    return done


async def _complete_activity(
    store: Store,
    namespace: str,
    req: wire.RespondActivityTaskCompleted,
    return_new_workflow_task: bool,
    spec: wire.SpeculativeWorkflowTask | None,
) -> dict[str, Any]:
    tok = TaskToken.decode(req.task_token, kind="act", namespace=namespace)
    result = req.result.model_dump() if req.result else None
    ahead = None if spec is None else (spec, speculation.started_time(spec))

    async def complete(rt: RunTxn, act: asyncpg.Record | dict[str, Any]) -> dict[str, Any]:
        refused = None if ahead is None else speculation.refusal(store, rt, *ahead)
        close_activity(
            rt,
            act,
            EventType.ACTIVITY_TASK_COMPLETED,
            {"result": result, "identity": req.identity},
        )
        if ahead is not None and refused is None:
            return await speculation.record(store, rt, req, *ahead)
        done = await finish_activity(store, rt, return_new_workflow_task, req.identity)
        if refused is not None:
            done |= refused.answer()
        return done

    async def unlocked(conn: asyncpg.Connection) -> dict[str, Any]:
        # every change goes through the RunTxn: one read, one checked write
        return await _on_started_activity(store, conn, tok, complete)

    async def locked(conn: asyncpg.Connection) -> dict[str, Any]:
        return await complete(*await _lock_started_activity(store, conn, tok))

    if spec is not None and not writes_only_the_run(spec.commands):
        return await store.txn(locked)  # the commands read or write rows beside the run
    return await store.checked_write(unlocked, locked)


async def fail_activity_task(
    store: Store,
    namespace: str,
    req: wire.RespondActivityTaskFailed,
    return_new_workflow_task: bool = False,
) -> dict[str, Any]:
    tok = TaskToken.decode(req.task_token, kind="act", namespace=namespace)

    async def txn(conn: asyncpg.Connection) -> dict[str, Any]:
        rt, act = await _lock_started_activity(store, conn, tok)
        failure = req.failure.model_dump()
        if await retry_or_fail_activity(rt, act, failure, timeout_type=None):
            await rt.write_txn()
            return {"workflow_task": None}
        return await finish_activity(store, rt, return_new_workflow_task, req.identity)

    return await store.txn(txn)


async def retry_or_fail_activity(
    rt: RunTxn,
    act: asyncpg.Record | dict[str, Any],
    failure: dict[str, Any],
    *,
    timeout_type: str | None,
) -> bool:
    """After a failed attempt: schedule the next one (True) or close the activity (False)."""
    seconds_left = None
    if act["schedule_to_close_s"]:
        deadline = act["first_scheduled_time"] + timedelta(seconds=act["schedule_to_close_s"])
        seconds_left = (deadline - rt.now).total_seconds()
    delay = None
    budget_spent = timeout_type in ("schedule_to_close", "schedule_to_start")
    # Neither budget timeout is retried: schedule-to-close bounds all attempts,
    # and schedule-to-start means no worker polls the queue, which another
    # attempt on the same queue would not change.
    retry_state = RETRY_TIMEOUT
    # The policy's non-retryable types name errors of the activity's code (a
    # Python TimeoutError among them), never a timeout of the server's: that
    # is how a crashed worker's attempt ends, and it is retried (as in Temporal).
    error_type = None if timeout_type is not None else failure.get("type")
    canceling = bool(act["cancel_requested"])
    if canceling and not budget_spent:
        # The workflow asked the activity to cancel and has moved on: another
        # attempt would run its side effects again for nobody (Temporal's
        # CANCEL_REQUESTED retry state). The attempt's end closes it.
        retry_state = RETRY_CANCEL_REQUESTED
    elif not budget_spent:
        delay, retry_state = retry_decision(
            act["retry_policy"],
            attempt=int(act["attempt"]),
            error_type=error_type,
            non_retryable=bool(failure.get("non_retryable")),
            seconds_left=seconds_left,
            # an attempt's own failure may ask for its next attempt's delay
            requested_delay=None if timeout_type is not None else failure.get("next_retry_delay_s"),
        )
    sid = act["scheduled_event_id"]
    next_attempt = int(act["attempt"]) + 1
    hold = activity_paused(act)
    if canceling:
        pass  # neither an operator's reset nor a pause outlives the workflow's cancel
    elif not budget_spent and reset_pending(act):
        delay, next_attempt = 0.0, 1  # an operator's reset: again from attempt 1
        await clear_reset(rt, act)
    elif delay is None and pauses_at_max_attempts(act, failure, error_type, budget_spent):
        delay, hold = 0.0, True
        await pause_for_retries(rt, act, failure)
    if delay is not None:
        await rt.conn.execute(
            Q["retry_activity"],
            rt.namespace,
            rt.workflow_id,
            uuid.UUID(rt.run_id),
            sid,
            rt.now + timedelta(seconds=delay),
            failure,
            next_attempt,
        )
        await rt.conn.execute(
            Q["delete_activity_timers"],
            rt.namespace,
            rt.workflow_id,
            uuid.UUID(rt.run_id),
            str(sid),
        )
        if act["schedule_to_close_s"]:
            rt.add_timer(
                ACTIVITY_SCHEDULE_TO_CLOSE,
                sid,
                act["first_scheduled_time"] + timedelta(seconds=act["schedule_to_close_s"]),
            )
        if not hold:  # a paused activity starts no attempt until unpause (its timeouts run on)
            rt.add_timer(
                ACTIVITY_RETRY, sid, rt.now + timedelta(seconds=delay), attempt=next_attempt
            )
        return True
    if timeout_type is None:
        close_activity(
            rt,
            act,
            EventType.ACTIVITY_TASK_FAILED,
            {
                "failure": failure,
                "identity": act["started_identity"],
                "retry_state": retry_state,
            },
            started=act["state"] == "started",
        )
    else:
        close_activity(
            rt,
            act,
            EventType.ACTIVITY_TASK_TIMED_OUT,
            {
                "timeout_type": timeout_type,
                "failure": _with_last_failure(failure, act),
                "retry_state": retry_state,
            },
            started=act["state"] == "started",
        )
    return False


def _with_last_failure(
    failure: dict[str, Any], act: asyncpg.Record | dict[str, Any]
) -> dict[str, Any]:
    """A timeout that closes an activity, with the failure of its attempt before as
    its cause (Temporal's ``TimeoutFailure.cause``): "schedule-to-close timeout"
    alone would hide why the earlier attempts kept failing."""
    last = act["last_failure"]
    if not last or failure.get("cause") is not None:
        return failure
    return {**failure, "cause": last}


async def cancel_activity_task(
    store: Store, namespace: str, req: wire.RespondActivityTaskCanceled
) -> dict[str, Any]:
    tok = TaskToken.decode(req.task_token, kind="act", namespace=namespace)

    async def txn(conn: asyncpg.Connection) -> dict[str, Any]:
        rt, act = await _lock_started_activity(store, conn, tok)
        if not act["cancel_requested"]:
            # A lost task (a heartbeat's TASK_NOT_FOUND) is not a cancel request.
            raise InvalidArgument(
                f"activity (scheduled event {tok.ref}) of {tok.workflow_id!r} was not asked to "
                "cancel: report how the attempt ended (completed or failed) instead"
            )
        close_activity(rt, act, EventType.ACTIVITY_TASK_CANCELED, {"identity": req.identity})
        return await finish_activity(store, rt, False, req.identity)

    return await store.txn(txn)


async def heartbeat_activity(
    store: Store, namespace: str, req: wire.HeartbeatRequest
) -> dict[str, Any]:
    tok = TaskToken.decode(req.task_token, kind="act", namespace=namespace)
    details = [p.model_dump() for p in req.details] if req.details is not None else None

    async def txn(conn: asyncpg.Connection) -> dict[str, Any]:
        row = await conn.fetchrow(
            Q["heartbeat_activity"],
            namespace,
            tok.workflow_id,
            uuid.UUID(tok.run_id),
            int(tok.ref),
            tok.attempt,
            details,
            utcnow(),
            tok.version,
            store.region,
        )
        if row is None:
            # A standby or a namespace in handover says so (the SDK follows or
            # waits); otherwise the attempt is over.
            ns = await get_namespace(conn, namespace)
            ns.require_writable(store.region, store.region_urls)
            raise TaskNotFound(
                "activity task is no longer open: it timed out, was retried, the run closed or "
                "the namespace failed over"
            )
        return {"cancel_requested": bool(row["cancel_requested"]), "paused": bool(row["paused"])}

    if tok.kind != "act":
        raise InvalidArgument("not an activity task token")
    return await store.txn(txn)


async def activity_token_by_id(
    store: Store, namespace: str, req: wire.ActivityTokenRequest
) -> dict[str, Any]:
    """The task token of the started attempt of the activity ``req`` names."""
    try:
        run_id = None if req.run_id is None else uuid.UUID(req.run_id)
    except ValueError:
        raise InvalidArgument(f"run_id {req.run_id!r} is not a run id (a UUID)") from None

    async def read(conn: asyncpg.Connection) -> dict[str, Any]:
        ns = await get_namespace(conn, namespace)
        # A standby keeps no attempts to name (its copy of a pending activity is
        # for reads): send the caller to the active region, as the routes that
        # then take the token would, rather than answer TASK_NOT_FOUND.
        ns.require_writable(store.region, store.region_urls)
        act = await conn.fetchrow(
            Q["activity_attempt_by_id"], namespace, req.workflow_id, run_id, req.activity_id
        )
        run = "its current run" if run_id is None else f"run {req.run_id}"
        if act is None:
            raise TaskNotFound(
                f"workflow {req.workflow_id!r} ({run}) has no pending activity "
                f"{req.activity_id!r}: it closed (completed, failed, timed out, canceled), "
                "the run closed, or no such activity was scheduled"
            )
        if act["state"] != "started":
            raise TaskNotFound(
                f"activity {req.activity_id!r} of {req.workflow_id!r} has no attempt running "
                f"(attempt {act['attempt']} waits to be taken by a worker): only a started "
                "attempt can be completed"
            )
        token = TaskToken(
            "act",
            namespace,
            req.workflow_id,
            str(act["run_id"]),
            str(act["scheduled_event_id"]),
            int(act["attempt"]),
            ns.failover_version,
        )
        return {"task_token": token.encode()}

    async with store.pool.acquire() as conn:
        return await read(conn)
