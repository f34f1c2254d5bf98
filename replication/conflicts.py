"""The conflict archive: a branch of history that lost to a higher failover version.

ARCHITECTURE, invariant 3: the losing branch is archived, never silently
dropped. A refused batch (:func:`archive_losing_batch`) and a local tail the
incoming history replaces (:func:`archive_local_tail`) go into
``replication_conflicts``; on the active region the signals, starts, cancels
and terminates they carried are re-applied here, each once (:func:`reapply_txn`),
so nothing a client was told succeeded is lost, and what is not re-applied
(updates, operators' requests) is listed with the reason. A region holding a
branch the active region refused drops it (:func:`converge_txn`).
``baton replication conflicts`` lists them.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from typing import Any

import asyncpg

from replication.reapply_reset import LostReset, lost_reset, redo_reset
from replication.sql import QUERIES as Q
from store.context import Store
from store.errors import InvalidArgument, StoreError
from store.mutable_state import event_to_wire
from store.namespaces import lock_namespace
from store.sql import QUERIES as SQ
from store.starts import start_workflow_txn
from store.visibility import validate_upsert
from store.workflows import cancel_workflow_txn, signal_workflow_txn, terminate_workflow_txn
from worker import wire
from worker.wire import EventType

log = logging.getLogger("baton.applier")

REAPPLIED_TYPES = {
    EventType.WORKFLOW_EXECUTION_SIGNALED.value,
    EventType.WORKFLOW_EXECUTION_STARTED.value,
    EventType.WORKFLOW_EXECUTION_CANCEL_REQUESTED.value,
    EventType.WORKFLOW_EXECUTION_TERMINATED.value,
}
#: Inputs a client was told succeeded that are not applied again (an update
#: ran its handler there; run again it could answer otherwise): the archive
#: lists them with the reason, so nobody takes them for applied.
SHOWN_TYPES = {
    EventType.WORKFLOW_EXECUTION_UPDATE_ACCEPTED.value: (
        "an update's handler ran in the lost region: send it again if it still applies"
    ),
    EventType.WORKFLOW_EXECUTION_UPDATE_COMPLETED.value: (
        "an update's handler ran in the lost region: send it again if it still applies"
    ),
}
#: An operator's requests (a workflow's own pause, or one its retry policy
#: made, is not one: the code or policy acts again here): listed, not applied
#: again (the run may have moved on here since), so they can be made again.
OPERATOR_TYPES = {
    EventType.WORKFLOW_EXECUTION_PAUSED.value: "a pause",
    EventType.WORKFLOW_EXECUTION_UNPAUSED.value: "an unpause",
    EventType.WORKFLOW_EXECUTION_OPTIONS_UPDATED.value: "a versioning override",
    EventType.ACTIVITY_TASK_PAUSED.value: "an activity pause",
    EventType.ACTIVITY_TASK_UNPAUSED.value: "an activity unpause",
    EventType.ACTIVITY_TASK_RESET.value: "an activity reset",
}


@dataclass(frozen=True)
class Losing:
    """A branch that lost: where it came from, its events, the versions involved."""

    namespace: str
    workflow_id: str
    run_id: uuid.UUID
    source_region: str
    events: list[dict[str, Any]]
    winning_version: int

    @property
    def losing_version(self) -> int:
        return max(int(e["version"]) for e in self.events)


async def archive_local_tail(
    store: Store,
    conn: asyncpg.Connection,
    namespace: str,
    workflow_id: str,
    run_id: uuid.UUID,
    from_event_id: int,
    winning_version: int,
) -> None:
    """Move this region's events ``from_event_id..`` of a run into the conflict archive."""
    rows = await conn.fetch(Q["local_events_from"], namespace, workflow_id, run_id, from_event_id)
    if not rows:
        return
    events = [event_to_wire(r) for r in rows]
    losing_version = max(int(e["version"]) for e in events)
    last_event_id = events[-1]["event_id"]
    # Inputs that waited behind the losing branch's started workflow task
    # were acknowledged too: they go into the archive (and are re-applied),
    # under the negated seq in place of an event id.
    for b in await conn.fetch(Q["take_buffered_of_run"], namespace, workflow_id, run_id):
        events.append(
            {
                "event_id": -int(b["seq"]),
                "event_type": b["event_type"],
                "event_time": b["created_at"].isoformat(),
                "version": losing_version,
                "attributes": b["attributes"],
                "buffered": True,
            }
        )
    cid = await conn.fetchval(
        Q["insert_conflict"],
        namespace,
        workflow_id,
        run_id,
        "local_tail",
        store.region,
        from_event_id,
        last_event_id,
        losing_version,
        winning_version,
        events,
    )
    await conn.execute(Q["delete_events_from"], namespace, workflow_id, run_id, from_event_id)
    unshipped = await conn.fetch(
        Q["delete_run_work"], namespace, workflow_id, run_id, from_event_id
    )
    if unshipped:
        # Part of the tail never left this region: ship the archive so the
        # winning region can re-apply its signals and starts.
        await conn.execute(
            Q["outbox_conflict"],
            namespace,
            workflow_id,
            run_id,
            from_event_id,
            last_event_id,
            losing_version,
            cid,
        )
    if from_event_id == 1:
        await conn.execute(Q["delete_execution"], namespace, workflow_id, run_id)
        await conn.execute(Q["delete_current"], namespace, workflow_id, run_id)
    # A run the losing branch continued into exists only here (the run and its
    # continuation ship together): it lost with the branch. Left alone it
    # would stay open, this region's current run of the workflow id, until
    # the winner happened to start a run of the id itself.
    for e in events:
        if e["event_type"] == EventType.WORKFLOW_EXECUTION_CONTINUED_AS_NEW.value:
            new_run_id = (e["attributes"] or {}).get("new_run_id")
            if new_run_id:
                await archive_local_tail(
                    store,
                    conn,
                    namespace,
                    workflow_id,
                    uuid.UUID(new_run_id),
                    1,
                    winning_version,
                )
    log.warning(
        "%s/%s run %s: events %s..%s (version %s) lost to version %s; archived as conflict %s",
        namespace,
        workflow_id,
        run_id,
        from_event_id,
        last_event_id,
        losing_version,
        winning_version,
        cid,
    )


