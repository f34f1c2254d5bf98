"""Locking the run a request acts on, once per request id."""

from __future__ import annotations

import uuid

import asyncpg

from store.context import Store
from store.errors import InvalidArgument, WorkflowNotRunning
from store.mutable_state import RunTxn
from store.sql import QUERIES as Q


async def lock_run(
    store: Store, conn: asyncpg.Connection, namespace: str, workflow_id: str, run_id: str | None
) -> RunTxn:
    """Lock a run (the current one when ``run_id`` is None) of this region for a write.

    ``run_id`` comes from a request here: one that is not a UUID is a bad
    argument (as describe and result answer), not a run that is missing.
    """
    if run_id is not None:
        try:
            uuid.UUID(run_id)
        except ValueError:
            raise InvalidArgument(f"run id {run_id!r} is not a UUID") from None
    return await RunTxn.lock(
        conn, namespace, workflow_id, run_id, region=store.region, region_urls=store.region_urls
    )


async def lock_for_request(
    store: Store,
    conn: asyncpg.Connection,
    namespace: str,
    workflow_id: str,
    run_id: str | None,
    request_id: str | None,
) -> RunTxn | str:
    """Lock the run a request acts on (signal, cancel, terminate, pause, override),
    or return the run id a
    request with the same id acted on already (a retried or re-applied request
    answers as the first did, even after the run closed).

    Checked with the run locked, so two copies of one request serialise and
    the second finds the first's id (recorded in the same write as its event).
    """
    rt = await lock_run(store, conn, namespace, workflow_id, run_id)
    if request_id:
        seen = await conn.fetchrow(Q["request_seen"], namespace, workflow_id, request_id)
        if seen is not None:
            return str(seen["run_id"])
    if not rt.running:
        raise not_running(rt)
    return rt


def not_running(rt: RunTxn) -> WorkflowNotRunning:
    return WorkflowNotRunning(
        f"workflow {rt.workflow_id!r} run {rt.run_id} is {rt.exe['status']}; only running "
        "workflows take signals, cancels, updates, terminates, pauses and overrides"
    )
