"""The failover-version rules of the applier, on a real region database.

Batches are built by hand and applied as the applier does, inside one
transaction each: duplicates are skipped, a newer branch replaces (and
archives) the local tail, an older branch is refused and archived.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest

from replication.apply import NeedConfirmation, apply_history_txn, apply_namespace_txn
from tests.conftest import Region

pytestmark = pytest.mark.integration
NOW = datetime(2026, 1, 1, tzinfo=UTC)


def ns_info(region: str, version: int = 1) -> dict[str, Any]:
    return {
        "name": "rules",
        "regions": [region, "elsewhere"],
        "active_region": "elsewhere",
        "failover_version": version,
        "state": "active",
        "retention_days": 7,
        "description": "",
        "created_at": NOW.isoformat(),
        "updated_at": NOW.isoformat(),
    }


def event(i: int, version: int, kind: str = "ActivityTaskScheduled") -> dict[str, Any]:
    return {
        "event_id": i,
        "event_type": kind,
        "event_time": NOW.isoformat(),
        "version": version,
        "attributes": {"n": i, "v": version},
    }


def batch(region: str, rid: uuid.UUID, events: list[dict[str, Any]], ns_version: int = 1) -> Any:
    last = events[-1]["event_id"]
    return {
        "type": "history_v1",
        "source_region": "elsewhere",
        "namespace": "rules",
        "workflow_id": "wf",
        "run_id": str(rid),
        "first_event_id": events[0]["event_id"],
        "last_event_id": last,
        "version": events[-1]["version"],
        "source_time": NOW.isoformat(),
        "events": events,
        "activities": [],
        "namespace_info": ns_info(region, ns_version),
        "execution": {
            "namespace": "rules",
            "workflow_id": "wf",
            "run_id": str(rid),
            "workflow_type": "T",
            "task_queue": "q",
            "status": "running",
            "paused": False,
            "next_event_id": last + 1,
            "last_write_version": events[-1]["version"],
            "start_time": NOW.isoformat(),
            "first_run_id": str(rid),
            "task_timeout_s": 10.0,
            "memo": {},
            "wt_attempt": 1,
            "last_completed_wt_started": 0,
            "buffered_events": [],
            "pending_updates": False,
            "updated_at": NOW.isoformat(),
        },
    }


async def apply(region: Region, msg: dict[str, Any]) -> None:
    await region.store.txn(lambda conn: apply_history_txn(region.store, conn, msg))


async def history(region: Region) -> list[tuple[int, int]]:
    rows = await region.store.pool.fetch(
        "SELECT event_id, version FROM history_events WHERE namespace = 'rules' ORDER BY event_id"
    )
    return [(r["event_id"], r["version"]) for r in rows]


async def move_waiting_for(
    region: Region,
    hold: Callable[[asyncpg.Connection], Awaitable[Any]],
    move: Callable[[asyncpg.Connection], Awaitable[Any]],
    before_commit: Callable[[asyncpg.Connection], Awaitable[Any]] | None = None,
) -> Any:
    """What ``move`` returns, started on a connection of its own while another
    holds a transaction that ran ``hold``: the move must wait for that
    transaction (``before_commit`` runs in it once the move waits)."""
    from store import db

    holder, mover = [await db.connect(region.dsn) for _ in range(2)]
    try:
        txn = holder.transaction()
        await txn.start()
        await hold(holder)
        task = asyncio.create_task(move(mover))
        await asyncio.sleep(0.5)
        assert not task.done()  # it waits for the held transaction
        if before_commit is not None:
            await before_commit(holder)
        await txn.commit()
        return await asyncio.wait_for(task, 10)
    finally:
        await holder.close()
        await mover.close()


async def conflicts(region: Region) -> list[Any]:
    return list(
        await region.store.pool.fetch(
            "SELECT kind, first_event_id, last_event_id, losing_version, winning_version "
            "FROM replication_conflicts ORDER BY id"
        )
    )


async def test_duplicates_are_skipped(region: Region) -> None:
    rid = uuid.uuid4()
    msg = batch(region.name, rid, [event(i, 1) for i in (1, 2, 3)])
    await apply(region, msg)
    await apply(region, msg)
    await apply(region, batch(region.name, rid, [event(i, 1) for i in (2, 3, 4)]))
    assert await history(region) == [(1, 1), (2, 1), (3, 1), (4, 1)]
    assert await conflicts(region) == []


async def test_a_newer_branch_replaces_and_archives_the_local_tail(region: Region) -> None:
    rid = uuid.uuid4()
    await apply(region, batch(region.name, rid, [event(i, 1) for i in range(1, 6)]))
    await apply(region, batch(region.name, rid, [event(i, 2) for i in (4, 5, 6)], ns_version=2))
    assert await history(region) == [(1, 1), (2, 1), (3, 1), (4, 2), (5, 2), (6, 2)]
    [c] = await conflicts(region)
    assert dict(c) == {
        "kind": "local_tail",
        "first_event_id": 4,
        "last_event_id": 5,
        "losing_version": 1,
        "winning_version": 2,
    }
    nxt = await region.store.pool.fetchval(
        "SELECT next_event_id FROM executions WHERE run_id = $1", rid
    )
    assert nxt == 7


async def test_an_older_branch_is_refused_and_archived(region: Region) -> None:
    rid = uuid.uuid4()
    await apply(region, batch(region.name, rid, [event(i, 1) for i in (1, 2, 3)]))
    await apply(region, batch(region.name, rid, [event(i, 2) for i in (4, 5)], ns_version=2))
    # a late batch of the old branch, overlapping and continuing
    await apply(region, batch(region.name, rid, [event(i, 1) for i in (4, 5, 6)]))
    assert await history(region) == [(1, 1), (2, 1), (3, 1), (4, 2), (5, 2)]
    [c] = await conflicts(region)
    assert c["kind"] == "rejected_batch" and c["losing_version"] == 1
    assert (c["first_event_id"], c["last_event_id"]) == (4, 6)
    # and the namespace never moves back to the older version
    v = await region.store.pool.fetchval(
        "SELECT failover_version FROM namespaces WHERE name = 'rules'"
    )
    assert v == 2


async def failed_over(region: Region) -> None:
    """This standby learns that the namespace failed over to version 2."""
    await region.store.txn(
        lambda conn: apply_namespace_txn(conn, region.name, ns_info(region.name, 2))
    )


async def test_a_standby_asks_the_active_region_about_a_batch_older_than_the_namespace(
    region: Region,
) -> None:
    await failed_over(region)
    rid = uuid.uuid4()
    late = batch(region.name, rid, [event(i, 1) for i in (1, 2, 3)])
    with pytest.raises(NeedConfirmation) as need:
        await apply(region, late)
    assert (need.value.active_region, need.value.first, need.value.last) == ("elsewhere", 1, 3)
    assert await history(region) == []  # nothing written before the answer


async def test_what_the_active_region_does_not_hold_is_archived_not_applied(
    region: Region,
) -> None:
    # a deposed region's run the active region never had (a forced failover)
    await failed_over(region)
    rid = uuid.uuid4()
    await apply(
        region, {**batch(region.name, rid, [event(i, 1) for i in (1, 2)]), "held_by_active": []}
    )
    assert await history(region) == []
    assert await region.store.pool.fetchval("SELECT count(*) FROM executions") == 0
    [c] = await conflicts(region)
    assert dict(c) == {
        "kind": "rejected_batch",
        "first_event_id": 1,
        "last_event_id": 2,
        "losing_version": 1,
        "winning_version": 2,
    }


async def test_what_the_active_region_holds_is_applied_and_the_rest_archived(
    region: Region,
) -> None:
    await failed_over(region)
    rid = uuid.uuid4()
    # this region lags: the active region holds events 1-3 under version 1 too
    held = [[1, 1], [2, 1], [3, 1]]
    await apply(
        region,
        {**batch(region.name, rid, [event(i, 1) for i in (1, 2, 3)]), "held_by_active": held},
    )
    assert await history(region) == [(1, 1), (2, 1), (3, 1)]
    # the next batch: the active region holds event 4 only; 5-6 are a lost tail
    late = batch(region.name, rid, [event(i, 1) for i in (4, 5, 6)])
    await apply(region, {**late, "held_by_active": [[4, 1]]})
    assert await history(region) == [(1, 1), (2, 1), (3, 1), (4, 1)]
    nxt = await region.store.pool.fetchval(
        "SELECT next_event_id FROM executions WHERE run_id = $1", rid
    )
    assert nxt == 5
    [c] = await conflicts(region)
    assert (c["kind"], c["first_event_id"], c["last_event_id"]) == ("rejected_batch", 5, 6)


async def test_two_partitions_taking_one_namespace_change_at_once_do_not_deadlock(
    region: Region,
) -> None:
    """Every partition's stream carries the namespace's row: after a change,
    two partitions' transactions may both replace it. Both held the namespace
    shared, then each waited for the other to take it exclusively (the fence
    trigger of a namespace change), and PostgreSQL aborted one after a second.
    Here both reach the row together (a third transaction holds it until they
    have both locked the namespace); the one to go second must find the change
    made, not a deadlock."""
    from types import SimpleNamespace

    from aiokafka import TopicPartition

    from replication.applier import Applier
    from store import db

    await region.store.txn(
        lambda conn: apply_namespace_txn(conn, region.name, ns_info(region.name))
    )
    newer = {**ns_info(region.name, version=2), "updated_at": NOW.replace(hour=1).isoformat()}
    msg = {
        "type": "namespace_v1",
        "source_region": "elsewhere",
        "namespace": "rules",
        "workflow_id": "",
        "run_id": "00000000-0000-0000-0000-000000000000",
        "namespace_info": newer,
    }
    applier = Applier(region.store)
    holder, *appliers = [await db.connect(region.dsn) for _ in range(3)]
    try:
        hold = holder.transaction()
        await hold.start()
        await holder.execute("SELECT 1 FROM namespaces WHERE name = 'rules' FOR UPDATE")

        async def apply_on(conn: Any, partition: int) -> None:
            tp = TopicPartition("baton.replication.elsewhere", partition)
            async with conn.transaction():
                await applier._apply_txn("elsewhere", tp, [SimpleNamespace(offset=0)], [msg], conn)

        tasks = [asyncio.create_task(apply_on(c, p)) for p, c in enumerate(appliers)]
        # both are past their namespace lock and wait for the row (or for the lock)
        await asyncio.sleep(0.5)
        assert not any(t.done() for t in tasks)
        await hold.commit()
        await asyncio.wait_for(asyncio.gather(*tasks), 10)
    finally:
        for c in (holder, *appliers):
            await c.close()
        await applier.close()
    row = await region.store.pool.fetchrow(
        "SELECT failover_version, updated_at FROM namespaces WHERE name = 'rules'"
    )
    assert (row["failover_version"], row["updated_at"].isoformat()) == (2, newer["updated_at"])


async def test_a_namespace_move_waits_for_an_applier_holding_the_namespace(
    region: Region,
) -> None:
    """A move (or any change of the namespace's row) takes the namespace's
    fence before its row. Taken after it (by the row's trigger alone), a
    move that locked the row waited for an applier holding the fence, while
    the applier, replacing the row, waited for the move: PostgreSQL aborted
    one of them (a graceful failover failed that way)."""
    from replication.apply import lock_namespaces_for_apply
    from store.sql import QUERIES as SQ

    first = ns_info(region.name)
    await region.store.txn(lambda conn: apply_namespace_txn(conn, region.name, first))
    newer = {**ns_info(region.name, version=2), "updated_at": NOW.replace(hour=1).isoformat()}

    async def hold(applier: asyncpg.Connection) -> None:
        await lock_namespaces_for_apply(applier, [{"namespace": "rules", "namespace_info": newer}])

    moved = await move_waiting_for(
        region,
        hold,
        lambda mover: mover.fetchval(SQ["move_namespace"], "rules", region.name, 5),
        before_commit=lambda applier: apply_namespace_txn(applier, region.name, newer),
    )
    assert moved == "rules"
    row = await region.store.pool.fetchrow(
        "SELECT active_region, failover_version FROM namespaces WHERE name = 'rules'"
    )
    assert dict(row) == {"active_region": region.name, "failover_version": 5}


async def test_a_move_drops_the_pending_work_of_writes_it_waited_for(region: Region) -> None:
    """The region a namespace leaves keeps none of its pending work, even
    work a write in flight commits while the move waits for it: the move's
    deletes must see it (a snapshot taken before that wait would not, and
    the tasks and timers would stay in a region where they never run)."""
    from replication.failover import move_namespace_here
    from store.sql import QUERIES as SQ

    await region.store.txn(
        lambda conn: apply_namespace_txn(conn, region.name, ns_info(region.name))
    )

    async def write(writer: asyncpg.Connection) -> None:
        await writer.fetch(SQ["lock_namespace_shared"], "rules")  # a write's fence
        rid = uuid.uuid4()
        await writer.execute(
            "INSERT INTO tasks (namespace, task_queue, kind, workflow_id, run_id, ref) "
            "VALUES ('rules', 'q', 'activity', 'w', $1, '5')",
            rid,
        )
        await writer.execute(
            "INSERT INTO timers (namespace, workflow_id, run_id, kind, ref, fire_at) "
            "VALUES ('rules', 'w', $1, 'user', 't', now())",
            rid,
        )

    moved = await move_waiting_for(
        region, write, lambda mover: move_namespace_here(mover, "rules", "elsewhere", 5)
    )
    assert moved == "rules"
    left = await region.store.pool.fetchval(
        "SELECT (SELECT count(*) FROM tasks WHERE namespace = 'rules') "
        "+ (SELECT count(*) FROM timers WHERE namespace = 'rules')"
    )
    assert left == 0
