"""Task dispatch: polls, completions and heartbeats of workflow and activity tasks.

Polls take a task row with ``FOR UPDATE SKIP LOCKED`` and wait on
LISTEN/NOTIFY when the queue is empty. Completions lock the execution row,
check that the task token still names the open task, and write everything the
completion causes in the same transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import asyncpg

from store.activity_control import (
    activity_paused,
    clear_reset,
    pause_for_retries,
    pauses_at_max_attempts,
    reset_pending,
)
from store.commands import apply_commands, start_activity_timers
from store.context import Store
from store.deployments import register_poller
from store.errors import InvalidArgument, TaskNotFound, WorkflowNotFound
from store.mutable_state import (
    ACTIVITY_RETRY,
    ACTIVITY_SCHEDULE_TO_CLOSE,
    WT_RETRY,
    RunTxn,
    utcnow,
)
from store.namespaces import get_namespace, require_active_here
from store.notify import wait_event
from store.pause import failure_reason, pause_run
from store.retry import next_retry_delay, workflow_task_retry_delay
from store.sql import QUERIES as Q
from store.task_token import TaskToken
from store.task_views import activity_task, build_workflow_task
from store.workflows import terminate_txn
from versioning import routing
from worker import wire
from worker.wire import EventType

_STALE = object()  # a task row whose task is no longer open; take the next one


Disconnected = Callable[[], Awaitable[bool]]


async def _never() -> bool:
    return False


def _tag(req: wire.PollRequest) -> str | None:
    """The version whose tasks this poller takes (None: unversioned tasks only)."""
    return routing.tag(req.deployment, req.build_id)


async def _poll(
    store: Store,
    namespace: str,
    kind: str,
    req: wire.PollRequest,
    take: Any,
    disconnected: Disconnected,
) -> Any:
    await require_active_here(store, namespace)
    await register_poller(store, namespace, req)
    epoch = store.notifier.namespace_epoch
    deadline = utcnow() + timedelta(seconds=req.wait_s)
    tag = _tag(req)
    key = f"{namespace}/{kind}{'' if tag is None else '@' + tag}/{req.task_queue}"
    async with store.notifier.subscribe("baton_tasks_v1", key) as ev:
        while True:
            ev.clear()
            if store.notifier.namespace_epoch != epoch:
                # A namespace changed (failover): answer NAMESPACE_NOT_ACTIVE now
                # if this region no longer runs it, so the worker follows.
                epoch = store.notifier.namespace_epoch
                await require_active_here(store, namespace)
            # A poller that went away (its worker was killed) must not take a
            # task: the task would sit unseen until its timeout. Pass its
            # wake-up on to another poller.
            if await disconnected():
                store.notifier.wake_one("baton_tasks_v1", key, skip=ev)
                return None
            while True:
                got = await store.txn(take)
                if got is not _STALE:
                    break
            if got is not None:
                # Notifications of one transaction collapse into one: if more
                # tasks came with it, the next poller finds them.
                store.notifier.wake_one("baton_tasks_v1", key, skip=ev)
                return got
            remaining = (deadline - utcnow()).total_seconds()
            if store.notifier.draining or remaining <= 0:
                return None
            if not await wait_event(ev, remaining):
                return None


# --------------------------------------------------------------------------- workflow tasks


async def _lock_for_task(store: Store, conn: asyncpg.Connection, tok: TaskToken) -> RunTxn:
    try:
        rt = await RunTxn.lock(
            conn,
            tok.namespace,
            tok.workflow_id,
            tok.run_id,
            region=store.region,
            region_urls=store.region_urls,
        )
    except WorkflowNotFound:
        raise TaskNotFound("the task's workflow run no longer exists") from None
    tok.check_version(rt.ns)
    return rt


async def poll_workflow_task(
    store: Store, namespace: str, req: wire.PollRequest, disconnected: Disconnected = _never
) -> dict[str, Any] | None:
    async def take(conn: asyncpg.Connection) -> Any:
        row = await conn.fetchrow(
            Q["take_task"], namespace, req.task_queue, ["workflow", "query"], _tag(req)
        )
        if row is None:
            return None
        if row["kind"] == "query":
            return await _query_task(conn, row)
        rt = await RunTxn.lock(
            conn,
            namespace,
            row["workflow_id"],
            str(row["run_id"]),
            region=store.region,
            region_urls=store.region_urls,
        )
        if (
            not rt.running
            or rt.exe["paused"]
            or rt.wt_started
            or str(rt.exe["wt_scheduled_event_id"]) != row["ref"]
        ):
            return _STALE
        rt.start_workflow_task(req.identity, store.config.suggest_continue_as_new_events)
        await rt.write_txn()
        return await build_workflow_task(conn, rt)

    return await _poll(store, namespace, "workflow", req, take, disconnected)  # type: ignore[no-any-return]


async def _query_task(conn: asyncpg.Connection, row: asyncpg.Record) -> Any:
    q = await conn.fetchrow(Q["get_query"], uuid.UUID(row["ref"]))
    if q is None or q["state"] != "pending":
        return _STALE
    exe = await conn.fetchrow(Q["get_execution"], q["namespace"], q["workflow_id"], q["run_id"])
    if exe is None:
        return _STALE
    token = TaskToken("query", q["namespace"], q["workflow_id"], str(q["run_id"]), str(q["id"]), 0)
    return {
        "task_token": token.encode(),
        "namespace": q["namespace"],
        "workflow_id": q["workflow_id"],
        "run_id": str(q["run_id"]),
        "workflow_type": exe["workflow_type"],
        "task_queue": exe["task_queue"],
        "attempt": 1,
        "started_event_id": exe["last_completed_wt_started"],
        "previous_started_event_id": exe["last_completed_wt_started"],
        "previous_started_event_version": await conn.fetchval(
            Q["event_version"],
            q["namespace"],
            q["workflow_id"],
            q["run_id"],
            exe["last_completed_wt_started"],
        ),
        "history_length": exe["next_event_id"] - 1,
        "events": [],
        "updates": [],
        "query": {"query_id": str(q["id"]), "name": q["name"], "input": q["input"]},
    }


async def complete_workflow_task(
    store: Store, namespace: str, req: wire.RespondWorkflowTaskCompleted
) -> dict[str, Any]:
    tok = TaskToken.decode(req.task_token, kind="wf", namespace=namespace)

    async def txn(conn: asyncpg.Connection) -> dict[str, Any]:
        rt = await _lock_for_task(store, conn, tok)
        _check_open_workflow_task(rt, tok)
        over = _history_over_limit(store, rt)
        if over is not None:
            # As Temporal does: a run whose history outgrew the limit ends here,
            # before it grows further (continue-as-new keeps runs under it).
            terminate_txn(rt, over, "server")
            await rt.write_txn()
            return {"activity_tasks": [], "workflow_task": None}
        return await apply_commands(store, rt, req)

    return await store.txn(txn)


def _history_over_limit(store: Store, rt: RunTxn) -> str | None:
    """Why the run's history is past a limit (None if it is not)."""
    length = int(rt.exe["next_event_id"]) - 1
    size = int(rt.exe["history_size_bytes"])
    if length > store.config.history_events_max:
        return (
            f"history length {length} is over the limit of {store.config.history_events_max} "
            "events: a long-lived workflow must continue-as-new"
        )
    if size > store.config.history_bytes_max:
        return (
            f"history size {size} bytes is over the limit of {store.config.history_bytes_max} "
            "bytes: a long-lived workflow must continue-as-new"
        )
    return None


