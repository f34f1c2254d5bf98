"""The applier's plain apply (baton_apply_plain_v1) on a real region database.

A partition's plain messages are applied in one round trip; a message any
failover-version rule concerns is left untouched for the rules. The same
messages applied both ways must leave exactly the same rows.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import pytest

from replication.apply import (
    NAMESPACE_FIELDS,
    apply_history_txn,
    apply_namespace_txn,
    apply_progress_txn,
)
from replication.sql import QUERIES as Q
from tests.conftest import Region
from tests.integration.test_apply_rules import NOW, batch, event, ns_info

pytestmark = pytest.mark.integration

#: What a standby holds of a namespace's runs (times the database sets left out).
SNAPSHOT = {
    "history_events": "SELECT * FROM history_events ORDER BY run_id, event_id",
    "executions": "SELECT * FROM executions ORDER BY run_id",
    "current_executions": "SELECT * FROM current_executions ORDER BY workflow_id",
    "request_ids": "SELECT namespace, workflow_id, request_id, run_id, kind FROM request_ids "
    "ORDER BY request_id",
    "activity_progress": "SELECT namespace, workflow_id, run_id, scheduled_event_id, attempt, "
    "state, heartbeat_details, last_failure, scheduled_time FROM activity_progress "
    "ORDER BY run_id, scheduled_event_id",
    "buffered_events": "SELECT namespace, workflow_id, run_id, seq, event_type, attributes "
    "FROM buffered_events ORDER BY run_id, seq",
    "replication_conflicts": "SELECT kind, first_event_id, last_event_id "
    "FROM replication_conflicts ORDER BY id",
}


class _Rollback(Exception):
    pass


async def snapshot(conn: asyncpg.Connection) -> dict[str, list[dict[str, Any]]]:
    return {t: [dict(r) for r in await conn.fetch(q)] for t, q in SNAPSHOT.items()}


async def in_rolled_back_txn(
    region: Region, body: Callable[[asyncpg.Connection], Awaitable[Any]]
) -> tuple[Any, dict[str, list[dict[str, Any]]]]:
    """What ``body`` returns and the rows it leaves, its writes rolled back after."""
    out: list[Any] = []
    async with region.store.pool.acquire() as conn:
        try:
            async with conn.transaction():
                out.append(await body(conn))
                out.append(await snapshot(conn))
                raise _Rollback
        except _Rollback:
            pass
    return out[0], out[1]


def execution(msg: dict[str, Any], **changes: Any) -> dict[str, Any]:
    exe = {
        **msg["execution"],
        "buffered_seq": 0,
        "buffered_flushed_seq": 0,
        "signal_count": 0,
        "history_size_bytes": 100 * msg["last_event_id"],
    }
    return {**exe, **changes}


def activity(seq: int, attempt: int, details: Any) -> dict[str, Any]:
    return {
        "scheduled_event_id": seq,
        "attempt": attempt,
        "state": "started",
        "heartbeat_details": details,
        "last_failure": None,
        "scheduled_time": NOW.isoformat(),
    }


def progress(region: str, rid: uuid.UUID, exe: dict[str, Any], acts: list[Any]) -> Any:
    return {
        "type": "progress_v1",
        "source_region": "elsewhere",
        "namespace": "rules",
        "workflow_id": "wf",
        "run_id": str(rid),
        "first_event_id": 0,
        "last_event_id": 0,
        "version": 1,
        "source_time": NOW.isoformat(),
        "events": [],
        "execution": exe,
        "activities": acts,
        "namespace_info": ns_info(region),
    }


def plain_sequence(region: str) -> list[dict[str, Any]]:
    """Two runs of one workflow id as the active region ships them: a start and
    a signal with request ids, activities with heartbeat details (one message
    leaving them behind for size), buffered inputs flushed, a close that
    continues as new, and the new run."""
    r1, r2 = uuid.uuid4(), uuid.uuid4()
    start = {**event(1, 1, "WorkflowExecutionStarted"), "attributes": {"request_id": "req-1"}}
    b1 = batch(region, r1, [start, event(2, 1, "WorkflowTaskScheduled")])
    b1["execution"] = execution(b1)
    b1["activities"] = []
    b2 = batch(region, r1, [event(i, 1) for i in (3, 4, 5)])
    b2["execution"] = execution(b2, buffered_seq=2)
    b2["activities"] = [activity(5, 1, None)]
    p1 = progress(region, r1, b2["execution"], [activity(5, 2, {"beat": 1})])
    p2 = {
        **progress(region, r1, b2["execution"], [activity(5, 3, None)]),
        "details_dropped": [5],
    }
    signal = {**event(6, 1, "WorkflowExecutionSignaled"), "attributes": {"request_id": "sig-1"}}
    b3 = batch(region, r1, [signal, event(7, 1, "ActivityTaskCompleted")])
    b3["execution"] = execution(b3, buffered_seq=2, buffered_flushed_seq=2, signal_count=1)
    b3["activities"] = []
    close = event(8, 1, "WorkflowExecutionContinuedAsNew")
    b4 = batch(region, r1, [close])
    b4["execution"] = execution(
        b4,
        status="continued_as_new",
        close_time=NOW.isoformat(),
        continued_to_run_id=str(r2),
        buffered_seq=2,
        buffered_flushed_seq=2,
    )
    n1 = batch(region, r2, [event(1, 1, "WorkflowExecutionStarted")])
    n1["run_id"] = str(r2)
    n1["execution"] = execution(n1, run_id=str(r2), continued_from_run_id=str(r1))
    return [b1, b2, p1, p2, b3, b4, n1]


async def with_namespace(region: Region, conn: asyncpg.Connection, version: int = 1) -> None:
    await apply_namespace_txn(conn, region.name, ns_info(region.name, version))


async def buffered_inputs(conn: asyncpg.Connection, rid: str) -> None:
    await conn.execute(
        "INSERT INTO buffered_events (namespace, workflow_id, run_id, seq, event_type, "
        "attributes) VALUES ('rules', 'wf', $1, 1, 'WorkflowExecutionSignaled', '{}'), "
        "('rules', 'wf', $1, 2, 'WorkflowExecutionSignaled', '{}')",
        uuid.UUID(rid),
    )


async def by_rules(region: Region, conn: asyncpg.Connection, msgs: list[Any]) -> None:
    for msg in msgs:
        if msg["type"] == "progress_v1":
            await apply_progress_txn(conn, region.name, msg)
        else:
            await apply_history_txn(region.store, conn, msg)


async def plain(conn: asyncpg.Connection, region: Region, msgs: list[Any]) -> int:
    return int(await conn.fetchval(Q["apply_plain"], region.name, msgs))


async def test_plain_messages_leave_the_rows_the_rules_leave(region: Region) -> None:
    msgs = plain_sequence(region.name)

    async def rules(conn: asyncpg.Connection) -> None:
        await with_namespace(region, conn)
        await by_rules(region, conn, msgs[:2])
        await buffered_inputs(conn, msgs[0]["run_id"])
        await by_rules(region, conn, msgs[2:])

    async def fast(conn: asyncpg.Connection) -> list[int]:
        await with_namespace(region, conn)
        first = await plain(conn, region, msgs[:2])
        await buffered_inputs(conn, msgs[0]["run_id"])
        return [first, await plain(conn, region, msgs[2:])]

    _, expected = await in_rolled_back_txn(region, rules)
    applied, got = await in_rolled_back_txn(region, fast)
    assert applied == [2, len(msgs) - 2]  # every message applied in the plain way
    assert got == expected
    # and the sequence did what it says (so the comparison is not of nothing)
    assert len(got["history_events"]) == 9
    assert {r["request_id"] for r in got["request_ids"]} == {"req-1", "sig-1"}
    assert [str(r["run_id"]) for r in got["current_executions"]] == [msgs[-1]["run_id"]]
    assert got["buffered_events"] == [] and got["activity_progress"] == []


async def test_details_left_behind_for_size_are_kept(region: Region) -> None:
    msgs = plain_sequence(region.name)

    async def fast(conn: asyncpg.Connection) -> list[Any]:
        await with_namespace(region, conn)
        assert await plain(conn, region, msgs[:4]) == 4
        return [dict(r) for r in await conn.fetch("SELECT * FROM activity_progress")]

    rows, _ = await in_rolled_back_txn(region, fast)
    # the last message (attempt 3) left the details of attempt 2's heartbeat behind
    assert [(r["attempt"], r["heartbeat_details"]) for r in rows] == [(3, {"beat": 1})]


def _cases(region: str) -> dict[str, Callable[[list[Any]], list[Any]]]:
    """Each: the plain sequence's first two messages applied, then what comes."""

    def again(m: list[Any]) -> list[Any]:
        return [m[1], m[2]]

    def gap(m: list[Any]) -> list[Any]:
        late = batch(region, uuid.UUID(m[0]["run_id"]), [event(9, 1)])
        return [late, m[2]]

    def by_reference(m: list[Any]) -> list[Any]:
        return [{**m[4], "events_by_reference": True}]

    def old_server(m: list[Any]) -> list[Any]:
        exe = {k: v for k, v in m[4]["execution"].items() if k != "signal_count"}
        return [{**m[4], "execution": exe}]

    def row_ahead(m: list[Any]) -> list[Any]:
        return [{**m[4], "execution": {**m[4]["execution"], "next_event_id": 20}}]

    def update(m: list[Any]) -> list[Any]:
        e = event(6, 1, "WorkflowExecutionUpdateAccepted")
        e["attributes"] = {"update_id": "u", "name": "n", "input": []}
        return [{**m[4], "events": [e, m[4]["events"][1]]}]

    def newer_namespace(m: list[Any]) -> list[Any]:
        info = {**m[4]["namespace_info"], "failover_version": 2}
        return [{**m[4], "namespace_info": info}]

    def not_ours(m: list[Any]) -> list[Any]:
        info = {**m[4]["namespace_info"], "regions": ["elsewhere", "third"]}
        return [{**m[4], "namespace_info": info}]

    def namespace_message(m: list[Any]) -> list[Any]:
        return [{**m[4], "type": "namespace_v1"}]

    def lost_run(m: list[Any]) -> list[Any]:
        # a new run of the id under a newer version than the current run's
        rid = uuid.uuid4()
        b = batch(region, rid, [event(1, 5, "WorkflowExecutionStarted")])
        b["execution"] = execution(b, run_id=str(rid))
        return [b]

    return {
        "a duplicate": again,
        "a gap": gap,
        "events by reference": by_reference,
        "a row of an older server": old_server,
        "a row ahead of its events": row_ahead,
        "an update": update,
        "a newer namespace row": newer_namespace,
        "a namespace this region is not in": not_ours,
        "another message type": namespace_message,
        "a run that may have lost": lost_run,
    }


