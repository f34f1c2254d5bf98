"""Writing a run: everything a :class:`~store.mutable_state.RunTxn` gathered,
in one call of ``baton_write_run_v5`` (with a remembered run's checks where the
server keeps the run as the write leaves it, see :mod:`store.run_cache`)."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any, NoReturn

import asyncpg

from store.errors import StaleRun, WorkflowNotFound
from store.namespaces import get_namespace
from store.notify import AFTER_COMMIT
from store.run_cache import RunCache, entry_after_write
from store.sql import QUERIES as Q
from versioning import routing

if TYPE_CHECKING:
    from store.mutable_state import RunTxn

VERSIONING_COLUMNS = ("deployment", "build_id", "versioning_behavior", "versioning")


async def write_run(rt: RunTxn) -> None:
    """Write every gathered change inside the caller's transaction (one round trip).

    A run read by :meth:`RunTxn.read_unlocked` is written by this one call alone
    (its own transaction), checked against what was read.
    """
    conn = rt.conn
    ns, wid = rt.namespace, rt.workflow_id
    e = rt.exe
    if rt.events:
        e["last_write_version"] = rt.ns.failover_version
    if rt.pause_changed and not rt.is_new:
        await conn.execute(Q["set_pause_info"], ns, wid, as_uuid(rt.run_id), e.get("pause_info"))
    key = f"{ns}/{wid}"
    after = AFTER_COMMIT.get()
    if after is not None and after.closed:
        after = None  # a task that outlived the operation it began in
    if after is not None:  # sent once the caller's operation committed
        if rt.events:
            after.append(("baton_history_v1", key))
        if rt.notify_close:
            after.append(("baton_closed_v1", key))
    args = write_args(rt, notify_key=None if after is not None else key)
    if rt.cache is not None and rt.expect_xmin is not None:
        # (a new run has a cache only when its start hands its first task to
        # a poller of this process: the task's completion then needs no read)
        await _write_remembered(rt, args)
    elif rt.cache is not None and not rt.is_new and rt.locked_ns_xmin is not None:
        await _write_locked_to_remember(rt, args)
    else:
        RunCache.forget_everywhere((ns, wid, rt.run_id))
        row = await conn.fetchrow(Q["write_run_v5"], *args, None, None, None)
        rt.task_view = row["view"]


def write_args(rt: RunTxn, *, notify_key: str | None = "") -> tuple[Any, ...]:
    """The first 57 arguments of ``baton_write_run_v5`` (all of ``_v4``'s) for
    ``rt``; ``notify_key`` None: the write sends no notification (the caller
    does, once it committed); the default: the run's own key."""
    ns, wid, rid = rt.namespace, rt.workflow_id, as_uuid(rt.run_id)
    e = rt.exe
    closing = e["status"] != "running"
    timers = [] if closing else rt.timers
    tasks = [] if closing else rt.tasks
    deps = rt.ns.deployments
    builds = [
        None
        if not deps
        else routing.workflow_task_tag(deps, e)
        if kind == "workflow"
        else routing.activity_task_tag(deps, e, queue)
        for kind, queue, _, _ in tasks
    ]
    return (
        ns,
        wid,
        rid,
        [ev[0] for ev in rt.events],
        [ev[1] for ev in rt.events],
        rt.now,
        rt.ns.failover_version,
        [ev[2] for ev in rt.events],
        [k for k, _ in rt.timer_deletes],
        [r for _, r in rt.timer_deletes],
        [t[0] for t in timers],
        [t[1] for t in timers],
        [t[2] for t in timers],
        [t[3] for t in timers],
        [t[0] for t in tasks],
        [t[1] for t in tasks],
        [t[2] for t in tasks],
        [t[3] for t in tasks],
        builds,
        e["status"],
        e["paused"],
        e["next_event_id"],
        e["last_write_version"],
        e["close_time"],
        as_uuid_or_none(e["continued_to_run_id"]),
        e["wt_scheduled_event_id"],
        e["wt_started_event_id"],
        e["wt_attempt"],
        e["wt_started_at"],
        e["wt_identity"],
        e["last_completed_wt_started"],
        e["result"],
        e["failure"],
        rt.notify_close or rt.is_new,
        f"{ns}/{wid}" if notify_key == "" else notify_key,
        rt.notify_close,
        rt.activity_deletes,
        closing,
        [] if closing else rt.activity_inserts,
        rt.is_new,
        bool(e.get("pending_updates")) and not closing,
        len(rt.ns.regions) > 1,
        rt.buffer_inserts,
        e["buffered_seq"],
        e["buffered_flushed_seq"],
        rt._buffer_delete_upto,
        [r for r, _ in rt.request_ids],
        [k for _, k in rt.request_ids],
        e["signal_count"],
        None if closing else e.get("sticky_queue"),
        None if closing else e.get("sticky_timeout_s"),
        # a new run's whole row, inserted by the same call
        _new_row(rt) if rt.is_new else None,
        {k: e.get(k) for k in VERSIONING_COLUMNS}
        if rt.versioning_changed and not rt.is_new
        else None,
        None if rt.expect_xmin is None else rt.expect_xmin[0],
        None if rt.expect_xmin is None else rt.expect_xmin[1],
        rt.fail_updates,
        int(e["last_completed_wt_started"]) + 1
        if rt.started_here and not closing and rt.wt_started
        else None,
    )


async def _write_locked_to_remember(rt: RunTxn, args: tuple[Any, ...]) -> None:
    """The write of a locked run, kept in ``after_commit`` (not remembered
    before its transaction commits: it may yet roll back)."""
    assert rt.locked_ns_xmin is not None
    RunCache.forget_everywhere((rt.namespace, rt.workflow_id, rt.run_id))
    row = await rt.conn.fetchrow(Q["write_run_v5"], *args, None, None, None)
    rt.task_view = row["view"]
    rt.after_commit = entry_after_write(
        rt, int(row["run_xmin"]), int(row["history_size"]), rt.locked_ns_xmin
    )


async def _write_remembered(rt: RunTxn, args: tuple[Any, ...]) -> None:
    """The unlocked write of a run this process may remember, then remember it."""
    assert rt.cache is not None
    key = (rt.namespace, rt.workflow_id, rt.run_id)
    act, act_xmin = rt.act_check or (None, None)
    sticky = None if rt.cached is None else rt.cached.exe.get("sticky_queue")
    e = rt.exe
    closing = e["status"] != "running"
    if closing:
        rt.cache.closing(key)
    try:
        row = await rt.conn.fetchrow(Q["write_run_v5"], *args, act, act_xmin, sticky)
    except asyncpg.SerializationError:
        if closing:
            rt.cache.closed(key, None)
        rt.cache.forget(key)
        if rt.cached is None:
            raise
        rt.cache.written(refused=True)
        raise StaleRun(f"run {rt.run_id} changed since this server wrote it") from None
    except BaseException:
        if closing:
            rt.cache.closed(key, None)
        rt.cache.forget(key)
        raise
    if rt.cached is not None:
        rt.cache.written(refused=False)
    rt.task_view = row["view"]
    if closing:
        rt.cache.closed(
            key,
            {
                "status": e["status"],
                "result": e["result"],
                "failure": e["failure"],
                "continued_to_run_id": e["continued_to_run_id"],
            },
        )
    entry = None
    if not rt.conn.is_in_transaction() and rt.expect_xmin is not None:
        entry = entry_after_write(
            rt, int(row["run_xmin"]), int(row["history_size"]), rt.expect_xmin[1]
        )
    if entry is None:
        rt.cache.forget(key)
    else:
        rt.cache.remember(key, entry)


def _new_row(rt: RunTxn) -> dict[str, Any]:
    row = {k: v for k, v in rt.exe.items() if k != "buffered_events"}
    if rt.expect_xmin is not None:
        row["expect_current_run_id"] = rt.expect_current_run  # (not a column)
    return row


def as_uuid(value: str | uuid.UUID) -> uuid.UUID:
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(value)
    except ValueError:
        raise WorkflowNotFound(f"run id {value!r} is not a UUID") from None


def as_uuid_or_none(value: str | uuid.UUID | None) -> uuid.UUID | None:
    return None if value is None else as_uuid(value)


async def run_not_found(
    conn: asyncpg.Connection, namespace: str, workflow_id: str, run_id: str | None
) -> NoReturn:
    """Raise WorkflowNotFound for a run (or namespace) that is not there."""
    ns = await get_namespace(conn, namespace)  # names a missing namespace first
    raise WorkflowNotFound(not_found_message(ns.name, workflow_id, run_id))


def not_found_message(namespace: str, workflow_id: str, run_id: str | None) -> str:
    """A missing workflow or run, and where to look for the ones there are."""
    what = f"run {run_id} of workflow" if run_id else "workflow"
    return (
        f"{what} {workflow_id!r} not found in namespace {namespace!r}: `baton workflow list` "
        "shows the workflows kept there (closed ones for the namespace's retention)"
    )


def event_to_wire(row: asyncpg.Record | dict[str, Any]) -> dict[str, Any]:
    return {
        "event_id": row["event_id"],
        "event_type": row["event_type"],
        "event_time": row["event_time"].isoformat(),
        "version": row["version"],
        "attributes": row["attributes"],
    }