def _check_open_workflow_task(rt: RunTxn, tok: TaskToken) -> None:
    if (
        not rt.running
        or str(rt.exe["wt_scheduled_event_id"]) != tok.ref
        or rt.exe["wt_started_event_id"] != tok.attempt
    ):
        raise TaskNotFound(
            f"workflow task {tok.ref} of {rt.workflow_id!r} is no longer open (it timed out, "
            "was failed, or the run closed); the worker should drop it"
        )


async def fail_workflow_task(
    store: Store, namespace: str, req: wire.RespondWorkflowTaskFailed
) -> None:
    tok = TaskToken.decode(req.task_token, kind="wf", namespace=namespace)

    async def txn(conn: asyncpg.Connection) -> None:
        rt = await _lock_for_task(store, conn, tok)
        _check_open_workflow_task(rt, tok)
        rt.add_event(
            EventType.WORKFLOW_TASK_FAILED,
            {
                "scheduled_event_id": rt.exe["wt_scheduled_event_id"],
                "started_event_id": rt.exe["wt_started_event_id"],
                "cause": req.cause,
                "failure": req.failure.model_dump(),
                "identity": req.identity,
                **_ran_on(req.deployment, req.build_id),
            },
        )
        rt.clear_workflow_task()
        rt.clear_sticky()  # the worker dropped the run; any worker replays it
        failed_attempts = int(rt.exe["wt_attempt"])
        rt.exe["wt_attempt"] = attempt = failed_attempts + 1
        rt.flush_buffered()
        if req.pause and not rt.exe["paused"]:
            # the worker's limit of failed tasks in a row: someone looks first
            pause_run(
                rt,
                reason=failure_reason(req.failure, failed_attempts),
                identity=req.identity,
                request_id=None,
                source="failure",
            )
        delay = workflow_task_retry_delay(attempt, store.config.workflow_task_retry_max_s)
        if rt.exe["paused"]:
            pass  # unpause schedules the next attempt
        elif delay <= 0:
            rt.schedule_workflow_task()
        else:
            rt.add_timer(WT_RETRY, "retry", rt.now + timedelta(seconds=delay), attempt=attempt)
        await rt.write_txn()

    await store.txn(txn)