@pytest.mark.parametrize("case", list(_cases("region-a")))
async def test_what_a_rule_concerns_is_left_untouched(region: Region, case: str) -> None:
    msgs = plain_sequence(region.name)
    what = _cases(region.name)[case](msgs)

    async def fast(conn: asyncpg.Connection) -> tuple[int, bool]:
        await with_namespace(region, conn)
        assert await plain(conn, region, msgs[:2]) == 2
        before = await snapshot(conn)
        applied = await plain(conn, region, what)
        return applied, before == await snapshot(conn)

    (applied, untouched), _ = await in_rolled_back_txn(region, fast)
    assert (applied, untouched) == (0, True)


async def test_a_namespace_active_here_is_left_to_the_rules(region: Region) -> None:
    msgs = plain_sequence(region.name)

    async def fast(conn: asyncpg.Connection) -> int:
        await apply_namespace_txn(
            conn, region.name, {**ns_info(region.name), "active_region": region.name}
        )
        return await plain(conn, region, msgs)

    applied, rows = await in_rolled_back_txn(region, fast)
    assert applied == 0 and rows["executions"] == []


async def test_a_batch_older_than_the_namespace_is_left_to_the_rules(region: Region) -> None:
    msgs = plain_sequence(region.name)

    async def fast(conn: asyncpg.Connection) -> int:
        await with_namespace(region, conn, version=2)
        return await plain(conn, region, msgs)

    applied, rows = await in_rolled_back_txn(region, fast)
    assert applied == 0 and rows["history_events"] == []