async def archive_losing_batch(
    store: Store,
    conn: asyncpg.Connection,
    losing: Losing,
    *,
    reapply: bool,
    tell_source: bool = False,
) -> None:
    """Archive a refused batch; on the active region, re-apply its signals and starts.

    ``tell_source``: ship the archive's outline, so that the region the batch
    came from (and any standby holding the branch) archives its own copy of
    the branch and takes this region's history, even when nothing re-applied
    here writes to the run (a lost update or pause): left alone, it would
    keep the losing branch until the run's next write here.
    """
    cid = await conn.fetchval(
        Q["insert_conflict"],
        losing.namespace,
        losing.workflow_id,
        losing.run_id,
        "rejected_batch",
        losing.source_region,
        losing.events[0]["event_id"],
        losing.events[-1]["event_id"],
        losing.losing_version,
        losing.winning_version,
        losing.events,
    )
    if reapply:
        outcomes = await reapply_txn(store, conn, losing)
        await conn.execute(Q["set_conflict_reapplied"], cid, outcomes)
    if tell_source and int(losing.events[0]["event_id"]) >= 1:
        await conn.execute(
            Q["outbox_conflict"],
            losing.namespace,
            losing.workflow_id,
            losing.run_id,
            losing.events[0]["event_id"],
            losing.events[-1]["event_id"],
            losing.winning_version,
            cid,
        )


async def converge_txn(store: Store, conn: asyncpg.Connection, msg: dict[str, Any]) -> None:
    """The active region refused a branch of a run (``msg`` is its conflict):
    archive this region's copy of that branch, if it holds one, and take the
    active region's row of the run, as a newer branch arriving would make it."""
    conflict = msg["conflict"]
    first = int(conflict["first_event_id"])
    winning = int(conflict["winning_version"])
    ns, wid, rid = msg["namespace"], msg["workflow_id"], uuid.UUID(msg["run_id"])
    if first < 1 or await conn.fetchrow(Q["lock_local_execution"], ns, wid, rid) is None:
        return
    tail = await conn.fetch(Q["local_events_from"], ns, wid, rid, first)
    if not tail or any(int(e["version"]) >= winning for e in tail):
        return  # not the branch (or the winner's events came first)
    losing = conflict.get("losing_version")
    if losing is not None and any(int(e["version"]) > int(losing) for e in tail):
        # Events written after the refused branch's version: the history a
        # region promoted since (a forced failover's target, then a graceful
        # move on), which the active region holds too, not the refused branch.
        return
    await archive_local_tail(store, conn, ns, wid, rid, first, winning)
    execution = msg.get("execution")
    if first == 1 or not execution:
        return
    execution = {**execution, "next_event_id": min(int(execution["next_event_id"]), first)}
    await conn.execute(Q["upsert_execution_json"], execution)
    await conn.execute(Q["replace_current"], ns, wid, rid, execution["status"])


