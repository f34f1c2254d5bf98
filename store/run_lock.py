"""Locking the run a request acts on, once per request id."""

from __future__ import annotations

import uuid
from collections.abc import Collection

import asyncpg

from store.context import Store
from store.errors import (
    InvalidArgument,
    NamespaceNotActive,
    RequestIdReused,
    StoreError,
    WorkflowNotFound,
    WorkflowNotRunning,
)
from store.mutable_state import RunTxn
from store.namespaces import get_namespace
from store.sql import QUERIES as Q

# The commands that change a system workflow, by its type: its own run is
# Baton's state of a schedule or batch job, which a signal, terminate, reset
# or pause by workflow id would corrupt or destroy without a trace.
_SYSTEM_COMMANDS = {
    "baton.schedule": ("schedule", "schedule/", "update, pause, unpause, trigger or delete"),
    "baton.batch": ("batch job", "batch/", "stop"),
}


async def lock_run(
    store: Store,
    conn: asyncpg.Connection,
    namespace: str,
    workflow_id: str,
    run_id: str | None,
    *,
    system: bool = False,
) -> RunTxn:
    """Lock a run (the current one when ``run_id`` is None) of this region for a write.

    ``run_id`` comes from a request here: one that is not a UUID is a bad
    argument (as describe and result answer), not a run that is missing.
    A system workflow (a schedule's or a batch job's) is refused unless
    ``system``: the server's own schedule and batch commands act on it.
    """
    if run_id is not None:
        try:
            uuid.UUID(run_id)
        except ValueError:
            raise InvalidArgument(
                f"run id {run_id!r} is not a UUID: pass a run id as `baton workflow list` "
                "or `describe` shows it, or leave it out for the workflow's current run"
            ) from None
    try:
        rt = await RunTxn.lock(
            conn, namespace, workflow_id, run_id, region=store.region, region_urls=store.region_urls
        )
    except WorkflowNotFound as exc:
        await send_to_active_region(store, conn, namespace, exc)
        raise
    if not system:
        refuse_system_workflow(workflow_id, str(rt.exe["workflow_type"]))
    return rt


def refuse_system_workflow(workflow_id: str, workflow_type: str) -> None:
    """Refuse a client's write to a system workflow, naming the command that does it."""
    if not workflow_type.startswith("baton."):
        return
    what, prefix, verbs = _SYSTEM_COMMANDS.get(workflow_type, ("", "", ""))
    if what:
        name = workflow_id.removeprefix(prefix)
        raise InvalidArgument(
            f"workflow {workflow_id!r} is Baton's own run of {what} {name!r}: change it with "
            f"`baton {what.split()[0]}` ({verbs}), not as a workflow"
        )
    raise InvalidArgument(
        f"workflow {workflow_id!r} is one of Baton's system workflows ({workflow_type}): "
        "it takes no signals, cancels, terminates, resets, pauses or updates from clients"
    )


async def send_to_active_region(
    store: Store, conn: asyncpg.Connection, namespace: str, missing: StoreError
) -> None:
    """Raise ``NamespaceNotActive`` naming the active region when this region is
    a standby of ``namespace`` (the caller re-raises ``missing`` otherwise).

    A standby lacks a run its active region started and has not shipped yet
    (replication lag, a broker down): that is no answer to a write, nor to a
    describe, history or result (``missing`` is the not-found error; a
    schedule's or batch job's too), and the SDK follows this error to the
    active region.
    """
    ns = await get_namespace(conn, namespace)
    if ns.active_region == store.region:
        return
    url = store.region_urls.get(ns.active_region)
    raise NamespaceNotActive(
        f"{missing.message}: {store.region} is a standby of namespace {namespace!r} and may not "
        f"have the run yet; ask {ns.active_region}, where it is active, at "
        f"{url or ns.active_region}",
        active_region=ns.active_region,
        active_url=url,
    ) from None


#: How each kind of request (``request_ids.kind``) reads in a message.
_KIND_NAMES = {"versioning": "versioning override"}


