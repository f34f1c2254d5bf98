"""Queries and updates: requests that wait for a worker's answer."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from store.context import Store
from store.errors import (
    LimitExceeded,
    QueryFailed,
    QueryTimedOut,
    UpdateFailed,
    UpdateNotFound,
    UpdateRejected,
    UpdateTimedOut,
    WorkflowNotFound,
    WorkflowNotRunning,
    WorkflowPaused,
)
from store.mutable_state import utcnow
from store.namespaces import get_namespace, require_active_here
from store.notify import wait_event
from store.run_lock import lock_run
from store.sql import QUERIES as Q
from store.workflow_retry import end_backoff_now
from store.workflows import _get_run
from versioning import routing
from worker import wire


async def query_workflow(
    store: Store, namespace: str, workflow_id: str, req: wire.QueryRequest
) -> dict[str, Any]:
    """Ask a worker to run a query handler against the workflow's current state."""
    await require_active_here(store, namespace)
    epoch = store.notifier.namespace_epoch
    deadline = utcnow() + timedelta(seconds=req.timeout_s)
    async with store.pool.acquire() as conn:
        row = await _get_run(conn, namespace, workflow_id, req.run_id)
    pending = _task_pending(row)
    if pending is not None:
        # At most half the query's time: a task whose worker died waits out
        # its timeout, and the query then answers from the last completed
        # task rather than not at all.
        held = min(deadline, utcnow() + timedelta(seconds=req.timeout_s / 2))
        buffered = int(row["buffered_seq"]) > int(row["buffered_flushed_seq"])
        row = await _after_pending_task(store, row, pending, held)
        following = _task_pending(row)
        if buffered and following is not None and following != pending:
            # Inputs that came while that task ran (a signal whose call
            # returned) waited in the buffer: its completion wrote them to
            # history and scheduled the task that hands them to the code.
            row = await _after_pending_task(store, row, following, held)
    query_id = uuid.uuid4()
    # the version whose workers may answer (None: unversioned ones), for the timeout's hint
    version: str | None = None
    async with store.notifier.subscribe("baton_queries_v1", str(query_id)) as ev:

        async def insert(conn: asyncpg.Connection) -> None:
            nonlocal version
            # the version the run's next workflow task would go to: one that can replay it
            version = routing.workflow_task_tag(
                (await get_namespace(conn, namespace)).deployments, row
            )
            await conn.execute(
                Q["insert_query"],
                query_id,
                namespace,
                workflow_id,
                row["run_id"],
                req.query_name,
                [p.model_dump() for p in req.input],
            )
            await conn.execute(
                Q["insert_query_task"],
                namespace,
                workflow_id,
                row["run_id"],
                row["task_queue"],
                str(query_id),
                version,
            )

        await store.txn(insert)
        try:
            while True:
                async with store.pool.acquire() as conn:
                    q = await conn.fetchrow(Q["get_query"], query_id)
                if q is not None and q["state"] == "answered":
                    if q["failure"]:
                        raise QueryFailed(
                            f"query {req.query_name!r} failed: {q['failure'].get('message', '')}",
                            failure=q["failure"],
                        )
                    return {"result": q["result"]}
                if store.notifier.namespace_epoch != epoch:
                    epoch = store.notifier.namespace_epoch
                    await require_active_here(store, namespace)
                remaining = (deadline - utcnow()).total_seconds()
                if remaining <= 0 or store.notifier.draining:
                    raise QueryTimedOut(
                        f"no worker answered query {req.query_name!r} within {req.timeout_s}s: "
                        f"is a worker{f' of {version}' if version else ''} polling task queue "
                        f"{row['task_queue']!r}?"
                        + (" (only that version's workers answer)" if version else "")
                    )
                await wait_event(ev, remaining)
        finally:
            async with store.pool.acquire() as conn:
                await conn.execute(Q["delete_query"], query_id)


def _task_pending(row: asyncpg.Record) -> int | None:
    """The scheduled event id of the workflow task a query waits for, if any.

    A worker answers a query from the state of the run's last completed
    workflow task. A task scheduled or running when the query arrives holds
    what the server confirmed before it (a start, a signal whose call
    returned): the query waits for it, as Temporal's consistent queries do,
    and, if inputs waited in the buffer while it ran, for the task its
    completion scheduled for them.
    Not for a task that already failed (attempt > 1: it may not complete
    soon, the last good state answers), nor for one a pause holds back, nor for
    one scheduled for updates alone (store/update_tasks.py); and
    for half the query's timeout at most (a task whose worker died waits
    out its own timeout).
    """
    if row["status"] != "running" or row["wt_scheduled_event_id"] is None:
        return None
    if int(row["wt_scheduled_event_id"]) >= int(row["next_event_id"]):
        return None  # a task for updates alone (store/update_tasks.py) holds no input
    if row["wt_attempt"] > 1 or (row["paused"] and row["wt_started_event_id"] is None):
        return None
    return int(row["wt_scheduled_event_id"])


