"""Starting a workflow: a new run, or the id's running run signalled or ended.

The common start is a read without locks and one checked write (no
transaction of its own). Where this process read the namespace before (and
heard of no namespace change since), it skips even the read: it writes as if
the id had no run and the request id were new, against the namespace row it
read then, and only if that write is refused does it read and write again. A
start that must act on the id's running run
(terminate-if-running, signal-with-start) or the error it gets runs under the
workflow id's lock. A new run's first workflow task goes to a long-poll
waiting in this process when there is one (:mod:`store.matching`).
"""

from __future__ import annotations

import re
from typing import Any

import asyncpg

from store.chain import add_execution_timer, capped_run_timeout, chain_of, start_policy
from store.context import Store
from store.cron import check_cron, check_start, first_backoff
from store.errors import InvalidArgument, StaleRun, StoreError, WorkflowAlreadyStarted
from store.matching import Match
from store.mutable_state import RunTxn, utcnow
from store.namespaces import Namespace, lock_namespace
from store.new_run import new_execution
from store.run_lock import check_request_kind, refuse_system_workflow
from store.sql import QUERIES as Q
from store.task_views import build_workflow_task, started_attributes
from store.visibility.attributes import validate_upsert
from store.workflow_retry import add_run_timer, end_backoff_now, hold_first_task
from store.workflows import _add_signal, closes_of, terminate_txn, wait_outcome
from versioning import routing
from worker import wire
from worker.wire import EventType, WorkflowIdConflictPolicy, WorkflowIdReusePolicy

SYSTEM_TYPE_PREFIX = "baton."
#: Unicode's control characters (category Cc): C0, DEL and C1.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")


def check_workflow_id(workflow_id: str) -> None:
    """Refuse a new workflow id holding a control character (a line break, a tab...).

    Such an id is easy to start and hard to act on: it travels in URLs, log
    lines, list queries and CLI arguments, each of which may cut or mangle it.
    Runs started before this check stay reachable (and closable) by their id.
    """
    found = _CONTROL.search(workflow_id)
    if found is not None:
        raise InvalidArgument(
            f"workflow id {workflow_id!r} holds a control character "
            f"(U+{ord(found.group()):04X} at index {found.start()}): choose an id of "
            "printable characters, without line breaks or tabs",
            field="workflow_id",
        )


async def start_workflow(
    store: Store,
    namespace: str,
    req: wire.StartWorkflowRequest,
    *,
    signal: tuple[str, list[wire.Payload]] | None = None,
    system: bool = False,
) -> wire.StartWorkflowResponse:
    """Start a run; with ``signal``, signal the running one instead if there is one.

    Workflow types ``baton.*`` are the server's own (batch jobs): only the
    server starts them (``system``).
    """
    check_workflow_id(req.workflow_id)
    check_start(req.cron_schedule, req.start_delay_s)  # (before anything is read or written)
    if req.workflow_type.startswith(SYSTEM_TYPE_PREFIX) and not system:
        raise InvalidArgument(
            f"workflow types starting with {SYSTEM_TYPE_PREFIX!r} are reserved for Baton's "
            "system workflows: name yours otherwise"
        )
    match = Match(store.matcher)
    blind = True  # a write without a read first, tried once

    async def unlocked(conn: asyncpg.Connection) -> wire.StartWorkflowResponse | None:
        nonlocal blind
        if blind:
            blind = False
            started = await _start_blind(store, conn, namespace, req, match)
            if started is not None:
                return started
        return await _start_unlocked(store, conn, namespace, req, match)

    async def locked(conn: asyncpg.Connection) -> wire.StartWorkflowResponse:
        return await start_workflow_txn(store, conn, namespace, req, signal, match=match)

    try:
        if signal is None:
            # the common start: one read and one checked write, no transaction
            started = await store.checked_write(unlocked, locked)
        else:
            started = await store.txn(locked)
    except BaseException:
        match.settle(committed=False)
        raise
    match.settle(committed=True)  # the first workflow task, to a poller of this process
    return started