async def test_a_batch_older_than_its_run_is_left_to_the_rules(region: Region) -> None:
    msgs = plain_sequence(region.name)
    # the run moved on under version 3 (this region's namespace row still says 1)
    newer = [{**m, "events": [{**e, "version": 3} for e in m["events"]]} for m in msgs[:2]]
    late = {**msgs[4], "events": [{**e, "version": 2} for e in msgs[4]["events"]]}

    async def fast(conn: asyncpg.Connection) -> tuple[int, int]:
        await with_namespace(region, conn)
        return await plain(conn, region, newer), await plain(conn, region, [late])

    applied, rows = await in_rolled_back_txn(region, fast)
    assert applied == (2, 0) and len(rows["history_events"]) == 5


async def progress_row(conn: asyncpg.Connection) -> Any:
    return await conn.fetchrow(
        "SELECT next_offset, last_source_time FROM replication_progress "
        "WHERE source_region = 'elsewhere' AND topic = 't' AND kafka_partition = 3"
    )


async def apply_batch(
    conn: asyncpg.Connection, region: Region, offsets: list[int], msgs: Any
) -> int:
    return int(
        await conn.fetchval(Q["apply_batch"], region.name, "elsewhere", "t", 3, offsets, msgs)
    )


async def _by_rules_from_scratch(region: Region, conn: asyncpg.Connection, msgs: list[Any]) -> None:
    await with_namespace(region, conn)
    await by_rules(region, conn, msgs)


