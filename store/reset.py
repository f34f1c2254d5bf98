"""Workflow reset: a new run whose history is the old one up to a workflow task.

The chosen task is re-run on whatever code the workers now have: the new run
holds the old run's events up to that task's WorkflowTaskStarted (with their
original times), then a WorkflowTaskFailed that names the reset, the signals
the old run received after the point (unless told otherwise), and a new
workflow task. Activities and timers open at the point are open again (a fresh
attempt, the original fire time). As in Temporal, the updates the old run
accepted after the point are requested again in the new run (unless told
otherwise), in the order it accepted them, under their ids, and so are those
it had not taken yet: the new run's validators and handlers take them, and a
caller still waiting on one follows it there. A running old run is
terminated with a reason that names the new run and links to it, so a
caller waiting on the old run's result follows to the new one. A run before
the current one may be reset, as in Temporal: the current run is the one
terminated, and when the reset run continued as new into it, what the runs
of that chain received is re-applied too. It is one transaction: the current
run closed, the new run written and made current, or nothing.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from store.chain import add_execution_timer, carried
from store.context import Store
from store.errors import InvalidArgument
from store.mutable_state import (
    RUN_TIMEOUT,
    USER_TIMER,
    VERSIONING_COLUMNS,
    RunTxn,
)
from store.new_run import new_execution
from store.rebuild import _rebuild_activity, pending_from_history
from store.run_lock import check_request_kind, lock_run
from store.sql import QUERIES as Q
from store.workflows import terminate_txn
from worker import wire
from worker._payloads import merged_memo
from worker.wire import EventType

_TASK_STARTED = EventType.WORKFLOW_TASK_STARTED.value
_TASK_ENDS = {
    EventType.WORKFLOW_TASK_COMPLETED.value,
    EventType.WORKFLOW_TASK_FAILED.value,
    EventType.WORKFLOW_TASK_TIMED_OUT.value,
}
_MAX_EVENTS = 1_000_000


def finished_tasks(events: list[Any]) -> list[tuple[int, int, str]]:
    """(started event id, end event id, end type) of each workflow task that ended."""
    out = []
    for e in events:
        if e["event_type"] in _TASK_ENDS:
            started = e["attributes"].get("started_event_id")
            if isinstance(started, int) and started > 0:
                out.append((started, e["event_id"], e["event_type"]))
    return out


def reset_point(events: list[Any], req: wire.ResetRequest) -> int:
    """The WorkflowTaskStarted event id the new run's history ends with."""
    tasks = finished_tasks(events)
    completed = [t for t in tasks if t[2] == EventType.WORKFLOW_TASK_COMPLETED.value]
    if (req.event_id is None) == (req.to is None):
        raise InvalidArgument("give exactly one of event_id or to (first/last-workflow-task)")
    if req.to == "first-workflow-task":
        if not tasks:
            raise InvalidArgument("the run has no finished workflow task to reset to yet")
        return tasks[0][0]
    if req.to == "last-workflow-task":
        if not completed:
            raise InvalidArgument("the run has no completed workflow task to reset to yet")
        return completed[-1][0]
    eid = int(req.event_id or 0)
    for started, end, _ in tasks:
        if eid in (started, end):
            return started
    points = ", ".join(str(end) for _, end, _ in tasks[-10:]) or "none yet"
    kind = next((e["event_type"] for e in events if e["event_id"] == eid), None)
    what = f"event {eid} ({kind})" if kind else f"event {eid} (not in the run's history)"
    raise InvalidArgument(
        f"{what} is not the end of a finished workflow task, so the run cannot be reset "
        f"there: use the id of a WorkflowTaskCompleted, -Failed or -TimedOut event "
        f"(the last of them: {points}), or --to first-workflow-task|last-workflow-task"
    )


def _copy_history(new: RunTxn, kept: list[Any], old_run_id: str) -> None:
    signaled = EventType.WORKFLOW_EXECUTION_SIGNALED.value
    started = EventType.WORKFLOW_EXECUTION_STARTED.value
    for e in kept:
        attrs = dict(e["attributes"])
        if e["event_type"] == started and not attrs.get("original_run_id"):
            # a run started by an earlier release drew workflow.random() from
            # its own id all along: its kept events replay with that seed
            attrs["original_run_id"] = old_run_id
        new.add_event(EventType(e["event_type"]), attrs)
    # the kept signals count against the run's limit, as they did in the old run
    new.exe["signal_count"] = sum(1 for e in kept if e["event_type"] == signaled)


def _reopen_pending(new: RunTxn, kept: list[Any]) -> None:
    work = pending_from_history(kept)
    for sid, act in work.activities.items():
        # (one whose cancel was requested before the point is recorded canceled now)
        _rebuild_activity(new, sid, act, None, "the reset run")
    for timer_id, fire_at in work.timers.items():
        new.add_timer(USER_TIMER, timer_id, datetime.fromisoformat(fire_at))


