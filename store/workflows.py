"""Client-facing workflow operations: start, signal, cancel, terminate, read."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import orjson

from store.context import Store
from store.errors import (
    InvalidArgument,
    LimitExceeded,
    WorkflowNotFound,
)
from store.mutable_state import RunTxn, utcnow
from store.namespaces import get_namespace
from store.notify import wait_event
from store.rebuild import pending_on_standby
from store.retry import workflow_task_retry_delay
from store.run_lock import keep_request_id, lock_for_request, send_to_active_region
from store.run_versioning import run_versioning_view
from store.run_write import not_found_message
from store.sql import QUERIES as Q
from store.workflow_retry import end_backoff_now, first_task_backoff
from worker import wire
from worker.wire import EventType

MAX_HISTORY_PAGE = 10_000


def _add_signal(
    store: Store,
    rt: RunTxn,
    name: str,
    payloads: list[wire.Payload],
    identity: str,
    request_id: str | None,
    *,
    with_start: str | None = None,
) -> None:
    """Record a signal (``request_id`` seen as a signal's). ``with_start``:
    the request id of the signal-with-start whose new run this signal opens,
    kept on the event, so that the id (recorded as the run's start's) tells a
    signal-with-start from a plain start in every region."""
    limit = store.config.signals_per_run_max
    if int(rt.exe["signal_count"]) >= limit:
        raise LimitExceeded(
            f"workflow {rt.workflow_id!r} run {rt.run_id} has taken {limit} signals, the most "
            "a run takes: have it continue-as-new to take more",
            limit=limit,
        )
    rt.exe["signal_count"] = int(rt.exe["signal_count"]) + 1
    rt.seen_request(request_id, "signal")
    attributes = {
        "signal_name": name,
        "input": [p.model_dump() for p in payloads],
        "identity": identity,
        "request_id": request_id,
    }
    if with_start:
        attributes["with_start"] = with_start
    rt.add_input_event(EventType.WORKFLOW_EXECUTION_SIGNALED, attributes)
    rt.schedule_workflow_task()


async def signal_workflow(
    store: Store,
    namespace: str,
    workflow_id: str,
    req: wire.SignalRequest,
    *,
    system: bool = False,
) -> str:
    """Signal a run; ``system``: the server's own signal to a system workflow."""
    return await store.txn(
        lambda conn: signal_workflow_txn(store, conn, namespace, workflow_id, req, system=system)
    )


async def signal_workflow_txn(
    store: Store,
    conn: asyncpg.Connection,
    namespace: str,
    workflow_id: str,
    req: wire.SignalRequest,
    *,
    system: bool = False,
) -> str:
    """:func:`signal_workflow` inside the caller's transaction."""
    rt = await lock_for_request(
        store,
        conn,
        namespace,
        workflow_id,
        req.run_id,
        req.request_id,
        kind="signal",
        system=system,
    )
    if isinstance(rt, str):
        return rt
    _add_signal(store, rt, req.signal_name, req.input, req.identity, req.request_id)
    await rt.write_txn()
    return rt.run_id


async def cancel_workflow(
    store: Store, namespace: str, workflow_id: str, req: wire.CancelRequest
) -> str:
    return await store.txn(
        lambda conn: cancel_workflow_txn(store, conn, namespace, workflow_id, req)
    )


async def cancel_workflow_txn(
    store: Store,
    conn: asyncpg.Connection,
    namespace: str,
    workflow_id: str,
    req: wire.CancelRequest,
) -> str:
    """:func:`cancel_workflow` inside the caller's transaction."""
    rt = await lock_for_request(
        store,
        conn,
        namespace,
        workflow_id,
        req.run_id,
        req.request_id,
        kind="cancel",
        first_run_id=req.first_run_id,
    )
    if isinstance(rt, str):
        return rt
    if await rt.cancel_request() is not None:
        # Asked already: the workflow code decides what a cancel means,
        # once (as Temporal does); a second request records nothing but
        # its id, so that its retry, after the run closed, succeeds too.
        await keep_request_id(rt, req.request_id, "cancel")
        return rt.run_id
    rt.seen_request(req.request_id, "cancel")
    rt.add_input_event(
        EventType.WORKFLOW_EXECUTION_CANCEL_REQUESTED,
        {"reason": req.reason, "identity": req.identity, "request_id": req.request_id},
    )
    end_backoff_now(rt)  # (as Temporal's cancel: the code decides now, not after a delay)
    rt.schedule_workflow_task()
    await rt.write_txn()
    return rt.run_id


def terminate_txn(rt: RunTxn, reason: str, identity: str, request_id: str | None = None) -> None:
    if rt.wt_started:
        # Keep the started task's events closed off before the run ends.
        rt.add_event(
            EventType.WORKFLOW_TASK_FAILED,
            {
                "scheduled_event_id": rt.exe["wt_scheduled_event_id"],
                "started_event_id": rt.exe["wt_started_event_id"],
                "cause": "WorkflowTerminated",
                "failure": None,
                "identity": identity,
            },
        )
        rt.clear_workflow_task()
    rt.flush_buffered()
    rt.seen_request(request_id, "terminate")
    rt.close(
        EventType.WORKFLOW_EXECUTION_TERMINATED,
        {"reason": reason, "identity": identity, "request_id": request_id},
    )


async def terminate_workflow(
    store: Store,
    namespace: str,
    workflow_id: str,
    req: wire.TerminateRequest,
    *,
    system: bool = False,
) -> str:
    """Terminate a run; ``system``: the server's own delete of a system workflow."""
    return await store.txn(
        lambda conn: terminate_workflow_txn(store, conn, namespace, workflow_id, req, system=system)
    )


async def terminate_workflow_txn(
    store: Store,
    conn: asyncpg.Connection,
    namespace: str,
    workflow_id: str,
    req: wire.TerminateRequest,
    *,
    system: bool = False,
) -> str:
    """:func:`terminate_workflow` inside the caller's transaction."""
    rt = await lock_for_request(
        store,
        conn,
        namespace,
        workflow_id,
        req.run_id,
        req.request_id,
        kind="terminate",
        system=system,
        first_run_id=req.first_run_id,
    )
    if isinstance(rt, str):
        return rt
    terminate_txn(rt, req.reason, req.identity, req.request_id)
    rt.fail_updates = {"message": "workflow terminated", "type": "Terminated"}
    await rt.write_txn()
    return rt.run_id


# --------------------------------------------------------------------------- reads


async def _get_run(
    conn: asyncpg.Connection, namespace: str, workflow_id: str, run_id: str | None
) -> asyncpg.Record:
    if run_id is None:
        row = await conn.fetchrow(Q["get_current_execution"], namespace, workflow_id)
    else:
        try:
            rid = uuid.UUID(run_id)
        except ValueError:
            raise InvalidArgument(
                f"run id {run_id!r} is not a UUID: pass a run id as `baton workflow list` "
                "or `describe` shows it, or leave it out for the workflow's current run"
            ) from None
        row = await conn.fetchrow(Q["get_execution"], namespace, workflow_id, rid)
    if row is None:
        await get_namespace(conn, namespace)
        raise WorkflowNotFound(not_found_message(namespace, workflow_id, run_id))
    return row


async def _read_run(
    store: Store, conn: asyncpg.Connection, namespace: str, workflow_id: str, run_id: str | None
) -> asyncpg.Record:
    """:func:`_get_run` for a client's describe or result: a standby that lacks
    the run (the active region has not shipped it yet) sends the client to the
    active region, which the SDK follows, rather than say it does not exist."""
    try:
        return await _get_run(conn, namespace, workflow_id, run_id)
    except WorkflowNotFound as exc:
        await send_to_active_region(store, conn, namespace, exc)
        raise


def execution_info(row: asyncpg.Record | dict[str, Any]) -> dict[str, Any]:
    return {
        "namespace": row["namespace"],
        "workflow_id": row["workflow_id"],
        "run_id": str(row["run_id"]),
        "workflow_type": row["workflow_type"],
        "task_queue": row["task_queue"],
        "status": row["status"],
        "paused": row["paused"],
        "pause": row["pause_info"] if row["paused"] else None,
        "start_time": row["start_time"].isoformat(),
        "close_time": row["close_time"].isoformat() if row["close_time"] else None,
        "history_length": row["next_event_id"] - 1,
        "last_write_version": row["last_write_version"],
        "continued_from_run_id": _s(row["continued_from_run_id"]),
        "continued_to_run_id": _s(row["continued_to_run_id"]),
        "memo": row["memo"],
        "search_attributes": row["search_attributes"],
        "build_id": row["build_id"],
        "deployment": row["deployment"],
        "versioning_behavior": row["versioning_behavior"],
        "run_timeout_s": row["run_timeout_s"],
        # the chain's (continue-as-new, retries and resets keep them)
        "execution_timeout_s": row.get("execution_timeout_s"),
        "execution_expiration_time": _iso(row.get("execution_expiration_time")),
        "retry_policy": row.get("retry_policy"),
        "cron_schedule": row.get("cron_schedule"),
    }


def _iso(value: datetime | str | None) -> str | None:
    return value.isoformat() if isinstance(value, datetime) else value


def _in_backoff(row: asyncpg.Record) -> bool:
    """Whether the run's workflow task failed and its next attempt is not scheduled yet."""
    return (
        row["status"] == "running"
        and row["wt_scheduled_event_id"] is None
        and int(row["wt_attempt"] or 1) > 1
    )


def _s(v: object) -> str | None:
    return None if v is None else str(v)


async def describe_workflow(
    store: Store, namespace: str, workflow_id: str, run_id: str | None
) -> dict[str, Any]:
    async with store.pool.acquire() as conn:
        row = await _read_run(store, conn, namespace, workflow_id, run_id)
        key = (namespace, workflow_id, row["run_id"])
        acts: list[Any] = list(await conn.fetch(Q["pending_activities"], *key))
        timers: list[Any] = list(await conn.fetch(Q["pending_user_timers"], *key))
        # the activity rows whose tasks this region's pollers would take
        own_acts = acts
        if row["status"] == "running" and not acts and not timers:
            ns = await get_namespace(conn, namespace)
            if ns.active_region != store.region:
                # a standby holds no activity or timer rows: say what the
                # active region has from what replicated here
                acts, timers = await pending_on_standby(conn, row)
        backoff = _in_backoff(row)
        retry_at = await conn.fetchval(Q["workflow_task_retry_at"], *key) if backoff else None
        # a workflow task on its second attempt or later: why the last one ended
        last_end = (
            await conn.fetchrow(Q["last_workflow_task_end"], *key)
            if row["status"] == "running" and int(row["wt_attempt"] or 1) > 1
            else None
        )
        if backoff and retry_at is None and last_end is not None and not row["paused"]:
            ns = await get_namespace(conn, namespace)
            if ns.active_region != store.region:
                # a standby holds no timer rows: the retry is due when the
                # active region's timer fires, as a promotion would set it
                delay = workflow_task_retry_delay(
                    int(row["wt_attempt"]), store.config.workflow_task_retry_max_s
                )
                retry_at = last_end["event_time"] + timedelta(seconds=delay)
        # its first workflow task's wait (a retry's backoff, a start delay, a
        # cron time): when its code may first run, and what waits for it
        first = await conn.fetchval(Q["run_started_attributes"], *key) or {}
        started = first if row["status"] == "running" and int(row["wt_attempt"]) == 0 else None
        versioning = None
        if row["deployment"] or row["versioning"]:
            ns = await get_namespace(conn, namespace)
            versioning = await run_versioning_view(conn, ns, dict(row), own_acts)
    wt = None
    if row["wt_scheduled_event_id"] is not None:
        wt = {
            "scheduled_event_id": row["wt_scheduled_event_id"],
            "started_event_id": row["wt_started_event_id"],
            "attempt": row["wt_attempt"],
            "identity": row["wt_identity"],
        }
    elif backoff:
        # A task that failed and waits out its retry backoff (or an unpause)
        # is still the run's pending work: say which attempt comes and when.
        wt = {
            "scheduled_event_id": None,
            "started_event_id": None,
            "attempt": row["wt_attempt"],
            "identity": None,
            "retry_at": retry_at.isoformat() if retry_at else None,
        }
    elif started is not None:
        due = row["start_time"] + timedelta(seconds=started["first_workflow_task_backoff_s"])
        wt = {
            "scheduled_event_id": None,
            "started_event_id": None,
            "attempt": 1,
            "identity": None,
            "retry_at": due.isoformat(),
            "workflow_attempt": started.get("attempt"),
        }
    if wt is not None and last_end is not None:
        wt |= _task_end_failure(last_end)
    closed = row["status"] != "running"
    execution = execution_info(row)
    # Temporal's execution_time: when the run's first workflow task was due
    wait = timedelta(seconds=first_task_backoff(first, str(row["run_id"])))
    execution["execution_time"] = (row["start_time"] + wait).isoformat()
    return {
        "execution": execution,
        # how a run that closed without a result ended (as ``result`` says it)
        "failure": row["failure"] if closed and row["status"] != "completed" else None,
        "warnings": limit_warnings(store, row),
        "pending_activities": [
            {
                "activity_id": a["activity_id"],
                "activity_type": a["activity_type"],
                "state": a["state"],
                "attempt": a["attempt"],
                "scheduled_event_id": a["scheduled_event_id"],
                "last_failure": a["last_failure"],
                "heartbeat_details": a["heartbeat_details"],
                "last_heartbeat_time": (
                    a["last_heartbeat_time"].isoformat() if a["last_heartbeat_time"] else None
                ),
                "paused": bool(a["paused"]),
                # the workflow asked to cancel it; a running attempt learns of
                # it at its next heartbeat (Temporal's CANCEL_REQUESTED state)
                "cancel_requested": bool(a.get("cancel_requested")),
                "control": a["control"],
            }
            for a in acts
        ],
        "pending_timers": [
            {"timer_id": t["timer_id"], "fire_at": t["fire_at"].isoformat()} for t in timers
        ],
        "pending_workflow_task": wt,
        "versioning": versioning,
    }


def _task_end_failure(end: asyncpg.Record) -> dict[str, Any]:
    """Why the run's last workflow task ended without completing: its failure
    (as the worker reported it), the cause and the event that recorded it."""
    if end["event_type"] == EventType.WORKFLOW_TASK_TIMED_OUT.value:
        failure = {
            "message": "the workflow task timed out: no worker completed it in time",
            "type": "WorkflowTaskTimedOut",
        }
        cause = "TimedOut"
    else:
        failure, cause = end["failure"], end["cause"]
    return {
        "last_failure": failure,
        "last_failure_cause": cause,
        "last_failure_event_id": end["event_id"],
    }


def limit_warnings(store: Store, row: asyncpg.Record) -> list[str]:
    """What ``describe`` says of a run nearing its limits (Temporal warns the same way)."""
    cfg = store.config
    out = []
    length, size = int(row["next_event_id"]) - 1, int(row["history_size_bytes"])
    if length >= cfg.suggest_continue_as_new_events:
        out.append(
            f"history length {length} is past {cfg.suggest_continue_as_new_events} events; at "
            f"{cfg.history_events_max} the run is terminated: continue-as-new"
        )
    if size >= cfg.history_bytes_warn:
        out.append(
            f"history size {size} bytes is past {cfg.history_bytes_warn}; at "
            f"{cfg.history_bytes_max} the run is terminated: continue-as-new"
        )
    signals = int(row["signal_count"])
    if signals >= cfg.signals_per_run_max * 0.8:
        out.append(
            f"{signals} signals taken of {cfg.signals_per_run_max} a run takes: continue-as-new"
        )
    return out


async def get_history(
    store: Store,
    namespace: str,
    workflow_id: str,
    run_id: str | None,
    from_event_id: int = 1,
    wait_s: float = 0.0,
    limit: int = MAX_HISTORY_PAGE,
) -> dict[str, Any]:
    """History of a run from ``from_event_id``; waits up to ``wait_s`` for new events."""
    deadline = utcnow() + timedelta(seconds=wait_s)
    async with store.notifier.subscribe("baton_history_v1", f"{namespace}/{workflow_id}") as ev:
        while True:
            async with store.pool.acquire() as conn:
                row = await _read_run(store, conn, namespace, workflow_id, run_id)
                page = await conn.fetchrow(
                    Q["history_json"], namespace, workflow_id, row["run_id"], from_event_id, limit
                )
            closed = row["status"] != "running"
            remaining = (deadline - utcnow()).total_seconds()
            if page["n"] or closed or remaining <= 0 or store.notifier.draining:
                return {
                    "run_id": str(row["run_id"]),
                    # already JSON: orjson writes it into the response as it is
                    "events": orjson.Fragment(page["events"]),
                    "next_event_id": row["next_event_id"],
                    "closed": closed,
                }
            run_id = str(row["run_id"])
            await wait_event(ev, remaining)


#: Closes that hand the outcome on when the run links to a next one:
#: continue-as-new, a reset (terminated), a retry (failed, timed out), a
#: cron schedule's next run (completed too).
_FOLLOWED = ("continued_as_new", "terminated", "failed", "timed_out", "completed")


async def get_result(
    store: Store,
    namespace: str,
    workflow_id: str,
    run_id: str | None,
    wait_s: float = 0.0,
    *,
    follow: bool = True,
) -> dict[str, Any]:
    """Outcome of a run, following continue-as-new, resets and retries to the
    last run of the chain (``follow``: else the run's own)."""
    async with closes_of(store, namespace, workflow_id) as ev:
        return await wait_outcome(store, namespace, workflow_id, run_id, wait_s, ev, follow=follow)


def closes_of(
    store: Store, namespace: str, workflow_id: str
) -> contextlib.AbstractAsyncContextManager[asyncio.Event]:
    """An event set when a run of ``workflow_id`` closes (for :func:`wait_outcome`)."""
    return store.notifier.subscribe("baton_closed_v1", f"{namespace}/{workflow_id}")


async def wait_outcome(
    store: Store,
    namespace: str,
    workflow_id: str,
    run_id: str | None,
    wait_s: float,
    ev: asyncio.Event,
    *,
    opened_since: int | None = None,
    follow: bool = True,
) -> dict[str, Any]:
    """:func:`get_result` on ``ev`` from :func:`closes_of`, subscribed by the caller.

    ``opened_since``: ``run_id`` was opened by the caller, subscribed before it
    began, when the run cache's ``close_seq`` was this; the run is known to be
    open, so the wait starts without reading it.
    """
    deadline = utcnow() + timedelta(seconds=wait_s)
    since = opened_since
    read = opened_since is None or run_id is None
    while True:
        if read:
            since = store.run_cache.close_seq  # (before the read)
            async with store.pool.acquire() as conn:
                row = await _read_run(store, conn, namespace, workflow_id, run_id)
                # continue-as-new and reset (a terminated run linked to its
                # successor) both hand the workflow's outcome to a new run
                while follow and row["status"] in _FOLLOWED and row["continued_to_run_id"]:
                    row = await _read_run(
                        store, conn, namespace, workflow_id, str(row["continued_to_run_id"])
                    )
            run_id = str(row["run_id"])
            closed = row["status"] != "running"
            remaining = (deadline - utcnow()).total_seconds()
            if closed or remaining <= 0 or store.notifier.draining:
                return _outcome(run_id, row)
        else:
            read = True  # from now on, on every turn the wait is not answered here
            remaining = (deadline - utcnow()).total_seconds()
            if remaining <= 0 or store.notifier.draining:
                continue
        assert run_id is not None and since is not None
        if await wait_event(ev, remaining):
            # closed by a write of this process: no need to read it again
            here = await store.run_cache.closed_here(
                (namespace, workflow_id, run_id),
                since,
                (deadline - utcnow()).total_seconds(),
            )
            if here is not None and not (
                follow and here["status"] in _FOLLOWED and here["continued_to_run_id"]
            ):
                return _outcome(run_id, here)


def _outcome(run_id: str, row: asyncpg.Record | dict[str, Any]) -> dict[str, Any]:
    closed = row["status"] != "running"
    return {
        "run_id": run_id,
        "status": row["status"],
        "closed": closed,
        "result": row["result"] if row["status"] == "completed" else None,
        "failure": row["failure"] if closed and row["status"] != "completed" else None,
        "continued_to_run_id": _s(row["continued_to_run_id"]) if closed else None,
    }