async def start_and_wait(
    store: Store, namespace: str, req: wire.StartWorkflowRequest
) -> tuple[dict[str, Any], int]:
    """A start as its route answers it: the body and the HTTP status (201 for
    a new run). With ``wait_result_s`` the body holds the run's outcome,
    waited for as a result long-poll waits."""
    if req.wait_result_s is None:
        res = await start_workflow(store, namespace, req)
        return res.model_dump(), 201 if res.started else 200
    # Subscribed before the start: a run this start opens is known to be open,
    # and its outcome is waited for without reading it first.
    async with closes_of(store, namespace, req.workflow_id) as ev:
        since = store.run_cache.close_seq
        res = await start_workflow(store, namespace, req)
        body = res.model_dump()
        body["result"] = await wait_outcome(
            store,
            namespace,
            req.workflow_id,
            res.run_id,
            req.wait_result_s,
            ev,
            opened_since=since if res.started else None,
        )
    return body, 201 if res.started else 200


async def start_workflow_txn(
    store: Store,
    conn: asyncpg.Connection,
    namespace: str,
    req: wire.StartWorkflowRequest,
    signal: tuple[str, list[wire.Payload]] | None = None,
    *,
    match: Match | None = None,
) -> wire.StartWorkflowResponse:
    """:func:`start_workflow` inside the caller's transaction.

    With ``match``, the first workflow task goes to an idle poller of this
    process if there is one (``match.task``, handed over after the commit).
    """
    if match is not None:
        match.task = None  # (a retried transaction starts afresh)
    ns = await lock_namespace(store, conn, namespace, exclusive=False)
    attributes = validate_upsert(ns.active_search_attributes(), {}, req.search_attributes)
    checks = await conn.fetchrow(Q["start_checks"], namespace, req.workflow_id, req.request_id)
    if req.request_id and checks["request_run_id"] is not None:
        used = await _check_start_retry(conn, namespace, req, with_signal=signal is not None)
        return wire.StartWorkflowResponse(
            workflow_id=req.workflow_id,
            run_id=str(checks["request_run_id"]),
            started=False,
            request_id_found=used != "signal",
        )
    cur = None
    if checks["current_run_id"] is not None:
        cur = {"run_id": checks["current_run_id"], "status": checks["current_status"]}
    if cur is not None and cur["status"] == "running":
        conflict = req.id_conflict_policy
        if signal is None and conflict == WorkflowIdConflictPolicy.USE_EXISTING:
            # Temporal's USE_EXISTING: the running run answers the start
            return wire.StartWorkflowResponse(
                workflow_id=req.workflow_id, run_id=str(cur["run_id"]), started=False
            )
        if (
            signal is None
            and req.id_reuse_policy != WorkflowIdReusePolicy.TERMINATE_IF_RUNNING
            and conflict != WorkflowIdConflictPolicy.TERMINATE_EXISTING
        ):
            raise WorkflowAlreadyStarted(
                f"workflow {req.workflow_id!r} is already running as run {cur['run_id']}: "
                "signal it, wait for it, or start with id_conflict_policy=use_existing "
                "(or terminate_existing)",
                run_id=str(cur["run_id"]),
            )
        rt = await RunTxn.lock(
            conn,
            namespace,
            req.workflow_id,
            str(cur["run_id"]),
            region=store.region,
            region_urls=store.region_urls,
        )
        if not rt.running:
            # It closed while this waited for its lock (a continue-as-new, a
            # reset, a completion): the checks read it running. Read again (a
            # new statement sees that commit) rather than signal or terminate
            # a closed run behind its closing event.
            return await start_workflow_txn(store, conn, namespace, req, signal, match=match)
        if not req.workflow_type.startswith(SYSTEM_TYPE_PREFIX):
            # a client's signal-with-start or terminate-if-running start
            refuse_system_workflow(req.workflow_id, str(rt.exe["workflow_type"]))
        if signal is not None:
            _add_signal(store, rt, signal[0], signal[1], req.identity, req.request_id)
            end_backoff_now(rt)
            await rt.write_txn()
            return wire.StartWorkflowResponse(
                workflow_id=req.workflow_id, run_id=str(cur["run_id"]), started=False
            )
        policy = (
            "id_conflict_policy terminate_existing"
            if conflict == WorkflowIdConflictPolicy.TERMINATE_EXISTING
            else "policy terminate_if_running"
        )
        terminate_txn(rt, f"terminated by a start with {policy}", req.identity)
        await rt.write_txn()
    elif cur is not None:
        _check_reuse(req, cur)
    return await _write_new_run(store, conn, ns, req, attributes, signal, match)


