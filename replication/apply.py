"""Applying one replication message to this region's database.

Every function here runs inside the applier's transaction for a Kafka batch.

History follows the failover-version rule (ARCHITECTURE, invariant 3): of two
branches of one run, the one whose last event has the higher version wins.

* Events this region already holds under the same version are duplicates and
  are skipped.
* Where a batch and the local history diverge, the branch with the higher
  version wins. A losing local tail is archived in ``replication_conflicts``
  (:mod:`replication.conflicts`) and replaced; a losing batch is archived and
  refused.
* A region active for the namespace refuses any batch written under an older
  failover version than its own: it comes from a region deposed by a forced
  failover. The signals and starts in it are re-applied here, once each, so
  nothing a client was told succeeded is dropped.
* A standby that gets such a batch cannot tell by itself whether it lags
  behind history the active region holds too, or holds a deposed region's
  tail: it asks the active region (:class:`NeedConfirmation`), applies what
  that region holds under the same versions and archives the rest.
"""

from __future__ import annotations

import dataclasses
import logging
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg

from replication.conflicts import Losing, archive_local_tail, archive_losing_batch
from replication.sql import QUERIES as Q
from store.context import Store
from store.run_close import CLOSE_STATUS, close_outcome
from store.sql import QUERIES as SQ
from worker._payloads import merged_memo
from worker.wire import EventType

log = logging.getLogger("baton.applier")

_UPDATE_EVENTS = {
    EventType.WORKFLOW_EXECUTION_UPDATE_ACCEPTED.value,
    EventType.WORKFLOW_EXECUTION_UPDATE_COMPLETED.value,
}
_REQUEST_EVENTS = {
    EventType.WORKFLOW_EXECUTION_STARTED.value,
    EventType.WORKFLOW_EXECUTION_SIGNALED.value,
    EventType.WORKFLOW_EXECUTION_CANCEL_REQUESTED.value,
    EventType.WORKFLOW_EXECUTION_TERMINATED.value,
}

#: Columns an execution row shipped by an older server lacks.
_EXECUTION_DEFAULTS: dict[str, Any] = {
    "buffered_seq": 0,
    "buffered_flushed_seq": 0,
    "signal_count": 0,
    "history_size_bytes": 0,
}

#: The replicated columns of a namespace row: a message that changes none of
#: them is not written (the registry of search attributes and the worker
#: deployments count: a message may change only them).
NAMESPACE_FIELDS = (
    "regions",
    "active_region",
    "failover_version",
    "state",
    "retention_days",
    "description",
    "search_attributes",
    "deployments",
)


class NeedConfirmation(Exception):
    """A standby got a batch older than the namespace's failover version: only the
    active region can say whether it holds those events or whether they are the
    tail of a deposed region that lost."""

    def __init__(self, active_region: str, first: int, last: int):
        super().__init__(f"events {first}..{last} need confirming by {active_region}")
        self.active_region, self.first, self.last = active_region, first, last
        self.index = 0  # of the message in the applier's batch


class NeedRunCheck(Exception):
    """A new run arrives from the active region while this region's current run of
    the workflow id, written under an older version, has closed: only the active
    region can say whether it holds that run too or whether it is a run a deposed
    region started and never shipped."""

    def __init__(self, active_region: str, run_id: uuid.UUID):
        super().__init__(f"run {run_id} needs checking with {active_region}")
        self.active_region, self.run_id = active_region, run_id
        self.index = 0  # of the message in the applier's batch


class NeedContent(Exception):
    """The message left what it carries (buffered inputs, a conflict's signals) at
    its source region, to be read from there outside the transaction."""

    def __init__(self) -> None:
        super().__init__("message needs content from its source region")
        self.index = 0  # of the message in the applier's batch


class ReplicationGap(Exception):
    """A batch starts past the local history: earlier batches are missing."""

    def __init__(self, message: str, *, next_local: int):
        super().__init__(message)
        self.next_local = next_local


async def lock_namespaces_for_apply(
    conn: asyncpg.Connection, msgs: Sequence[dict[str, Any]]
) -> None:
    """Hold the namespaces of ``msgs`` for the caller's transaction, in name order:
    shared, or exclusively where a message carries the namespace's row newer
    than the one here (see the query)."""
    names = [msg.get("namespace") or "" for msg in msgs]
    stamps = [
        _namespace_stamp(msg.get("namespace_info"), msg.get("namespace") or "") for msg in msgs
    ]
    await conn.fetchval(
        Q["lock_namespaces_for_apply"],
        names,
        [s[0] if s else None for s in stamps],
        [s[1] if s else None for s in stamps],
    )