async def reset_txn(
    store: Store,
    conn: asyncpg.Connection,
    namespace: str,
    workflow_id: str,
    req: wire.ResetRequest,
) -> wire.ResetResponse:
    """:func:`reset_workflow` inside the caller's transaction."""
    old = await lock_run(store, conn, namespace, workflow_id, req.run_id)
    if req.request_id:
        seen = await conn.fetchrow(Q["request_seen"], namespace, workflow_id, req.request_id)
        if seen is None:
            # a reset made in another region before a failover: by its history
            seen = await conn.fetchrow(
                Q["reset_by_request"], namespace, workflow_id, req.request_id
            )
        if seen is not None:
            check_request_kind(workflow_id, req.request_id, seen["kind"], "reset")
            # the same reset again: the same answer, with the run it reset from
            source = await conn.fetchval(Q["reset_source"], namespace, workflow_id, seen["run_id"])
            return wire.ResetResponse(
                workflow_id=workflow_id,
                run_id=str(seen["run_id"]),
                reset_from_run_id=source,
                reset=False,
            )
    current = await conn.fetchrow(Q["get_current_execution"], namespace, workflow_id)
    # As in Temporal, a run before the current one may be reset (one that
    # continued as new, say): the current run, if running, is terminated,
    # and what the runs after the reset one took is re-applied too.
    latest = old
    while current is not None and str(current["run_id"]) != latest.run_id:
        # the current run may continue as new while this waits for its lock:
        # then the run it went on to is the one to end (one running run)
        latest = await lock_run(store, conn, namespace, workflow_id, str(current["run_id"]))
        current = await conn.fetchrow(Q["get_current_execution"], namespace, workflow_id)
    events = await _history(conn, namespace, workflow_id, old.run_id)
    point = reset_point(events, req)
    kept = [e for e in events if e["event_id"] <= point]
    after = [e for e in events if e["event_id"] > point]
    after += await _chain_after(conn, namespace, workflow_id, old, latest)
    e = old.exe
    new = new_execution(
        conn,
        old.ns,
        workflow_id=workflow_id,
        workflow_type=e["workflow_type"],
        task_queue=e["task_queue"],
        request_id=None,
        task_timeout_s=e["task_timeout_s"],
        run_timeout_s=e["run_timeout_s"],
        memo=_memo_at(kept, e["memo"]),
        first_run_id=str(e["first_run_id"]),
        now=old.now,
        search_attributes=_attributes_at(kept),
        chain=carried(e),  # the chain's deadline holds across a reset
    )
    _copy_history(new, kept, old.run_id)
    # the new run keeps the old one's versioning (its pin, its override)
    for column in VERSIONING_COLUMNS:
        new.exe[column] = e.get(column)
    completed_before = [
        s for s, _, kind in finished_tasks(kept) if kind == EventType.WORKFLOW_TASK_COMPLETED.value
    ]
    new.exe["last_completed_wt_started"] = completed_before[-1] if completed_before else 0
    reapplied_updates = _updates_after(after) if req.reapply == "all" else []
    if req.reapply == "all" and latest.running:
        # updates no task took yet (a wedged run's): their callers still wait
        taken = {u["update_id"] for u in reapplied_updates}
        for row in await conn.fetch(
            Q["pending_updates"], namespace, workflow_id, uuid.UUID(latest.run_id)
        ):
            if row["update_id"] not in taken:
                reapplied_updates.append(
                    {"update_id": row["update_id"], "name": row["name"], "input": row["input"]}
                )
    new.add_event(
        EventType.WORKFLOW_TASK_FAILED,
        {
            "scheduled_event_id": kept[-1]["attributes"].get("scheduled_event_id"),
            "started_event_id": point,
            "cause": "ResetWorkflow",
            "failure": {"message": f"reset: {req.reason}", "type": "ResetWorkflow"},
            "reset_from_run_id": old.run_id,
            # workflow.random() draws anew from here, seeded from the new run
            "new_run_id": new.run_id,
            "identity": req.identity,
            # replicates with the history: a retry finds it in every region
            "request_id": req.request_id,
            # the updates requested again in the new run: they wait outside
            # history until a task takes them, so a region promoted before
            # then requests them again from here (store/rebuild.py)
            "reapplied_updates": reapplied_updates,
        },
    )
    if reapplied_updates:
        new.exe["pending_updates"] = True
    if req.reapply in ("all", "signals"):
        for attrs in _signals_after(after, latest):
            new.add_event(EventType.WORKFLOW_EXECUTION_SIGNALED, attrs)
            new.exe["signal_count"] = int(new.exe["signal_count"]) + 1
    _reopen_pending(new, kept)
    if new.exe["run_timeout_s"]:
        new.add_timer(RUN_TIMEOUT, "run", new.now + timedelta(seconds=new.exe["run_timeout_s"]))
    add_execution_timer(new)
    new.schedule_workflow_task()
    new.seen_request(req.request_id, "reset")
    if latest.running:
        terminate_txn(
            latest,
            f"reset to run {new.run_id}: {req.reason}",
            req.identity,
            None,
        )
        latest.exe["continued_to_run_id"] = new.run_id
        latest.fail_updates = {"message": f"workflow reset to run {new.run_id}", "type": "Reset"}
        await latest.write_txn()
    await new.write_txn()
    # the updates the kept history accepted and left open complete anew in the
    # new run (its code replays them); those re-applied wait for its workflow
    # task: a caller still waiting on either follows it there
    for attrs, state in [(u, "accepted") for u in _updates_open_at(kept)] + [
        (u, "requested") for u in reapplied_updates
    ]:
        await conn.execute(
            Q["insert_reset_update"],
            namespace,
            workflow_id,
            attrs["update_id"],
            uuid.UUID(new.run_id),
            attrs["name"],
            attrs["input"],
            state,
        )
    # the kept events keep their original times (workflow.now() replays as it ran)
    await conn.execute(
        Q["restore_event_times"],
        namespace,
        workflow_id,
        uuid.UUID(new.run_id),
        uuid.UUID(old.run_id),
        point,
    )
    return wire.ResetResponse(
        workflow_id=workflow_id, run_id=new.run_id, reset_from_run_id=old.run_id, reset=True
    )