async def _start_unlocked(
    store: Store,
    conn: asyncpg.Connection,
    namespace: str,
    req: wire.StartWorkflowRequest,
    match: Match,
) -> wire.StartWorkflowResponse | None:
    """:func:`start_workflow_txn` as a read without locks and one checked write
    (None: the start needs the id's lock, as one that ends a running run does)."""
    epoch = store.notifier.namespace_epoch  # (before the read)
    match.task = None
    row = await conn.fetchrow(Q["start_read"], namespace, req.workflow_id, req.request_id)
    if row is None:
        store.start_namespaces.pop(namespace, None)
        return None  # the locked start names the missing namespace
    ns = Namespace.from_row(row)
    store.start_namespaces[namespace] = (epoch, ns, int(row["x_ns_xmin"]))
    if row["current_status"] == "running":
        return None  # the locked start decides
    ns.require_writable(store.region, store.region_urls)
    attributes = validate_upsert(ns.active_search_attributes(), {}, req.search_attributes)
    if req.request_id and row["request_run_id"] is not None:
        used = await _check_start_retry(conn, namespace, req)
        return wire.StartWorkflowResponse(
            workflow_id=req.workflow_id,
            run_id=str(row["request_run_id"]),
            started=False,
            request_id_found=used != "signal",
        )
    current = row["current_run_id"]
    if current is not None:
        _check_reuse(req, {"run_id": current, "status": row["current_status"]})
    # the write is refused if the namespace, the id's current run or the
    # request id changed since this read (baton_write_run_v5)
    expect = (int(row["x_ns_xmin"]), None if current is None else str(current))
    return await _write_new_run(store, conn, ns, req, attributes, None, match, expect=expect)


async def _start_blind(
    store: Store,
    conn: asyncpg.Connection,
    namespace: str,
    req: wire.StartWorkflowRequest,
    match: Match,
) -> wire.StartWorkflowResponse | None:
    """:func:`_start_unlocked` without its read: the namespace as this process
    last read it, the id without a run, the request id unseen. The write is
    checked against all three, as after the read; None when there is nothing
    to go on, and a :class:`StaleRun` (read, then try again) when the write or
    a check made on the remembered namespace refuses."""
    seen = store.start_namespaces.get(namespace)
    if seen is None or seen[0] != store.notifier.namespace_epoch:
        return None
    _, ns, ns_xmin = seen
    match.task = None
    try:
        ns.require_writable(store.region, store.region_urls)
        attributes = validate_upsert(ns.active_search_attributes(), {}, req.search_attributes)
    except StoreError:
        store.start_namespaces.pop(namespace, None)
        raise StaleRun(f"namespace {namespace!r} read again for a start") from None
    try:
        return await _write_new_run(
            store, conn, ns, req, attributes, None, match, expect=(ns_xmin, None)
        )
    except asyncpg.SerializationError:
        # the id has a run, the request id was seen, or the namespace changed
        raise StaleRun(f"workflow {req.workflow_id!r}: start read and tried again") from None


async def _check_start_retry(
    conn: asyncpg.Connection,
    namespace: str,
    req: wire.StartWorkflowRequest,
    *,
    with_signal: bool = False,
) -> str | None:
    """Refuse a start or signal-with-start whose request id another kind of
    request used: a signal's id would answer as a start that happened, and a
    plain start's as a signal-with-start's retry, its signal lost. Returns the
    kind of request that used it (``signal``: a signal-with-start that
    signaled the run running).

    A signal-with-start records its id as a start's when it opened the run
    (its signal event keeps the id, see ``_add_signal``), as a signal's when
    it signaled the run running.
    """
    if not req.request_id:
        return None
    seen = await conn.fetchrow(Q["request_seen"], namespace, req.workflow_id, req.request_id)
    if seen is None:
        return None
    used: str = seen["kind"]
    if used == "start":
        args = (namespace, req.workflow_id, seen["run_id"], req.request_id)
        if await conn.fetchval(Q["signal_with_start_seen"], *args):
            used = "signal-with-start"
    if with_signal:
        check_request_kind(req.workflow_id, req.request_id, used, "signal-with-start", ("signal",))
    else:
        check_request_kind(req.workflow_id, req.request_id, used, "start")
    return used