async def reapply_txn(
    store: Store, conn: asyncpg.Connection, losing: Losing
) -> list[dict[str, Any]]:
    """Re-apply the signals, starts, cancels and terminates of a losing branch
    here, each once; list its updates and operators' requests with the reason
    they are not."""
    outcomes: list[dict[str, Any]] = []
    signals = _signals_with_start(losing.events)
    # the run a cancel or terminate of the branch acts on here: its own, or
    # the one a re-applied start of it gave
    run_here: str | None = None
    reset = lost_reset(losing.events)
    for e in losing.events:
        outcome: dict[str, Any] = {"event_id": e["event_id"], "event_type": e["event_type"]}
        if reset is not None and int(e["event_id"]) in reset.covered:
            if e is reset.event:
                outcomes.append({**outcome, **await _reset_again(store, conn, losing, reset)})
                run_here = outcomes[-1].get("run_id") or run_here
            elif e["event_type"] in REAPPLIED_TYPES:
                # claimed, so that another archive of this branch (the lost
                # region's own) does not apply it alone
                claimed = await _claim(conn, losing, e)
                done = "with its reset" if claimed is not None else "already re-applied"
                outcomes.append({**outcome, "outcome": done})
            continue
        if e["event_type"] in SHOWN_TYPES:
            update_id = (e["attributes"] or {}).get("update_id")
            state = update_id and await conn.fetchval(
                Q["update_state_here"],
                losing.namespace,
                losing.workflow_id,
                losing.run_id,
                update_id,
            )
            if state:
                # the client, told to ask again, asked here with the same id
                outcomes.append({**outcome, "outcome": "already applied", "update_id": update_id})
                continue
            outcomes.append(
                {
                    **outcome,
                    "outcome": "not re-applied",
                    "reason": SHOWN_TYPES[e["event_type"]],
                    **({"update_id": update_id} if update_id else {}),
                }
            )
            continue
        if e["event_type"] in OPERATOR_TYPES and _by_operator(e["attributes"] or {}):
            outcomes.append(
                {
                    **outcome,
                    "outcome": "not re-applied",
                    "reason": f"{OPERATOR_TYPES[e['event_type']]} an operator made in the "
                    "lost region: make it again if it still applies",
                }
            )
            continue
        if e["event_type"] not in REAPPLIED_TYPES:
            continue
        claimed = await _claim(conn, losing, e)
        if claimed is None:
            outcomes.append({**outcome, "outcome": "already re-applied"})
            continue
        attrs = e["attributes"]
        if e["event_type"] == EventType.WORKFLOW_EXECUTION_STARTED.value and attrs.get(
            "continued_from_run_id"
        ):
            # The losing branch's workflow continued as new there: no client
            # asked for this run, and the winner's copy of the run before it
            # decides for itself (started again here, the workflow would run
            # twice once the winner's chain has closed).
            outcomes.append(
                {
                    **outcome,
                    "outcome": "not re-applied",
                    "reason": "a continue-as-new of the losing branch, not a client's start",
                }
            )
            continue
        if e["event_type"] == EventType.WORKFLOW_EXECUTION_SIGNALED.value and (
            attrs.get("with_start") in signals
        ):
            # the signal of a signal-with-start goes with its start (below)
            outcomes.append({**outcome, "outcome": "with its start"})
            continue
        request_id = attrs.get("request_id")
        if e["event_type"] == EventType.WORKFLOW_EXECUTION_TERMINATED.value and not request_id:
            # the server's own terminate, for another request (a start's
            # policy, a reset) or a limit: that request or limit acts again here
            outcomes.append(
                {
                    **outcome,
                    "outcome": "not re-applied",
                    "reason": "the server's own terminate, not a client's",
                }
            )
            continue
        if request_id:
            seen = await conn.fetchrow(
                SQ["request_seen"], losing.namespace, losing.workflow_id, request_id
            )
            if seen is not None:
                # the client retried it here already (or it replicated): once is enough
                outcomes.append(
                    {**outcome, "outcome": "already applied", "run_id": str(seen["run_id"])}
                )
                if e["event_type"] == EventType.WORKFLOW_EXECUTION_STARTED.value:
                    run_here = str(seen["run_id"])
                continue
        try:
            async with conn.transaction():
                if e["event_type"] in CLOSE_REQUEST_TYPES:
                    if run_here is None:
                        run_here = await _run_here(conn, losing)
                    run_id = await _close_again(store, conn, losing, e, run_here)
                elif e["event_type"] == EventType.WORKFLOW_EXECUTION_SIGNALED.value:
                    run_id = await signal_workflow_txn(
                        store,
                        conn,
                        losing.namespace,
                        losing.workflow_id,
                        wire.SignalRequest(
                            signal_name=attrs["signal_name"],
                            input=attrs.get("input") or [],
                            request_id=attrs.get("request_id"),
                            identity=attrs.get("identity") or "",
                        ),
                    )
                else:
                    # a signal-with-start again as one: its signal recorded
                    # once, and its request id a signal-with-start's
                    signal = signals.get(request_id) if request_id else None
                    run_id = await _start_again(
                        store,
                        conn,
                        losing.namespace,
                        _start_request(losing.workflow_id, attrs),
                        _signal(signal) if signal else None,
                    )
                    run_here = run_id
            outcomes.append({**outcome, "outcome": "re-applied", "run_id": run_id})
        except StoreError as exc:
            if exc.retryable:
                raise  # e.g. in handover: the whole batch is applied again later
            outcomes.append(
                {**outcome, "outcome": "refused", "code": exc.code.value, "message": str(exc)}
            )
    return outcomes