def _namespace_stamp(info: Any, name: str) -> tuple[int, datetime] | None:
    # a malformed row is refused later, by the rules that apply it
    if not isinstance(info, dict) or info.get("name") != name:
        return None
    try:
        return int(info["failover_version"]), datetime.fromisoformat(info["updated_at"])
    except (KeyError, TypeError, ValueError):
        return None


async def apply_namespace_txn(
    conn: asyncpg.Connection, region: str, info: dict[str, Any]
) -> tuple[str, int]:
    """Take a namespace row from another region if its failover version is not older.

    Returns the namespace's active region and failover version here, after.

    A region that was active and sees a higher version elsewhere was deposed
    (a forced failover while it was away): it becomes a standby and drops
    the pending work it held.
    """
    local = await conn.fetchrow(Q["local_namespace_full"], info["name"])
    if local is not None and (
        (local["failover_version"], local["updated_at"])
        >= (info["failover_version"], datetime.fromisoformat(info["updated_at"]))
        or all(local[k] == info[k] for k in NAMESPACE_FIELDS)
    ):
        # Not newer (an older version, or the same version changed earlier:
        # messages of several partitions arrive in any order), or what this
        # region has: no write, so partitions never queue on the namespace row.
        return str(local["active_region"]), int(local["failover_version"])
    await conn.execute(Q["replace_namespace"], info)
    if (
        local is not None
        and local["active_region"] == region
        and info["active_region"] != region
        and local["failover_version"] < info["failover_version"]
    ):
        log.warning(
            "namespace %s moved to %s under failover version %s while %s was active: "
            "%s is a standby now",
            info["name"],
            info["active_region"],
            info["failover_version"],
            region,
            region,
        )
        await conn.execute(Q["drop_pending_work"], info["name"])
    elif (
        local is not None
        and local["active_region"] != region
        and local["failover_version"] < info["failover_version"]
    ):
        # A standby learns of a move: the inputs it keeps waited in the old
        # active region, and the new one's history brings those it holds
        # (see apply_buffered_txn). (A deposed region keeps its own: it
        # ships them, for the active region to re-apply.)
        await conn.execute(Q["drop_waiting_inputs"], info["name"])
    return str(info["active_region"]), int(info["failover_version"])


async def apply_progress_txn(conn: asyncpg.Connection, region: str, msg: dict[str, Any]) -> None:
    """Keep what changed in a run without an event: the attempt, backoff and
    heartbeat details of its pending activities."""
    active, _ = await apply_namespace_txn(conn, region, msg["namespace_info"])
    if active == region or region not in msg["namespace_info"]["regions"]:
        return  # the active region holds these itself
    await _store_progress(conn, msg)


async def apply_buffered_txn(
    store: Store, conn: asyncpg.Connection, region: str, msg: dict[str, Any]
) -> None:
    """Keep the inputs waiting behind a started workflow task in the active region:
    a region that takes the namespace over writes them after timing that task out.
    The history batch that writes them there removes them here.

    Arriving where the namespace is active now, they waited in a region a
    forced failover deposed, and were acknowledged there: archived and
    re-applied once each, as the signals of its refused history batches are.
    """
    active, ns_version = await apply_namespace_txn(conn, region, msg["namespace_info"])
    if active == region and msg.get("source_region") not in (None, region):
        if msg.get("buffered_by_reference"):
            raise NeedContent()
        waiting = _waiting(msg, ns_version)
        # each such message carries every input waiting then: archive those
        # not re-applied from an earlier one
        done = set(
            await conn.fetchval(
                Q["reapplied_of"],
                waiting.namespace,
                waiting.workflow_id,
                waiting.run_id,
                [e["event_id"] for e in waiting.events],
                int(msg["version"]),
            )
            or []
        )
        fresh = [e for e in waiting.events if e["event_id"] not in done]
        if fresh:
            losing = dataclasses.replace(waiting, events=fresh)
            await archive_losing_batch(store, conn, losing, reapply=True)
        return
    if active == region or region not in msg["namespace_info"]["regions"]:
        return
    if int(msg["version"]) < ns_version:
        # They waited in a region the namespace has left: the active region
        # wrote them as events (a handover's promotion) or re-applies them
        # (a deposed region's), and its history brings them here. Kept, they
        # would sit under seqs the active region numbers its own inputs with.
        return
    if msg.get("buffered_by_reference"):
        raise NeedContent()
    rows = msg.get("buffered") or []
    if not rows:
        return  # written as events already: the history batch brings them
    ns, wid, rid = msg["namespace"], msg["workflow_id"], uuid.UUID(msg["run_id"])
    await conn.fetchval(Q["apply_buffered"], ns, wid, rid, rows)
    await conn.execute(Q["derive_request_ids"], ns, wid, rid, rows)


