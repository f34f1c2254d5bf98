"""Start, list, describe and stop batch jobs.

A job is the workflow ``batch/<job id>`` of type ``baton.batch``; its
description is folded from its own history (the job's input, each page's
result, a continue-as-new's carried state, the close), so describing a job
needs no worker and reads the same in every region.
"""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

import asyncpg

from store import starts, workflows
from store.batch import operations
from store.batch.job import TASK_QUEUE, WORKFLOW_TYPE, initial_state, merge
from store.context import Store
from store.errors import (
    BatchAlreadyExists,
    BatchNotFound,
    InvalidQuery,
    WorkflowAlreadyStarted,
    WorkflowNotFound,
    WorkflowNotRunning,
)
from store.namespaces import get_namespace
from store.run_lock import send_to_active_region
from store.sql import QUERIES as Q
from store.visibility import listing
from store.visibility.query import compile_query
from worker import wire
from worker.codec import BINARY_ENCRYPTED
from worker.converter import PayloadConverter
from worker.wire import EventType

_CONVERTER = PayloadConverter()
PREFIX = "batch/"


def job_workflow_id(job_id: str) -> str:
    return f"{PREFIX}{job_id}"


async def start_batch(store: Store, namespace: str, req: wire.StartBatchRequest) -> dict[str, Any]:
    """Check the job (query, operation, rate) and start it; a retried start starts nothing."""
    op = operations.get(req.operation.kind)
    params = op.checked(dict(req.operation.params))
    async with store.pool.acquire() as conn:
        ns = await get_namespace(conn, namespace)
    if op.check_in is not None:
        op.check_in(ns, params)
    # INVALID_QUERY before anything
    order = compile_query(req.query, ns.active_search_attributes()).order
    if (order.attribute, order.descending) != ("StartTime", True):
        # Newest first, a run the job itself starts (a reset's new run, a
        # continue-as-new) sorts before the job's cursor; in any other order it
        # could sort after it and be acted on again, and again.
        raise InvalidQuery(
            f"invalid query at position {order.position}: a batch job walks runs newest first "
            f"(ORDER BY StartTime DESC); leave out ORDER BY {order.attribute}"
            + (" DESC" if order.descending else " ASC"),
            position=order.position,
            token=order.attribute,
        )
    # A start retried with its request id (its answer lost) is the same job:
    # with no job id given, the id comes from the request id, not the dice.
    job_id = req.job_id or (
        hashlib.sha256(req.request_id.encode()).hexdigest()[:12]
        if req.request_id
        else uuid.uuid4().hex[:12]
    )
    # what the walk will meet, as Temporal's total_operation_count: the runs
    # that match as the job starts (a run that starts later is not walked)
    total = (await listing.count_runs(store, namespace, req.query))["count"]
    job = {
        "job_id": job_id,
        "namespace": namespace,
        "query": req.query,
        "operation": {"kind": op.kind, "params": params},
        "total": total,
        "rps": req.rps,
        "reason": req.reason,
    }
    start = wire.StartWorkflowRequest(
        workflow_id=job_workflow_id(job_id),
        workflow_type=WORKFLOW_TYPE,
        task_queue=TASK_QUEUE,
        input=[_CONVERTER.to_payload(job)],
        request_id=req.request_id or f"batch-start:{job_id}",
        id_reuse_policy=wire.WorkflowIdReusePolicy.REJECT_DUPLICATE,
        task_timeout_s=10.0,
        memo={
            "batch": {
                "query": req.query,
                "operation": op.describe(params),
                "rps": req.rps,
                "reason": req.reason,
            }
        },
        identity=req.identity,
    )
    try:
        res = await starts.start_workflow(store, namespace, start, system=True)
    except WorkflowAlreadyStarted:
        # Under another request id (a client of its own ids, the CLI after the
        # SDK) the start finds the job's workflow there: the same job again is
        # still the same job, as the README promises, not a workflow error.
        first_run = await _require_same_job(store, namespace, job)
        if first_run is None:
            raise
        return {"job_id": job_id, "run_id": first_run, "started": False}
    if not res.started:
        # the same job again is the same job; another job under its id is refused
        await _require_same_job(store, namespace, job)
    return {"job_id": job_id, "run_id": res.run_id, "started": res.started}