async def _claim(conn: asyncpg.Connection, losing: Losing, e: dict[str, Any]) -> Any:
    """Claim a losing branch's event for re-application, once: None when an
    earlier pass (or another archive of the same branch) claimed it."""
    return await conn.fetchval(
        Q["claim_reapply"],
        losing.namespace,
        losing.workflow_id,
        losing.run_id,
        e["event_id"],
        e["version"],
    )


async def _reset_again(
    store: Store, conn: asyncpg.Connection, losing: Losing, reset: LostReset
) -> dict[str, Any]:
    """The outcome of making a losing branch's reset again here, once."""
    e = reset.event
    claimed = await _claim(conn, losing, e)
    if claimed is None:
        return {"outcome": "already re-applied"}
    try:
        async with conn.transaction():
            run_id = await redo_reset(store, conn, losing.namespace, losing.workflow_id, reset)
    except StoreError as exc:
        if exc.retryable:
            raise
        return {"outcome": "refused", "code": exc.code.value, "message": str(exc)}
    return {"outcome": "re-applied", "run_id": run_id}


def _by_operator(attrs: dict[str, Any]) -> bool:
    return bool(attrs.get("source", "operator") == "operator")


CLOSE_REQUEST_TYPES = {
    EventType.WORKFLOW_EXECUTION_CANCEL_REQUESTED.value,
    EventType.WORKFLOW_EXECUTION_TERMINATED.value,
}


async def _run_here(conn: asyncpg.Connection, losing: Losing) -> str:
    """The run here that a cancel or terminate of the losing branch's run acts
    on: that run, or the one a start of it re-applied earlier gave."""
    again = await conn.fetchval(
        Q["reapplied_start_of_run"], losing.namespace, losing.workflow_id, losing.run_id
    )
    return str(again or losing.run_id)