def _waiting(msg: dict[str, Any], winning_version: int) -> Losing:
    """A deposed region's waiting inputs as a losing branch (each under its
    negated seq in place of an event id, as an archived local tail keeps them)."""
    version = int(msg["version"])
    events = [
        {
            "event_id": -int(b["seq"]),
            "event_type": b["event_type"],
            "event_time": msg.get("source_time"),
            "version": version,
            "attributes": b["attributes"],
            "buffered": True,
        }
        for b in msg["buffered"]
    ]
    return Losing(
        msg["namespace"],
        msg["workflow_id"],
        uuid.UUID(msg["run_id"]),
        msg["source_region"],
        events,
        winning_version,
    )


async def _store_progress(conn: asyncpg.Connection, msg: dict[str, Any]) -> None:
    rid = uuid.UUID(msg["run_id"])
    execution = msg.get("execution")
    acts = msg.get("activities") or []
    if not (execution and execution["status"] == "running" and acts):
        await conn.execute(
            SQ["delete_activity_progress_of_run"], msg["namespace"], msg["workflow_id"], rid
        )
        return
    dropped = set(msg.get("details_dropped") or ())
    await conn.execute(
        Q["store_activity_progress"],
        msg["namespace"],
        msg["workflow_id"],
        rid,
        [{**a, "details_dropped": a["scheduled_event_id"] in dropped} for a in acts],
    )


async def apply_history_txn(store: Store, conn: asyncpg.Connection, msg: dict[str, Any]) -> None:
    """Apply one history batch (see the module docstring for the rules)."""
    region = store.region
    ns, wid, rid = msg["namespace"], msg["workflow_id"], uuid.UUID(msg["run_id"])
    active_region, ns_version = await apply_namespace_txn(conn, region, msg["namespace_info"])
    if region not in msg["namespace_info"]["regions"]:
        return  # not (or no longer) a region of this namespace
    active_here = active_region == region
    incoming = list(msg["events"])
    if not incoming:
        return
    first, last = msg["first_event_id"], msg["last_event_id"]
    batch_version = int(incoming[-1]["version"])
    run = await conn.fetchrow(Q["lock_local_execution"], ns, wid, rid)
    next_local, local_last = (
        (1, None) if run is None else (run["next_event_id"], run["last_version"])
    )
    # Skip what this region holds already (same event ids, same versions).
    local: dict[int, int] = {}
    if first < next_local:
        local = {
            r["event_id"]: r["version"]
            for r in await conn.fetch(
                Q["local_event_versions"], ns, wid, rid, first, min(last, next_local - 1)
            )
        }
    while incoming and incoming[0]["event_id"] < next_local:
        if local.get(incoming[0]["event_id"]) != incoming[0]["version"]:
            break
        incoming.pop(0)
    if not incoming:
        return
    start = int(incoming[0]["event_id"])
    losing = Losing(ns, wid, rid, msg["source_region"], incoming, ns_version)
    if active_here and batch_version < ns_version:
        await archive_losing_batch(store, conn, losing, reapply=True, tell_source=True)
        return
    if local_last is not None and batch_version < local_last:
        # the batch continues or branches off a history that moved on under a newer version
        losing = Losing(ns, wid, rid, msg["source_region"], incoming, int(local_last))
        await archive_losing_batch(store, conn, losing, reapply=False)
        return
    if not active_here and batch_version < ns_version:
        # Written before the namespace last failed over: either history the
        # active region holds too (this region lags behind), or the tail of a
        # region deposed by a forced failover, which the active region refused.
        held = msg.get("held_by_active")
        if held is None:
            raise NeedConfirmation(active_region, start, int(incoming[-1]["event_id"]))
        kept = _held_prefix(incoming, held)
        if len(kept) < len(incoming):
            lost = Losing(ns, wid, rid, msg["source_region"], incoming[len(kept) :], ns_version)
            await archive_losing_batch(store, conn, lost, reapply=False)
            if not kept:
                return
            incoming, last = kept, int(kept[-1]["event_id"])
            batch_version = int(kept[-1]["version"])
    if run is None and first == 1:
        await _archive_lost_run(store, conn, msg, batch_version, active_region)
    if start > next_local:
        raise ReplicationGap(
            f"{ns}/{wid} run {rid}: batch starts at event {start} but local history ends at "
            f"{next_local - 1}",
            next_local=next_local,
        )
    if start < next_local:
        # this region's tail lost to the batch's newer branch
        await archive_local_tail(store, conn, ns, wid, rid, start, batch_version)
    await conn.execute(Q["apply_events"], ns, wid, rid, incoming)
    # What the events say besides history: updates in flight, request ids.
    kinds = {e["event_type"] for e in incoming}
    if kinds & _UPDATE_EVENTS:
        await conn.execute(Q["derive_updates"], ns, wid, rid, incoming)
    if kinds & _REQUEST_EVENTS:
        await conn.execute(Q["derive_request_ids"], ns, wid, rid, incoming)
    execution = dict(msg["execution"])
    if int(execution["next_event_id"]) > last + 1 and run is not None:
        # Only a batch written before outbox rows carried their execution
        # row: its row was read when shipped and is ahead of it. Keep the row
        # of the last snapshot that matched its history, and only count the
        # new events.
        await conn.execute(Q["advance_execution"], ns, wid, rid, last + 1, batch_version)
        await conn.execute(Q["notify_applied"], f"{ns}/{wid}", False)
        return
    # A new run's first batch has no older row to keep; it never claims
    # events it does not hold.
    execution["next_event_id"] = min(int(execution["next_event_id"]), last + 1)
    for key in _EXECUTION_DEFAULTS.keys() - execution.keys():
        execution[key] = _EXECUTION_DEFAULTS[key]  # a row shipped by an older server
    if msg.get("execution_fields_from_history"):
        await _fill_from_history(conn, ns, wid, rid, execution)
    await conn.execute(Q["upsert_execution_json"], execution)
    flushed = int(execution.get("buffered_flushed_seq") or 0)
    if flushed > (0 if run is None else int(run["buffered_flushed_seq"])):
        # inputs this region kept while they waited are events now
        await conn.execute(Q["drop_flushed_buffered"], ns, wid, rid, flushed)
    if execution["status"] == "running" or execution.get("continued_to_run_id") is None:
        await conn.execute(Q["replace_current"], ns, wid, rid, execution["status"])
    if not active_here:
        await _store_progress(conn, msg)
    await conn.execute(Q["notify_applied"], f"{ns}/{wid}", execution["status"] != "running")