async def _require_same_job(store: Store, namespace: str, job: dict[str, Any]) -> str | None:
    """Raise unless the job stored under ``job``'s id acts as ``job`` does (query,
    operation); the job's first run id, None if there is no such job."""
    wid = job_workflow_id(job["job_id"])
    async with store.pool.acquire() as conn:
        row = await conn.fetchrow(Q["get_current_execution"], namespace, wid)
        if row is None:
            return None
        # every run of the job starts with it (a continue-as-new carries it on)
        first = await conn.fetch(Q["history_from"], namespace, wid, row["run_id"], 1, 1)
    if row["workflow_type"] != WORKFLOW_TYPE:
        raise BatchAlreadyExists(
            f"batch job id {job['job_id']!r} is taken: the workflow {wid!r} is not a batch "
            "job; start this one under another --job-id",
            job_id=job["job_id"],
        )
    if not first:
        return None
    stored = _decode((first[0]["attributes"].get("input") or [None])[0]) or {}
    mine = {k: job[k] for k in ("query", "operation")}
    theirs = {k: stored.get(k) for k in ("query", "operation")}
    if _comparable(mine) != _comparable(theirs):
        raise BatchAlreadyExists(
            f"batch job {job['job_id']!r} exists already with query {theirs['query']!r} and "
            f"operation {theirs['operation']!r}: `baton batch describe {job['job_id']}` shows "
            "it; start this one under another --job-id",
            job_id=job["job_id"],
        )
    return str(row["first_run_id"])


def _comparable(value: Any) -> Any:
    """``value`` with each encrypted payload reduced to its encoding.

    A client that encrypts encodes the same input differently every time (a
    fresh nonce, perhaps a newer key), and the store cannot read it: the same
    job started again must not look like another job. Plain payloads are
    compared as they are.
    """
    if isinstance(value, dict):
        meta = value.get("metadata")
        if isinstance(meta, dict) and meta.get("encoding") == BINARY_ENCRYPTED:
            return BINARY_ENCRYPTED
        return {k: _comparable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_comparable(v) for v in value]
    return value


def _decode(payload: Any) -> Any:
    if payload is None:
        return None
    return _CONVERTER.from_payload(wire.Payload.model_validate(payload))


def fold(events: list[dict[str, Any]]) -> dict[str, Any]:
    """A job's description from its current run's history."""
    job: dict[str, Any] = {}
    state = initial_state()
    status = "running"
    for e in events:
        kind, attrs = e["event_type"], e["attributes"]
        if kind == EventType.WORKFLOW_EXECUTION_STARTED.value:
            job = _decode((attrs.get("input") or [None])[0]) or {}
            state = dict(job.pop("state", None) or initial_state())
        elif kind == EventType.ACTIVITY_TASK_COMPLETED.value:
            page = _decode(attrs.get("result"))
            if isinstance(page, dict) and "cursor" in page:
                state = merge(state, page)
        elif kind == EventType.WORKFLOW_EXECUTION_COMPLETED.value:
            result = _decode(attrs.get("result")) or {}
            status = result.get("state", "completed")
            state["stop_reason"] = result.get("stop_reason")
            state["error"] = result.get("error")
        elif kind == EventType.WORKFLOW_EXECUTION_TERMINATED.value:
            status = "terminated"
        elif kind == EventType.WORKFLOW_EXECUTION_FAILED.value:
            status = "failed"
    return {
        "job_id": job.get("job_id"),
        "query": job.get("query"),
        "operation": job.get("operation"),
        "rps": job.get("rps"),
        "reason": job.get("reason"),
        "state": status,
        # runs matched as the job started (a job of an earlier release: None)
        "total": job.get("total"),
        **{k: state.get(k) for k in ("done", "skipped", "failed", "pages", "stop_reason", "error")},
        "failures": state.get("failures", []),
    }


async def _job_run(conn: asyncpg.Connection, namespace: str, job_id: str) -> Any:
    """The current run of job ``job_id``; a workflow of the user's own under
    its id is no job (never described or signalled as one)."""
    await get_namespace(conn, namespace)
    row = await conn.fetchrow(Q["get_current_execution"], namespace, job_workflow_id(job_id))
    if row is None or row["workflow_type"] != WORKFLOW_TYPE:
        raise BatchNotFound(
            f"no batch job {job_id!r} in namespace {namespace!r}: `baton batch list` shows them"
        )
    return row


async def describe_batch(store: Store, namespace: str, job_id: str) -> dict[str, Any]:
    wid = job_workflow_id(job_id)
    async with store.pool.acquire() as conn:
        try:
            row = await _job_run(conn, namespace, job_id)
        except BatchNotFound as exc:
            # a standby the start has not reached yet sends the caller on
            await send_to_active_region(store, conn, namespace, exc)
            raise
        events = await conn.fetch(Q["history_from"], namespace, wid, row["run_id"], 1, 1_000_000)
        # the job started with the first run of its continue-as-new chain
        first = row
        if row["first_run_id"] != row["run_id"]:
            first = await conn.fetchrow(Q["get_execution"], namespace, wid, row["first_run_id"])
    out = fold([dict(e) for e in events])
    started = (first or row)["start_time"]
    out.update(
        {
            "job_id": job_id,
            "start_time": started.isoformat(),
            "close_time": row["close_time"].isoformat() if row["close_time"] else None,
        }
    )
    return out