async def _close_again(
    store: Store, conn: asyncpg.Connection, losing: Losing, e: dict[str, Any], run_id: str
) -> str:
    """Apply a losing branch's cancel request or terminate here again, to its
    run only: a later run of the workflow id is not what the client meant."""
    attrs = e["attributes"]
    fields: dict[str, Any] = {
        "run_id": run_id,
        "reason": attrs.get("reason") or "",
        "request_id": attrs.get("request_id"),
        "identity": attrs.get("identity") or "",
    }
    chain = _chain_of(losing)
    if (
        chain
        and chain != run_id
        and not await _held(conn, losing, run_id)
        and await _held(conn, losing, chain)
    ):
        # a run the losing branch continued into, which only it held, of a
        # chain held here: the client's handle acted on the chain, so the
        # request acts on the chain's current run here (as it would have,
        # sent here; one of another execution of the id refuses it)
        fields.update(run_id=None, first_run_id=chain)
    if e["event_type"] == EventType.WORKFLOW_EXECUTION_CANCEL_REQUESTED.value:
        return await cancel_workflow_txn(
            store, conn, losing.namespace, losing.workflow_id, wire.CancelRequest(**fields)
        )
    return await terminate_workflow_txn(
        store, conn, losing.namespace, losing.workflow_id, wire.TerminateRequest(**fields)
    )


async def _held(conn: asyncpg.Connection, losing: Losing, run_id: str) -> bool:
    """Whether this region holds run ``run_id`` of the losing branch's workflow."""
    return bool(
        await conn.fetchval(
            SQ["first_run_of"], losing.namespace, losing.workflow_id, uuid.UUID(run_id)
        )
    )


def _chain_of(losing: Losing) -> str | None:
    """The first run of the chain the losing branch's run belongs to, if its
    start is in the branch."""
    for e in losing.events:
        if e["event_type"] == EventType.WORKFLOW_EXECUTION_STARTED.value:
            first = (e["attributes"] or {}).get("first_run_id")
            return str(first) if first else None
    return None


async def _start_again(
    store: Store,
    conn: asyncpg.Connection,
    namespace: str,
    req: wire.StartWorkflowRequest,
    signal: tuple[str, list[wire.Payload]] | None,
) -> str:
    """Start a losing branch's run here with the search attributes it had
    that this region still takes; its run id.

    One removed here since the client's start (or registered again with
    another type) is left out: the run matters more than that attribute.
    """
    if req.search_attributes:
        ns = await lock_namespace(store, conn, namespace, exclusive=False)
        registered = ns.active_search_attributes()
        kept = {}
        for name, value in req.search_attributes.items():
            try:
                kept.update(validate_upsert(registered, {}, {name: value}))
            except InvalidArgument:
                log.warning(
                    "re-applied start of %s leaves out search attribute %s", req.workflow_id, name
                )
        req = req.model_copy(update={"search_attributes": kept})
    return (await start_workflow_txn(store, conn, namespace, req, signal)).run_id


def _signals_with_start(events: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The signals of the signal-with-starts that opened a run in ``events``,
    by request id (the signal's event keeps it, see store/starts.py)."""
    started = {
        e["attributes"].get("request_id")
        for e in events
        if e["event_type"] == EventType.WORKFLOW_EXECUTION_STARTED.value
    }
    return {
        e["attributes"]["with_start"]: e["attributes"]
        for e in events
        if e["event_type"] == EventType.WORKFLOW_EXECUTION_SIGNALED.value
        and e["attributes"].get("with_start") in started - {None}
    }


def _signal(attrs: dict[str, Any]) -> tuple[str, list[wire.Payload]]:
    payloads = [wire.Payload.model_validate(p) for p in attrs.get("input") or []]
    return str(attrs["signal_name"]), payloads


def _start_request(workflow_id: str, attrs: dict[str, Any]) -> wire.StartWorkflowRequest:
    return wire.StartWorkflowRequest(
        workflow_id=workflow_id,
        workflow_type=attrs["workflow_type"],
        task_queue=attrs["task_queue"],
        input=attrs.get("input") or [],
        request_id=attrs.get("request_id"),
        task_timeout_s=attrs.get("task_timeout_s") or 10.0,
        run_timeout_s=attrs.get("run_timeout_s"),
        execution_timeout_s=attrs.get("execution_timeout_s"),
        cron_schedule=attrs.get("cron_schedule"),
        # a client's delayed start (a cron start's wait is its schedule's)
        start_delay_s=None
        if attrs.get("cron_schedule") or attrs.get("initiator")
        else attrs.get("first_workflow_task_backoff_s"),
        retry_policy=attrs.get("retry_policy"),
        memo=attrs.get("memo") or {},
        identity=attrs.get("identity") or "",
        # the client's start had them: a run re-applied without them is one
        # no list finds by them, and one its versioning no longer pins
        search_attributes=attrs.get("search_attributes") or {},
        versioning_behavior=attrs.get("versioning_behavior"),
    )