async def test_a_plain_batch_is_applied_with_its_offset_in_one_statement(region: Region) -> None:
    msgs = plain_sequence(region.name)

    async def fast(conn: asyncpg.Connection) -> tuple[list[int], Any]:
        await with_namespace(region, conn)
        # offsets 10.. (a gap at 13: offsets need not be consecutive)
        offsets = [10, 11, 12, 14, 15, 16, 17]
        done = [await apply_batch(conn, region, offsets[:3], msgs[:3])]
        assert dict(await progress_row(conn)) == {"next_offset": 13, "last_source_time": NOW}
        # a batch read again from offset 11: what is below 13 is skipped
        done.append(await apply_batch(conn, region, [11, 12, *offsets[3:]], msgs[1:]))
        return done, await progress_row(conn)

    (done, progress), rows = await in_rolled_back_txn(region, fast)
    assert done == [3, 6] and progress["next_offset"] == 18
    _, expected = await in_rolled_back_txn(
        region, lambda conn: _by_rules_from_scratch(region, conn, msgs)
    )
    assert rows == expected


async def test_a_batch_stops_at_a_message_for_the_rules(region: Region) -> None:
    msgs = plain_sequence(region.name)
    msgs[4] = {**msgs[4], "events_by_reference": True}

    async def fast(conn: asyncpg.Connection) -> tuple[int, Any]:
        await with_namespace(region, conn)
        await conn.execute(
            "INSERT INTO replication_progress (source_region, topic, kafka_partition, "
            "next_offset) VALUES ('elsewhere', 't', 3, 10)"
        )
        done = await apply_batch(conn, region, list(range(10, 10 + len(msgs))), msgs)
        return done, await progress_row(conn)

    (done, progress), rows = await in_rolled_back_txn(region, fast)
    # the four before it are applied, and the offset after them stored with them
    assert (done, progress["next_offset"]) == (4, 14)
    _, expected = await in_rolled_back_txn(
        region, lambda conn: _by_rules_from_scratch(region, conn, msgs[:4])
    )
    assert rows == expected


async def test_a_batch_with_nothing_plain_writes_nothing(region: Region) -> None:
    msgs = plain_sequence(region.name)
    first = {**msgs[0], "type": "namespace_v1"}

    async def fast(conn: asyncpg.Connection) -> tuple[int, bool, Any]:
        await with_namespace(region, conn)
        before = await snapshot(conn)
        done = await apply_batch(conn, region, [5, 6], [first, msgs[1]])
        return done, before == await snapshot(conn), await progress_row(conn)

    (done, untouched, progress), _ = await in_rolled_back_txn(region, fast)
    assert (done, untouched, progress["next_offset"]) == (0, True, 0)