async def list_batches(
    store: Store, namespace: str, *, page_size: int = 100, page_token: str | None = None
) -> dict[str, Any]:
    # A job that continued as new has a row per run: its last run says how
    # it stands, and an earlier one (perhaps on another page) must not list
    # it a second time, as running.
    rows, token = await listing.list_runs(
        store,
        namespace,
        f"WorkflowType = '{WORKFLOW_TYPE}' AND WorkflowId STARTS_WITH '{PREFIX}' "
        "AND ExecutionStatus != 'ContinuedAsNew'",
        page_size=page_size,
        page_token=page_token,
        include_system=True,
    )
    ended = await _ended_states(store, namespace, [r for r in rows if r["status"] == "completed"])
    started = await _first_starts(store, namespace, rows)
    operations = await _operations(store, namespace, rows)
    jobs: dict[str, dict[str, Any]] = {}
    for r in rows:
        job_id = r["workflow_id"][len(PREFIX) :]
        memo = (r["memo"] or {}).get("batch", {})
        jobs[job_id] = {
            "job_id": job_id,
            "state": "running"
            if r["status"] == "running"
            else ended.get(r["workflow_id"], r["status"]),
            # the object describe gives; the one line the table shows beside it
            "operation": operations.get(r["workflow_id"]),
            "summary": memo.get("operation"),
            "query": memo.get("query"),
            "rps": memo.get("rps"),
            "start_time": started.get(r["workflow_id"], r["start_time"]).isoformat(),
            "close_time": r["close_time"].isoformat() if r["close_time"] else None,
        }
    return {"jobs": list(jobs.values()), "next_page_token": token}


async def _operations(store: Store, namespace: str, rows: list[Any]) -> dict[str, Any]:
    """The operations of the jobs of ``rows``, as describe gives them: id -> {kind, params}."""
    runs = [(r["workflow_id"], r["run_id"]) for r in rows]
    starts = await _by_runs(store, "batch_start_inputs", namespace, runs)
    return {
        s["workflow_id"]: (_decode((s["attributes"].get("input") or [None])[0]) or {}).get(
            "operation"
        )
        for s in starts
    }


async def _first_starts(store: Store, namespace: str, rows: list[Any]) -> dict[str, Any]:
    """When the jobs of ``rows`` that continued as new started, as describe says: id -> time."""
    later = [
        (r["workflow_id"], r["first_run_id"]) for r in rows if r["first_run_id"] != r["run_id"]
    ]
    firsts = await _by_runs(store, "first_run_start_times", namespace, later)
    return {f["workflow_id"]: f["start_time"] for f in firsts}


async def _ended_states(store: Store, namespace: str, rows: list[Any]) -> dict[str, str]:
    """How the completed jobs of ``rows`` ended, as describe folds it: workflow id -> state."""
    runs = [(r["workflow_id"], r["run_id"]) for r in rows]
    closes = await _by_runs(store, "batch_close_results", namespace, runs)
    return {c["workflow_id"]: fold([_completed(c["attributes"])])["state"] for c in closes}


async def _by_runs(
    store: Store, query: str, namespace: str, runs: list[tuple[str, Any]]
) -> list[Any]:
    """The rows ``query`` gives for (workflow id, run id) pairs, passed side by side."""
    if not runs:
        return []
    async with store.pool.acquire() as conn:
        return list(
            await conn.fetch(Q[query], namespace, [w for w, _ in runs], [r for _, r in runs])
        )


def _completed(attributes: dict[str, Any]) -> dict[str, Any]:
    return {"event_type": EventType.WORKFLOW_EXECUTION_COMPLETED.value, "attributes": attributes}


async def stop_batch(store: Store, namespace: str, job_id: str, reason: str) -> dict[str, Any]:
    """Ask the job to stop after the page it is on; stopping a closed job changes nothing."""
    wid = job_workflow_id(job_id)
    async with store.pool.acquire() as conn:
        await _job_run(conn, namespace, job_id)
    req = wire.SignalRequest(
        signal_name="stop",
        input=[_CONVERTER.to_payload(reason or "stopped by an operator")],
        # a stop applied twice stops once; a stop after the end says so
        request_id=f"batch-stop:{job_id}:{uuid.uuid4().hex}",
        identity="baton",
    )
    try:
        await workflows.signal_workflow(store, namespace, wid, req, system=True)
    except WorkflowNotFound:
        raise BatchNotFound(f"no batch job {job_id!r} in namespace {namespace!r}") from None
    except WorkflowNotRunning:
        # as describe and list say it ended: completed, stopped or failed
        ended = await describe_batch(store, namespace, job_id)
        return {"job_id": job_id, "stop_requested": False, "state": ended["state"]}
    return {"job_id": job_id, "stop_requested": True, "state": "running"}