async def _history(
    conn: asyncpg.Connection, namespace: str, workflow_id: str, run_id: str
) -> list[Any]:
    return list(
        await conn.fetch(
            Q["history_from"], namespace, workflow_id, uuid.UUID(run_id), 1, _MAX_EVENTS
        )
    )


async def _chain_after(
    conn: asyncpg.Connection, namespace: str, workflow_id: str, old: RunTxn, latest: RunTxn
) -> list[Any]:
    """The histories of the runs the reset run continued as new into, up to
    the current one, when it is one of them (else none: it is a later start)."""
    events: list[Any] = []
    exe = old.exe
    for _ in range(1000):
        nxt = exe.get("continued_to_run_id")
        if exe["status"] != "continued_as_new" or nxt is None:
            return []
        if str(nxt) == latest.run_id:
            return events + await _history(conn, namespace, workflow_id, latest.run_id)
        row = await conn.fetchrow(Q["get_execution"], namespace, workflow_id, uuid.UUID(str(nxt)))
        if row is None:
            return []
        events += await _history(conn, namespace, workflow_id, str(nxt))
        exe = dict(row)
    return []


def _signals_after(after: list[Any], old: RunTxn) -> list[dict[str, Any]]:
    """The signals the old run received after the point, in the order they
    arrived: those in its history, then those still buffered behind the
    workflow task it was running (they reach its history only as it closes)."""
    signaled = EventType.WORKFLOW_EXECUTION_SIGNALED.value
    out = [dict(ev["attributes"]) for ev in after if ev["event_type"] == signaled]
    out += [dict(attrs) for kind, attrs, _seq in old.exe["buffered_events"] if kind == signaled]
    return out


def _accepted_in(events: list[Any]) -> dict[str, dict[str, Any]]:
    """The updates ``events`` accept, by id, in the order they were taken."""
    accepted = EventType.WORKFLOW_EXECUTION_UPDATE_ACCEPTED.value
    out: dict[str, dict[str, Any]] = {}
    for ev in events:
        a = ev["attributes"]
        if ev["event_type"] == accepted and str(a.get("update_id")) not in out:
            out[str(a["update_id"])] = {
                "update_id": str(a["update_id"]),
                "name": a.get("name") or "",
                "input": a.get("input") or [],
            }
    return out


def _updates_after(after: list[Any]) -> list[dict[str, Any]]:
    """The updates the old run accepted after the point, in the order it took
    them (Temporal's reset re-applies them as it does signals)."""
    return list(_accepted_in(after).values())


def _updates_open_at(kept: list[Any]) -> list[dict[str, Any]]:
    """The updates the kept history accepted and did not complete."""
    completed = EventType.WORKFLOW_EXECUTION_UPDATE_COMPLETED.value
    done = {str(e["attributes"].get("update_id")) for e in kept if e["event_type"] == completed}
    return [u for uid, u in _accepted_in(kept).items() if uid not in done]


def _attributes_at(kept: list[Any]) -> dict[str, Any]:
    """The run's custom search attributes as they were at the reset point."""
    attrs: dict[str, Any] = dict(kept[0]["attributes"].get("search_attributes") or {})
    for e in kept:
        if e["event_type"] == EventType.UPSERT_WORKFLOW_SEARCH_ATTRIBUTES.value:
            for name, value in (e["attributes"].get("search_attributes") or {}).items():
                if value is None:
                    attrs.pop(name, None)
                else:
                    attrs[name] = value
    return attrs


def _memo_at(kept: list[Any], current: dict[str, Any]) -> dict[str, Any]:
    """The run's memo as it was at the reset point: the memo it started with and
    its workflow's upserts in the kept history."""
    started = kept[0]["attributes"].get("memo")
    memo: dict[str, Any] = dict(current if started is None else started)
    for e in kept:
        if e["event_type"] == EventType.WORKFLOW_PROPERTIES_MODIFIED.value:
            memo = merged_memo(memo, e["attributes"].get("upserted_memo") or {})
    return memo


async def reset_workflow(
    store: Store, namespace: str, workflow_id: str, req: wire.ResetRequest
) -> wire.ResetResponse:
    """Reset a run (the current one by default); see the module docstring."""
    return await store.txn(lambda conn: reset_txn(store, conn, namespace, workflow_id, req))