async def _after_pending_task(
    store: Store, row: asyncpg.Record, pending: int, until: datetime
) -> asyncpg.Record:
    """Wait until the workflow task ``pending`` (its scheduled event id) of the run
    in ``row`` is no longer pending, or ``until``; the run's row then. Its
    completion writes history, which wakes this wait."""
    namespace, workflow_id, run_id = row["namespace"], row["workflow_id"], row["run_id"]
    epoch = store.notifier.namespace_epoch
    async with store.notifier.subscribe("baton_history_v1", f"{namespace}/{workflow_id}") as ev:
        while True:
            async with store.pool.acquire() as conn:
                got = await conn.fetchrow(Q["get_execution"], namespace, workflow_id, run_id)
            if got is None:  # (deleted meanwhile: retention of a run closed long ago)
                raise WorkflowNotFound(f"run {run_id} of workflow {workflow_id!r} not found")
            row = got
            if _task_pending(row) != pending:
                return row
            if store.notifier.namespace_epoch != epoch:
                epoch = store.notifier.namespace_epoch
                await require_active_here(store, namespace)
            remaining = (until - utcnow()).total_seconds()
            if remaining <= 0 or store.notifier.draining:
                return row
            await wait_event(ev, remaining)


async def update_workflow(
    store: Store,
    namespace: str,
    workflow_id: str,
    req: wire.UpdateRequest,
    *,
    poll: bool = False,
) -> dict[str, Any]:
    """Record an update (once per update id) and wait for the workflow's answer
    (or only for its acceptance, as ``req.wait_for_stage`` asks). ``poll``:
    only wait for the answer to the update of that id sent before (Temporal's
    ``get_update_handle``), :class:`UpdateNotFound` if there is none."""
    update_id = req.update_id or str(uuid.uuid4())
    deadline = utcnow() + timedelta(seconds=req.timeout_s)
    epoch = store.notifier.namespace_epoch
    key = f"{namespace}/{workflow_id}/{update_id}"
    # Update ids are deduplicated per run, as in Temporal: the run the id is
    # (or was already) recorded in answers it, and a later run of the
    # workflow id takes the same id as a new update.
    async with (
        store.notifier.subscribe("baton_updates_v1", key) as ev,
        # A run that closes rejects the updates it leaves open in its write,
        # which notifies no update: its close wakes the wait instead.
        store.notifier.subscribe("baton_closed_v1", f"{namespace}/{workflow_id}", ev),
    ):

        async def submit(conn: asyncpg.Connection) -> uuid.UUID:
            """Record the update in the run it goes to; that run's id."""
            rt = await lock_run(store, conn, namespace, workflow_id, req.run_id)
            run_id = uuid.UUID(rt.run_id)
            existing = await conn.fetchrow(
                Q["get_update"], namespace, workflow_id, update_id, run_id
            )
            if existing is not None:
                return run_id  # a retried update: wait for the first one's outcome
            if poll:
                raise UpdateNotFound(
                    f"workflow {workflow_id!r} run {run_id} has no update {update_id!r}: "
                    "pass the run it was sent to, or send the update"
                )
            if not rt.running:
                raise WorkflowNotRunning(
                    f"workflow {workflow_id!r} is {rt.exe['status']}; it takes no updates"
                )
            if rt.exe["paused"]:
                info = rt.exe.get("pause_info") or {}
                raise WorkflowPaused(
                    f"workflow {workflow_id!r} is paused ({info.get('reason') or 'no reason'}, "
                    f"by {info.get('identity') or 'unknown'}): unpause it, then send the update",
                    reason=info.get("reason"),
                )
            in_flight = await conn.fetchval(Q["updates_in_flight"], namespace, workflow_id, run_id)
            if in_flight >= store.config.updates_in_flight_max:
                raise LimitExceeded(
                    f"workflow {workflow_id!r} has {in_flight} updates in flight, the most a "
                    "run takes at once: wait for some to complete and retry",
                    limit=store.config.updates_in_flight_max,
                )
            await conn.execute(
                Q["insert_update"],
                namespace,
                workflow_id,
                update_id,
                run_id,
                req.name,
                [p.model_dump() for p in req.input],
            )
            rt.exe["pending_updates"] = True
            # a run waiting out its start delay, cron time or retry backoff
            # runs now, as Temporal's does for an update (a signal waits)
            end_backoff_now(rt)
            # kept out of history unless the workflow accepts it (store/update_tasks.py)
            rt.schedule_workflow_task(speculative=True)
            await rt.write_txn()
            return run_id

        run_id = await store.txn(submit)
        while True:
            if store.notifier.namespace_epoch != epoch:
                # The namespace moved: the caller retries (same update id) in
                # the region it moved to, which knows the update from history.
                epoch = store.notifier.namespace_epoch
                await require_active_here(store, namespace)
            async with store.pool.acquire() as conn:
                u = await conn.fetchrow(Q["get_update"], namespace, workflow_id, update_id, run_id)
            if u is None:
                # A requested update that no workflow task took when the
                # namespace moved away is dropped with it; say so, or ask
                # for a retry that records it again.
                await require_active_here(store, namespace)
                raise UpdateTimedOut(
                    f"update {update_id!r} is no longer recorded here; call again with the "
                    "same update_id",
                    update_id=update_id,
                )
            if u["state"] == "rejected":
                failure = u["failure"] or {}
                if failure.get("type") == "Reset":
                    reapplied = await _reapplied_in(
                        store, namespace, workflow_id, update_id, run_id
                    )
                    if reapplied is not None:
                        # the reset requested it again in its new run: wait there
                        run_id = reapplied
                        continue
                async with store.pool.acquire() as conn:
                    accepted = await conn.fetchval(
                        Q["update_accepted"], namespace, workflow_id, u["run_id"], update_id
                    )
                if accepted:
                    # Its handler ran (and may have changed the workflow's
                    # state) before the run closed: not "nothing recorded".
                    raise UpdateFailed(
                        f"update {u['name']!r} failed: {failure.get('message', '')}",
                        update_id=update_id,
                        failure=failure,
                    )
                raise UpdateRejected(
                    f"update {u['name']!r} was rejected: {failure.get('message', '')}",
                    update_id=update_id,
                    failure=failure,
                )
            if u["state"] == "accepted" and req.wait_for_stage == "accepted":
                # start_update's stage: the handler runs, its result comes later
                return {"update_id": update_id, "run_id": str(u["run_id"]), "state": "accepted"}
            if u["state"] == "completed":
                if u["failure"]:
                    raise UpdateFailed(
                        f"update {u['name']!r} failed: {u['failure'].get('message', '')}",
                        update_id=update_id,
                        failure=u["failure"],
                    )
                return {
                    "update_id": update_id,
                    "run_id": str(u["run_id"]),
                    "state": "completed",
                    "result": u["result"],
                }
            remaining = (deadline - utcnow()).total_seconds()
            if remaining <= 0 or store.notifier.draining:
                held = await _held_by_pause(store, namespace, workflow_id, run_id)
                # named: a run the current one continued as takes the id anew
                raise UpdateTimedOut(
                    f"update {update_id!r} is {u['state']} and did not complete within "
                    f"{req.timeout_s}s{held}; call again with the same update_id and run_id "
                    f"{run_id} to keep waiting",
                    update_id=update_id,
                    run_id=str(run_id),
                )
            await wait_event(ev, remaining)