async def respond_query(store: Store, namespace: str, req: wire.RespondQueryTask) -> None:
    tok = TaskToken.decode(req.task_token, kind="query", namespace=namespace)

    async def txn(conn: asyncpg.Connection) -> None:
        got = await conn.fetchval(
            Q["answer_query"],
            uuid.UUID(tok.ref),
            req.result.model_dump() if req.result else None,
            req.failure.model_dump() if req.failure else None,
        )
        if got is None:
            raise TaskNotFound("the query is no longer waiting for an answer (it timed out)")
        await conn.execute(Q["notify_query"], tok.ref)

    await store.txn(txn)


def _ran_on(deployment: str | None, build_id: str | None) -> dict[str, Any]:
    """The version a workflow task ran on, as its completed or failed event records it."""
    version = routing.tag(deployment, build_id)
    return {} if version is None else {"worker_version": version}


# --------------------------------------------------------------------------- activity tasks


async def poll_activity_task(
    store: Store, namespace: str, req: wire.PollRequest, disconnected: Disconnected = _never
) -> dict[str, Any] | None:
    async def take(conn: asyncpg.Connection) -> Any:
        row = await conn.fetchrow(
            Q["take_task"], namespace, req.task_queue, ["activity"], _tag(req)
        )
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
            return _STALE
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
        return activity_task(act, act["workflow_type"], act["ns_failover_version"])

    return await _poll(store, namespace, "activity", req, take, disconnected)  # type: ignore[no-any-return]


async def _lock_started_activity(
    store: Store, conn: asyncpg.Connection, tok: TaskToken
) -> tuple[RunTxn, asyncpg.Record]:
    rt = await _lock_for_task(store, conn, tok)
    act = await conn.fetchrow(
        Q["lock_activity"], tok.namespace, tok.workflow_id, uuid.UUID(tok.run_id), int(tok.ref)
    )
    if not rt.running or act is None or act["attempt"] != tok.attempt or act["state"] != "started":
        raise TaskNotFound(
            f"activity task (scheduled event {tok.ref}, attempt {tok.attempt}) of "
            f"{tok.workflow_id!r} is no longer open: it timed out, was retried, was canceled or "
            "the run closed"
        )
    return rt, act


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
    tok = TaskToken.decode(req.task_token, kind="act", namespace=namespace)

    async def txn(conn: asyncpg.Connection) -> dict[str, Any]:
        rt, act = await _lock_started_activity(store, conn, tok)
        close_activity(
            rt,
            act,
            EventType.ACTIVITY_TASK_COMPLETED,
            {
                "result": req.result.model_dump() if req.result else None,
                "identity": req.identity,
            },
        )
        return await finish_activity(store, rt, return_new_workflow_task, req.identity)

    return await store.txn(txn)


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
    if not budget_spent:
        delay = next_retry_delay(
            act["retry_policy"],
            attempt=int(act["attempt"]),
            error_type=failure.get("type"),
            non_retryable=bool(failure.get("non_retryable")),
            seconds_left=seconds_left,
        )
    sid = act["scheduled_event_id"]
    next_attempt = int(act["attempt"]) + 1
    hold = activity_paused(act)
    if not budget_spent and reset_pending(act):
        delay, next_attempt = 0.0, 1  # an operator's reset: again from attempt 1
        await clear_reset(rt, act)
    elif delay is None and pauses_at_max_attempts(act, failure, budget_spent):
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
        if hold:
            # no new attempt until unpause (the activity's own timeouts run on)
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
            return True
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
        rt.add_timer(ACTIVITY_RETRY, sid, rt.now + timedelta(seconds=delay), attempt=next_attempt)
        return True
    if timeout_type is None:
        close_activity(
            rt,
            act,
            EventType.ACTIVITY_TASK_FAILED,
            {"failure": failure, "identity": act["started_identity"]},
            started=act["state"] == "started",
        )
    else:
        close_activity(
            rt,
            act,
            EventType.ACTIVITY_TASK_TIMED_OUT,
            {"timeout_type": timeout_type, "failure": failure},
            started=act["state"] == "started",
        )
    return False


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