def check_request_kind(
    workflow_id: str, request_id: str, used: str, kind: str, also: Collection[str] = ()
) -> None:
    """Refuse a request whose id an earlier request of another kind used.

    Request ids are kept once per workflow id, whatever the request: a
    terminate that reused a signal's id would find it, do nothing and answer
    as if it had ended the run. Only the same kind of request (or one of
    ``also``) is a retry.
    """
    if used == kind or used in also:
        return
    was, now = (_KIND_NAMES.get(k, k.replace("-", " ")) for k in (used, kind))
    raise RequestIdReused(
        f"request id {request_id!r} was used by a {was} of workflow {workflow_id!r}, so this "
        f"{now} is not its retry: give the {now} a request id of its own",
        request_id=request_id,
        used_by=used,
    )


async def lock_for_request(
    store: Store,
    conn: asyncpg.Connection,
    namespace: str,
    workflow_id: str,
    run_id: str | None,
    request_id: str | None,
    *,
    kind: str,
    system: bool = False,
    first_run_id: str | None = None,
) -> RunTxn | str:
    """Lock the run a request of ``kind`` acts on (signal, cancel, terminate,
    pause, override), or return the run id a
    request with the same id acted on already (a retried or re-applied request
    answers as the first did, even after the run closed). An id an earlier
    request of another kind used is refused (:func:`check_request_kind`).

    Checked with the run locked, so two copies of one request serialise and
    the second finds the first's id (recorded in the same write as its event).
    ``first_run_id`` names a run of the chain the request is meant for.
    """
    rt = await lock_run(store, conn, namespace, workflow_id, run_id, system=system)
    if request_id:
        seen = await conn.fetchrow(Q["request_seen"], namespace, workflow_id, request_id)
        if seen is not None:
            check_request_kind(workflow_id, request_id, seen["kind"], kind)
            return str(seen["run_id"])
    if first_run_id is not None:
        await check_chain(rt, first_run_id)
    if not rt.running:
        raise not_running(rt)
    return rt


async def check_chain(rt: RunTxn, first_run_id: str) -> None:
    """Refuse a request meant for the chain of runs ``first_run_id`` belongs to
    when ``rt`` (the id's current run) is of another execution of the id, one
    started anew since, as Temporal's ``first_execution_run_id`` does: a handle
    kept from an earlier start must not cancel or end an unrelated run."""
    chain = str(rt.exe["first_run_id"])
    try:
        given = uuid.UUID(first_run_id)
    except ValueError:
        raise InvalidArgument(
            f"first_run_id {first_run_id!r} is not a UUID: pass the run id a start returned"
        ) from None
    if str(given) == chain:
        return
    first = await rt.conn.fetchval(Q["first_run_of"], rt.namespace, rt.workflow_id, given)
    if first is None or str(first) == chain:
        # A later run of the same chain (a start that found it running), or a
        # run this region does not hold: a start lost in a forced failover and
        # started again here (under a new run id), or one past its retention.
        # Nothing tells it is of another execution: act as the id says.
        return
    raise WorkflowNotFound(
        f"workflow {rt.workflow_id!r} has no running chain of run {first_run_id}: its "
        f"current run {rt.run_id} is of an execution started since; act on it through a "
        "handle from get_workflow_handle (or `baton workflow`) by the workflow id"
    )


async def keep_request_id(rt: RunTxn, request_id: str | None, kind: str) -> None:
    """Record ``request_id`` of a request that found ``rt`` as it asked (a pause of
    a paused run, a cancel of a run asked to cancel) and so writes nothing else:
    its retry then answers as it did, whatever changed meanwhile."""
    if request_id:
        await rt.conn.execute(
            Q["record_request"],
            rt.namespace,
            rt.workflow_id,
            request_id,
            uuid.UUID(rt.run_id),
            kind,
        )


async def run_acted_on(
    store: Store, conn: asyncpg.Connection, namespace: str, workflow_id: str, run_id: str
) -> RunTxn:
    """The run a retried request acted on (:func:`lock_for_request`'s run id),
    read as it is now so the retry answers as the first did; it may have
    closed since, and nothing is written to it."""
    return await RunTxn.lock(
        conn,
        namespace,
        workflow_id,
        run_id,
        region=store.region,
        region_urls=store.region_urls,
        write=False,
    )


def not_running(rt: RunTxn) -> WorkflowNotRunning:
    return WorkflowNotRunning(
        f"workflow {rt.workflow_id!r} run {rt.run_id} is {rt.exe['status']}; only running "
        "workflows take signals, cancels, updates, terminates, pauses and overrides"
    )