async def _reapplied_in(
    store: Store, namespace: str, workflow_id: str, update_id: str, run_id: uuid.UUID
) -> uuid.UUID | None:
    """The run a reset of ``run_id`` went to, if it requested the update again."""
    async with store.pool.acquire() as conn:
        old = await conn.fetchrow(Q["get_execution"], namespace, workflow_id, run_id)
        new_run = old["continued_to_run_id"] if old is not None else None
        if new_run is None:
            return None
        new_run = uuid.UUID(str(new_run))
        row = await conn.fetchrow(Q["get_update"], namespace, workflow_id, update_id, new_run)
    return new_run if row is not None else None


async def _held_by_pause(store: Store, namespace: str, workflow_id: str, run_id: uuid.UUID) -> str:
    """Why an update waits, when a pause that came after it holds the run
    (one sent to a paused run is refused at once): it goes on at the unpause."""
    async with store.pool.acquire() as conn:
        row = await conn.fetchrow(Q["get_execution"], namespace, workflow_id, run_id)
    if row is None or not row["paused"]:
        return ""
    info = row["pause_info"] or {}
    return (
        f" (the run was paused meanwhile: {info.get('reason') or 'no reason'}, by "
        f"{info.get('identity') or 'unknown'}; the update goes on once it is unpaused)"
    )