async def _fill_from_history(
    conn: asyncpg.Connection, ns: str, wid: str, rid: uuid.UUID, execution: dict[str, Any]
) -> None:
    """Memo, result and failure of a row shipped without them (too large to travel
    inline), read from the run's history here: its first event with the memo
    upserts after it, and its closing event."""
    row = await conn.fetchrow(Q["run_fields_from_history"], ns, wid, rid)
    if row is None:
        return
    memo = dict((row["started"] or {}).get("memo") or {})
    for changes in row["memo_changes"] or ():  # the workflow's own upserts
        memo = merged_memo(memo, changes or {})
    execution["memo"] = memo
    if row["last_type"] in CLOSE_STATUS:
        _, execution["result"], execution["failure"] = close_outcome(
            row["last_type"], row["last_attributes"] or {}
        )


def _held_prefix(events: list[dict[str, Any]], held: list[list[int]]) -> list[dict[str, Any]]:
    """The leading ``events`` the active region holds under the same versions."""
    versions = {int(event_id): int(version) for event_id, version in held}
    kept = []
    for e in events:
        if versions.get(int(e["event_id"])) != int(e["version"]):
            break
        kept.append(e)
    return kept


async def _archive_lost_run(
    store: Store, conn: asyncpg.Connection, msg: dict[str, Any], version: int, active: str
) -> None:
    """A new run arrives while this region's current run of the workflow id was
    written under an older version. If that run is still running, or closed but
    the active region does not hold it, a deposed region started it and never
    shipped it: it lost (and its start and signals are re-applied from the archive).
    A closed run the active region holds too is history both keep."""
    cur = await conn.fetchrow(Q["current_run"], msg["namespace"], msg["workflow_id"])
    if cur is None or str(cur["run_id"]) == msg["run_id"] or cur["last_write_version"] >= version:
        return
    if cur["status"] != "running":
        if active == store.region:
            return
        held = (msg.get("active_holds_runs") or {}).get(str(cur["run_id"]))
        if held is None:
            raise NeedRunCheck(active, cur["run_id"])
        if held:
            return
    await archive_local_tail(
        store, conn, msg["namespace"], msg["workflow_id"], cur["run_id"], 1, version
    )
