"""Unlocked writes (RunTxn.read_unlocked, baton_write_run_v5) on real PostgreSQL.

The hot completions read their run without a transaction and write it with
one checked call. The write must be refused, with nothing of it stored, when
the run or its namespace changed after the read, and a handover, whose change
of the namespace row takes the namespace's fence, must hold such a write back
exactly as it holds a locked one (ARCHITECTURE invariant 2).
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import asyncpg
import pytest

from store.context import UNLOCKED_CONFLICTS
from store.errors import NamespaceInHandover
from store.mutable_state import RunTxn
from store.namespaces import Namespace
from store.new_run import new_execution
from store.run_write import write_args
from store.sql import QUERIES as Q
from tests.conftest import Region
from worker import Client, workflow
from worker.wire import EventType

pytestmark = pytest.mark.integration
QUEUE = "no-worker-polls-this"


@workflow.defn(name="Waits")
class Waits:
    @workflow.run
    async def run(self) -> None:
        await workflow.wait_condition(lambda: False)


async def _read(region: Region, conn: asyncpg.Connection, run_id: str) -> RunTxn:
    rt, _ = await RunTxn.read_unlocked(
        conn,
        "default",
        "w",
        run_id,
        region=region.store.region,
        region_urls=region.store.region_urls,
    )
    rt.add_event(EventType.MARKER_RECORDED, {"marker_name": "stale", "details": {}})
    return rt


def _markers(events: list[dict[str, Any]]) -> list[str]:
    return [e["attributes"]["marker_name"] for e in events if e["event_type"] == "MarkerRecorded"]


async def test_a_write_of_a_run_written_since_it_was_read_is_refused_and_stores_nothing(
    region: Region, client: Client
) -> None:
    h = await client.start_workflow(Waits, id="w", task_queue=QUEUE)
    assert h.run_id is not None
    async with region.store.pool.acquire() as conn:
        rt = await _read(region, conn, h.run_id)
        await h.signal("poke")  # another write to the run after the read
        with pytest.raises(asyncpg.SerializationError):
            await rt.write_txn()
        events = await h.history()
        assert _markers(events) == []
        assert [e["event_type"] for e in events].count("WorkflowExecutionSignaled") == 1
        # read again, the same write goes through
        rt = await _read(region, conn, h.run_id)
        await rt.write_txn()
    assert _markers(await h.history()) == ["stale"]


async def test_a_write_whose_namespace_changed_since_the_read_is_refused(
    region: Region, client: Client
) -> None:
    h = await client.start_workflow(Waits, id="w", task_queue=QUEUE)
    assert h.run_id is not None
    async with region.store.pool.acquire() as conn:
        rt = await _read(region, conn, h.run_id)
        # any change of the namespace row (here its retention) refuses it
        await conn.execute("UPDATE namespaces SET retention_days = 7 WHERE name = 'default'")
        with pytest.raises(asyncpg.SerializationError):
            await rt.write_txn()
    assert _markers(await h.history()) == []


async def test_a_handover_holding_the_namespace_holds_an_unlocked_write_back(
    region: Region, client: Client
) -> None:
    """A failover changes the namespace row in a transaction still open (which
    takes the namespace's fence): a write read before waits for it, then is
    refused instead of landing after the handover."""
    h = await client.start_workflow(Waits, id="w", task_queue=QUEUE)
    assert h.run_id is not None
    failover = await asyncpg.connect(region.dsn)
    try:
        async with region.store.pool.acquire() as conn:
            rt = await _read(region, conn, h.run_id)
            tx = failover.transaction()
            await tx.start()
            await failover.execute(
                "UPDATE namespaces SET state = 'handover' WHERE name = 'default'"
            )
            write = asyncio.create_task(rt.write_txn())
            await asyncio.sleep(0.5)
            assert not write.done(), "the write went ahead while the namespace was held"
            await tx.commit()
            with pytest.raises(asyncpg.SerializationError):
                await write
    finally:
        await failover.close()
    assert _markers(await h.history()) == []


@pytest.mark.parametrize("run_id_given", [True, False])
async def test_a_handover_holds_a_locked_write_back_and_the_write_sees_it(
    region: Region, client: Client, run_id_given: bool
) -> None:
    """A locked write (lock_execution, lock_current_execution) that starts
    while a failover's change of the namespace is uncommitted waits for it,
    and then reads the changed namespace: it is refused as in handover."""
    h = await client.start_workflow(Waits, id="w", task_queue=QUEUE)
    assert h.run_id is not None
    failover = await asyncpg.connect(region.dsn)
    try:
        tx = failover.transaction()
        await tx.start()
        await failover.execute("UPDATE namespaces SET state = 'handover' WHERE name = 'default'")

        async def locked_write() -> None:
            async with region.store.pool.acquire() as conn, conn.transaction():
                await RunTxn.lock(
                    conn,
                    "default",
                    "w",
                    h.run_id if run_id_given else None,
                    region=region.store.region,
                    region_urls=region.store.region_urls,
                )

        write = asyncio.create_task(locked_write())
        await asyncio.sleep(0.5)
        assert not write.done(), "the write locked its run while the namespace was changing"
        await tx.commit()
        with pytest.raises(NamespaceInHandover):
            await write
    finally:
        await failover.close()


async def test_writes_and_takes_leave_no_lock_on_the_namespace_row(
    region: Region, client: Client
) -> None:
    """The fence is the namespace's advisory lock: a write, a start and a take
    of a workflow task read the namespace row without locking it (a row lock
    would put its transaction, or a multixact of them, in the row's xmax)."""
    async with region.store.pool.acquire() as conn:
        # a fresh version of the row, whose xmax names its own update's
        # transaction (ended): a lock on the row would put its locker there
        await conn.execute("UPDATE namespaces SET retention_days = 7 WHERE name = 'default'")
        before = await conn.fetchval("SELECT xmax::text FROM namespaces WHERE name = 'default'")
    h = await client.start_workflow(Waits, id="w", task_queue=QUEUE)
    assert h.run_id is not None
    async with region.store.pool.acquire() as conn:
        rt = await _read(region, conn, h.run_id)
        await rt.write_txn()
        async with conn.transaction():
            await RunTxn.lock(
                conn,
                "default",
                "w",
                h.run_id,
                region=region.store.region,
                region_urls=region.store.region_urls,
            )
        took = await conn.fetch(Q["take_workflow_task"], "default", QUEUE, None)
        assert [r["t_kind"] for r in took] == ["workflow"]
        assert took[0]["x_ns_xmin"] is not None  # the namespace was read with the run
        xmax = await conn.fetchval("SELECT xmax::text FROM namespaces WHERE name = 'default'")
    assert xmax == before
    assert _markers(await h.history()) == ["stale"]


async def test_a_closing_write_rejects_the_updates_the_run_leaves(
    region: Region, client: Client
) -> None:
    """The updates of a closing run are rejected by the same write (v4)."""
    h = await client.start_workflow(Waits, id="w", task_queue=QUEUE)
    assert h.run_id is not None
    async with region.store.pool.acquire() as conn:
        await conn.execute(
            "INSERT INTO workflow_updates (namespace, workflow_id, run_id, update_id, name, "
            "input, state) VALUES ('default', 'w', $1, 'u1', 'set', $2, 'accepted')",
            uuid.UUID(h.run_id),
            [],
        )
        rt, _ = await RunTxn.read_unlocked(
            conn,
            "default",
            "w",
            h.run_id,
            region=region.store.region,
            region_urls=region.store.region_urls,
        )
        rt.close(EventType.WORKFLOW_EXECUTION_COMPLETED, {"result": None})
        rt.fail_updates = {"message": "workflow completed first", "type": "WorkflowClosed"}
        await rt.write_txn()
        row = await conn.fetchrow(
            "SELECT state, failure FROM workflow_updates WHERE update_id = 'u1'"
        )
    assert row["state"] == "rejected"
    assert row["failure"]["type"] == "WorkflowClosed"
    assert (await h.describe())["execution"]["status"] == "completed"


async def test_a_write_that_keeps_losing_its_race_takes_the_lock_and_gets_through(
    region: Region, client: Client
) -> None:
    """A run that changes between every read and write (a flood of signals)
    is not raced forever: after UNLOCKED_CONFLICTS lost races the write waits
    for the run's lock instead."""
    h = await client.start_workflow(Waits, id="w", task_queue=QUEUE)
    assert h.run_id is not None
    run_id = h.run_id
    tries = 0

    async def unlocked(conn: asyncpg.Connection) -> str:
        nonlocal tries
        tries += 1
        rt = await _read(region, conn, run_id)
        await h.signal("poke")  # the run changes before every unlocked write
        await rt.write_txn()
        return "unlocked"

    async def locked(conn: asyncpg.Connection) -> str:
        rt = await RunTxn.lock(
            conn,
            "default",
            "w",
            run_id,
            region=region.store.region,
            region_urls=region.store.region_urls,
        )
        rt.add_event(EventType.MARKER_RECORDED, {"marker_name": "stale", "details": {}})
        await rt.write_txn()
        return "locked"

    assert await region.store.checked_write(unlocked, locked) == "locked"
    assert tries == UNLOCKED_CONFLICTS
    events = await h.history()
    assert _markers(events) == ["stale"]  # written once, by the locked write
    assert [e["event_type"] for e in events].count("WorkflowExecutionSignaled") == tries


async def test_a_terminate_rejects_the_updates_the_run_leaves_in_its_write(
    region: Region, client: Client
) -> None:
    """Terminate (like reset and a closing completion) hands the rejection to
    the run's write rather than running a statement of its own."""
    h = await client.start_workflow(Waits, id="w", task_queue=QUEUE)
    assert h.run_id is not None
    async with region.store.pool.acquire() as conn:
        await conn.execute(
            "INSERT INTO workflow_updates (namespace, workflow_id, run_id, update_id, name, "
            "input, state) VALUES ('default', 'w', $1, 'u1', 'set', $2, 'requested')",
            uuid.UUID(h.run_id),
            [],
        )
        await h.terminate("enough")
        row = await conn.fetchrow(
            "SELECT state, failure FROM workflow_updates WHERE update_id = 'u1'"
        )
    assert row["state"] == "rejected"
    assert row["failure"] == {"message": "workflow terminated", "type": "Terminated"}


async def _new_run_read_unlocked(
    region: Region, conn: asyncpg.Connection, workflow_id: str, current: str | None
) -> RunTxn:
    """A new run as an unlocked start builds it: checked against the namespace
    row's xmin and the id's current run as read."""
    row = await conn.fetchrow(Q["start_read"], "default", workflow_id, None)
    run = new_execution(
        conn,
        Namespace.from_row(row),
        workflow_id=workflow_id,
        workflow_type="Waits",
        task_queue=QUEUE,
        request_id=None,
        task_timeout_s=10.0,
        run_timeout_s=None,
        memo={},
    )
    run.add_event(EventType.WORKFLOW_EXECUTION_STARTED, {"workflow_type": "Waits"})
    run.expect_xmin = (0, int(row["x_ns_xmin"]))
    run.expect_current_run = current
    return run


async def test_an_unlocked_start_is_refused_if_the_id_was_started_since_the_read(
    region: Region, client: Client
) -> None:
    async with region.store.pool.acquire() as conn:
        run = await _new_run_read_unlocked(region, conn, "s", None)
        h = await client.start_workflow(Waits, id="s", task_queue=QUEUE)  # after the read
        with pytest.raises(asyncpg.SerializationError):
            await run.write_txn()
        runs = await conn.fetch("SELECT run_id FROM executions WHERE workflow_id = 's'")
        assert [str(r["run_id"]) for r in runs] == [h.run_id]
        # read against that run, the start is checked against it and goes through
        await h.terminate("make room")
        run = await _new_run_read_unlocked(region, conn, "s", h.run_id)
        await run.write_txn()
        current = await conn.fetchval(
            "SELECT run_id FROM current_executions WHERE workflow_id = 's'"
        )
        assert str(current) == run.run_id


async def test_the_previous_release_call_writes_as_this_one_and_the_xmin_is_the_rows(
    region: Region, client: Client
) -> None:
    """Servers of the previous release call ``baton_write_run_v4``: since the
    write's body moved into ``baton_write_run_v5`` it must store the same
    write, checked the same way; and v5 must hand back the xmin and history
    size the row holds after it (the run cache refuses its next write on
    them)."""
    h = await client.start_workflow(Waits, id="w", task_queue=QUEUE)
    assert h.run_id is not None
    params = ", ".join(f"${i}" for i in range(1, 58))
    async with region.store.pool.acquire() as conn:
        rt = await _read(region, conn, h.run_id)
        args = write_args(rt)
        assert await conn.fetchval(f"SELECT baton_write_run_v4({params})", *args) is None
        # the same write again: its read is stale now, and it is refused
        with pytest.raises(asyncpg.SerializationError):
            await conn.fetchval(f"SELECT baton_write_run_v4({params})", *args)
        assert _markers(await h.history()) == ["stale"]
        rt = await _read(region, conn, h.run_id)
        row = await conn.fetchrow(Q["write_run_v5"], *write_args(rt), None, None, None)
        held = await conn.fetchrow(
            "SELECT xmin::text::bigint AS xmin, history_size_bytes, next_event_id "
            "FROM executions WHERE namespace = 'default' AND workflow_id = 'w'"
        )
    assert row["view"] is None
    assert row["run_xmin"] == held["xmin"]
    assert row["history_size"] == held["history_size_bytes"] > 0
    assert _markers(await h.history()) == ["stale", "stale"]
    assert held["next_event_id"] == len(await h.history()) + 1


async def test_a_replicated_write_ships_the_row_as_it_left_it(
    region: Region, client: Client
) -> None:
    """The outbox row of a replicated write carries the execution row as the
    write left it (taken from the write itself, not read again)."""
    h = await client.start_workflow(Waits, id="w", task_queue=QUEUE)
    assert h.run_id is not None
    async with region.store.pool.acquire() as conn:
        tx = conn.transaction()
        await tx.start()
        try:
            await conn.execute(
                "UPDATE namespaces SET regions = ARRAY['region-a', 'region-b'] "
                "WHERE name = 'default'"
            )
            rt = await _read(region, conn, h.run_id)
            args = write_args(rt)
            assert args[41] is True  # p_replicated
            await conn.fetchrow(Q["write_run_v5"], *args, None, None, None)
            shipped = await conn.fetchrow(
                "SELECT first_event_id, last_event_id, execution FROM outbox "
                "WHERE namespace = 'default' AND workflow_id = 'w' ORDER BY id DESC LIMIT 1"
            )
            row = await conn.fetchval(
                "SELECT to_jsonb(e) FROM executions e "
                "WHERE namespace = 'default' AND workflow_id = 'w'"
            )
        finally:
            await tx.rollback()
    assert shipped is not None
    assert shipped["first_event_id"] == shipped["last_event_id"] == row["next_event_id"] - 1
    assert shipped["execution"] == row