async def test_the_publisher_reads_runs_by_key_however_large_its_batch(region: Region) -> None:
    """outbox_batch reads a row's execution by key, whatever plan the planner
    picks: a scan of every run of the region would cost each round the size of
    the region."""
    pool = region.store.pool
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(
            "INSERT INTO namespaces (name, regions, active_region, failover_version) "
            "VALUES ('rules', ARRAY['region-a', 'elsewhere'], 'region-a', 1)"
        )
        await conn.execute(
            "INSERT INTO executions (namespace, workflow_id, run_id, workflow_type, task_queue, "
            "status, next_event_id, last_write_version, start_time, first_run_id, "
            "task_timeout_s) "
            "SELECT 'rules', 'wf-' || i, gen_random_uuid(), 'T', 'q', 'completed', 3, 1, now(), "
            "gen_random_uuid(), 10 FROM generate_series(1, 8000) AS i"
        )
        await conn.execute(
            "INSERT INTO outbox (namespace, workflow_id, run_id, first_event_id, last_event_id, "
            "version, kind) SELECT namespace, workflow_id, run_id, 0, 0, 1, 'progress' "
            "FROM executions LIMIT 150"
        )
        await conn.execute("ANALYZE executions; ANALYZE outbox")
        # a plan the planner picks when it thinks the outbox large or the runs
        # few: no join may then scan the runs
        await conn.execute("SET LOCAL enable_nestloop = off")
        bound = {"$1": "500", "$2": "'{}'", "$3": "'region-a'", "$4": "NULL"}
        sql = Q["outbox_batch"]
        for name, value in bound.items():
            sql = sql.replace(name, value)
        plan = "\n".join(r[0] for r in await conn.fetch("EXPLAIN " + sql))
        await conn.execute("DELETE FROM outbox WHERE namespace = 'rules'")
    scans = [line for line in plan.splitlines() if "on executions" in line]
    assert scans and all("Index Scan" in line for line in scans), plan


async def test_a_namespace_row_that_holds_what_the_message_says_is_nothing_to_take(
    region: Region,
) -> None:
    msgs = plain_sequence(region.name)

    async def fast(conn: asyncpg.Connection) -> tuple[int, int]:
        await with_namespace(region, conn)
        info = await conn.fetchval("SELECT to_jsonb(n) FROM namespaces n WHERE name = 'rules'")
        # this region's row is older than the message's, but holds what it
        # says (a write elsewhere that changed nothing replicated): apply.py
        # takes nothing, and neither may the plain apply stop at it for good
        await conn.execute(
            "UPDATE namespaces SET updated_at = updated_at - interval '1 day' WHERE name = 'rules'"
        )
        same = [{**m, "namespace_info": info} for m in msgs]
        changed = {**same[0], "namespace_info": {**info, "description": "changed"}}
        return await plain(conn, region, [changed]), await plain(conn, region, same)

    (declined, applied), _ = await in_rolled_back_txn(region, fast)
    assert (declined, applied) == (0, len(msgs))


@pytest.mark.parametrize("field", NAMESPACE_FIELDS)
async def test_every_replicated_namespace_field_is_compared(region: Region, field: str) -> None:
    """The plain apply's copy of apply_namespace_txn's comparison covers every
    field apply.py replicates: a newer message that changes only ``field``
    is the rules' to take (else the standby would never write the change)."""
    msgs = plain_sequence(region.name)

    async def fast(conn: asyncpg.Connection) -> int:
        await with_namespace(region, conn)
        info = await conn.fetchval("SELECT to_jsonb(n) FROM namespaces n WHERE name = 'rules'")
        await conn.execute(
            "UPDATE namespaces SET updated_at = updated_at - interval '1 day' WHERE name = 'rules'"
        )
        changed: Any = {"changed": field}
        if field == "regions":
            changed = [*info["regions"], "third"]
        elif field == "failover_version":
            changed = info["failover_version"] + 1
        return await plain(conn, region, [{**msgs[0], "namespace_info": {**info, field: changed}}])

    applied, _ = await in_rolled_back_txn(region, fast)
    assert applied == 0