def _check_reuse(req: wire.StartWorkflowRequest, cur: dict[str, Any]) -> None:
    """Raise if the id reuse policy forbids a new run beside the closed ``cur``."""
    policy = req.id_reuse_policy
    if policy == WorkflowIdReusePolicy.REJECT_DUPLICATE or (
        policy == WorkflowIdReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY and cur["status"] == "completed"
    ):
        raise WorkflowAlreadyStarted(
            f"workflow {req.workflow_id!r} has a closed run ({cur['status']}) and the "
            f"id reuse policy {policy.value} forbids another",
            run_id=str(cur["run_id"]),
        )


async def _write_new_run(
    store: Store,
    conn: asyncpg.Connection,
    ns: Namespace,
    req: wire.StartWorkflowRequest,
    attributes: dict[str, Any],
    signal: tuple[str, list[wire.Payload]] | None,
    match: Match | None,
    *,
    expect: tuple[int, str | None] | None = None,
) -> wire.StartWorkflowResponse:
    """Build a start's new run and write it (checked against ``expect``: the
    namespace row's xmin and the id's current run, when read unlocked)."""
    now = utcnow()
    run_timeout_s = capped_run_timeout(req.run_timeout_s, req.execution_timeout_s)
    if run_timeout_s != req.run_timeout_s:
        req = req.model_copy(update={"run_timeout_s": run_timeout_s})
    run = new_execution(
        conn,
        ns,
        workflow_id=req.workflow_id,
        workflow_type=req.workflow_type,
        task_queue=req.task_queue,
        request_id=req.request_id,
        task_timeout_s=req.task_timeout_s,
        run_timeout_s=req.run_timeout_s,
        memo=req.memo,
        search_attributes=attributes,
        now=now,
        chain=chain_of(
            req.execution_timeout_s,
            now,
            start_policy(req.retry_policy),
            check_cron(req.cron_schedule),
        ),
    )
    routing.start(run.exe, ns.deployments, req.versioning_behavior)
    # a delayed start's first workflow task waits, a cron start's until the next time
    backoff = first_backoff(run, req.start_delay_s)
    run.add_event(EventType.WORKFLOW_EXECUTION_STARTED, {**started_attributes(req, run), **backoff})
    run.seen_request(req.request_id, "start")
    if backoff:
        # held before a signal-with-start's signal is added, which then waits
        # with it (as Temporal's), where it scheduled the task at once
        hold_first_task(run, backoff["first_workflow_task_backoff_s"])
    if signal is not None:
        # the start's request id covers its signal: record it once
        _add_signal(store, run, signal[0], signal[1], req.identity, None, with_start=req.request_id)
    poller = None
    if match is not None and not ns.deployments and not backoff:
        # (a versioned run's task goes to a poller of its version: by the table)
        poller = match.reserve(f"{ns.name}/workflow/{req.task_queue}")
    if (
        not backoff
        and run.schedule_workflow_task(dispatch=poller is None) is not None
        and poller is not None
    ):
        run.start_workflow_task(poller.identity, store.config.suggest_continue_as_new_events)
        run.cache = store.run_cache  # an unlocked write keeps the run for the task's completion
    add_run_timer(run, backoff.get("first_workflow_task_backoff_s", 0.0))
    add_execution_timer(run)
    if expect is not None:
        run.expect_xmin = (0, expect[0])
        run.expect_current_run = expect[1]
    await run.write_txn()
    if match is not None and run.started_here:
        match.task = await build_workflow_task(conn, run)
    return wire.StartWorkflowResponse(workflow_id=req.workflow_id, run_id=run.run_id, started=True)
