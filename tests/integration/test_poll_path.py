"""The long-poll's hot path on real PostgreSQL.

A poller that takes a task wakes another only when the queue holds more (or a
notification came while it took), and a long-poll trusts what it last read of
its namespace until a namespace notification says it changed. A take, and a
write's delete of its run's tasks, read a few pages beside a backlog whatever
statistics their plans were made from.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from typing import Any

import asyncpg
import orjson
import pytest

from store.errors import NamespaceNotActive
from store.mutable_state import RunTxn
from store.sql import QUERIES as Q
from store.tasks import poll_workflow_task
from store.workflows import terminate_txn
from tests.conftest import Region
from worker import Client, workflow
from worker.wire import PollRequest

pytestmark = pytest.mark.integration
PARKED = "nobody-polls-this"
QUEUE = "polled"


@workflow.defn(name="Waits")
class Waits:
    @workflow.run
    async def run(self) -> None:
        await workflow.wait_condition(lambda: False)


async def _unpark(conn: asyncpg.Connection) -> None:
    """Move the parked tasks to QUEUE in one transaction, as new rows (each
    insert notifies its queue, as a writer of another process would)."""
    await conn.execute(
        """
        WITH d AS (DELETE FROM tasks WHERE task_queue = $1 RETURNING *)
        INSERT INTO tasks (namespace, task_queue, kind, workflow_id, run_id, ref, attempt)
        SELECT namespace, $2, kind, workflow_id, run_id, ref, attempt FROM d
        """,
        PARKED,
        QUEUE,
    )


async def test_two_tasks_of_one_commit_reach_two_waiting_pollers(
    region: Region, client: Client
) -> None:
    for wid in ("w1", "w2"):
        await client.start_workflow(Waits, id=wid, task_queue=PARKED)
    req = PollRequest(task_queue=QUEUE, identity="t", wait_s=10)
    pollers = [asyncio.create_task(poll_workflow_task(region.store, "default", req)) for _ in "ab"]
    await asyncio.sleep(0.5)  # both wait on an empty queue
    assert not any(p.done() for p in pollers)
    async with region.store.pool.acquire() as conn:
        # both tasks come back in one transaction: their notifications
        # collapse into one, which wakes one poller
        await _unpark(conn)
    done, _ = await asyncio.wait(pollers, timeout=3)
    # the poller it woke saw that the queue held more and woke the other
    assert len(done) == 2, "the second poller slept through its task"
    assert sorted(p.result()["workflow_id"] for p in pollers) == ["w1", "w2"]


async def test_a_poll_learns_at_once_that_its_namespace_left_the_region(
    region: Region, client: Client
) -> None:
    req = PollRequest(task_queue=QUEUE, identity="t", wait_s=0)
    assert await poll_workflow_task(region.store, "default", req) is None
    epoch = region.store.notifier.namespace_epoch
    async with region.store.pool.acquire() as conn:
        await conn.execute(
            "UPDATE namespaces SET active_region = 'elsewhere' WHERE name = 'default'"
        )
    for _ in range(100):
        if region.store.notifier.namespace_epoch != epoch:
            break
        await asyncio.sleep(0.05)
    with pytest.raises(NamespaceNotActive):
        await poll_workflow_task(region.store, "default", req)


async def test_a_start_hands_its_first_task_to_a_poller_of_this_process_after_the_commit(
    region: Region, client: Client
) -> None:
    store = region.store
    # no poller waits: the task is a row of the queue, as before
    await client.start_workflow(Waits, id="queued", task_queue=QUEUE)
    async with store.pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM tasks WHERE workflow_id = 'queued'") == 1
    req = PollRequest(task_queue=QUEUE, identity="sync-poller", wait_s=10)
    assert (await poll_workflow_task(store, "default", req))["workflow_id"] == "queued"
    assert store.matcher.matched == 0

    poller = asyncio.create_task(poll_workflow_task(store, "default", req))
    await asyncio.sleep(0.3)  # it waits on the empty queue
    h = await client.start_workflow(Waits, id="matched", task_queue=QUEUE)
    task = await asyncio.wait_for(poller, 5)
    assert task["workflow_id"] == "matched" and task["run_id"] == h.run_id
    assert store.matcher.matched == 1
    # what the poller holds was committed before it got it: the start wrote
    # the task as started by this poller, and left no task row to take
    async with store.pool.acquire() as conn:
        started = await conn.fetchrow(
            "SELECT event_id, attributes FROM history_events "
            "WHERE workflow_id = 'matched' AND event_type = 'WorkflowTaskStarted'"
        )
        rows = await conn.fetchval("SELECT count(*) FROM tasks WHERE workflow_id = 'matched'")
    assert started["attributes"]["identity"] == "sync-poller"
    assert task["started_event_id"] == started["event_id"]
    assert [e["event_type"] for e in task["events"]] == [
        "WorkflowExecutionStarted",
        "WorkflowTaskScheduled",
        "WorkflowTaskStarted",
    ]
    assert rows == 0


async def test_pollers_racing_for_a_backlog_start_every_task_once(
    region: Region, client: Client
) -> None:
    # ten pollers drain a backlog at once: each task is started exactly once
    for i in range(30):
        await client.start_workflow(Waits, id=f"b{i}", task_queue=QUEUE)
    req = PollRequest(task_queue=QUEUE, identity="racer", wait_s=0)

    async def drain() -> list[str]:
        got = []
        while (task := await poll_workflow_task(region.store, "default", req)) is not None:
            got.append(task["workflow_id"])
        return got

    taken = [wid for got in await asyncio.gather(*(drain() for _ in range(10))) for wid in got]
    assert sorted(taken) == sorted(f"b{i}" for i in range(30))
    async with region.store.pool.acquire() as conn:
        started = await conn.fetch(
            "SELECT workflow_id, count(*) AS n FROM history_events "
            "WHERE event_type = 'WorkflowTaskStarted' GROUP BY workflow_id"
        )
        assert await conn.fetchval("SELECT count(*) FROM tasks") == 0
    assert {r["workflow_id"]: r["n"] for r in started} == {f"b{i}": 1 for i in range(30)}


async def test_a_stale_task_row_is_dropped_not_handed_out(region: Region, client: Client) -> None:
    await client.start_workflow(Waits, id="s", task_queue=QUEUE)
    async with region.store.pool.acquire() as conn:
        # a row of a task the run no longer has open
        await conn.execute(
            "INSERT INTO tasks (namespace, task_queue, kind, workflow_id, run_id, ref, attempt) "
            "SELECT namespace, task_queue, kind, workflow_id, run_id, '999', attempt FROM tasks"
        )
    req = PollRequest(task_queue=QUEUE, identity="t", wait_s=0)
    assert (await poll_workflow_task(region.store, "default", req))["workflow_id"] == "s"
    assert await poll_workflow_task(region.store, "default", req) is None
    async with region.store.pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM tasks") == 0


def _blocks(plan: dict[str, Any]) -> int:
    return int(plan.get("Shared Hit Blocks", 0)) + int(plan.get("Shared Read Blocks", 0))


async def _backlog(conn: asyncpg.Connection, queue: str, rows: int, prefix: str = "w") -> None:
    """``rows`` workflow tasks of ``queue``, of runs no one knows."""
    await conn.execute(
        "INSERT INTO tasks (namespace, task_queue, kind, workflow_id, run_id, ref)"
        " SELECT 'default', $1, 'workflow', $3 || g, gen_random_uuid(), ''"
        " FROM generate_series(1, $2::int) g",
        queue,
        rows,
        prefix,
    )


async def _take_reads(
    conn: asyncpg.Connection, cases: dict[str, tuple[str, bool, int]]
) -> dict[str, int]:
    """The pages each take of ``cases`` (queue, activity poll, rows it finds)
    reads with the generic plan a server's prepared take settles on after a
    few calls; what the takes delete is rolled back."""
    reads: dict[str, int] = {}
    tx = conn.transaction()
    await tx.start()
    try:
        await conn.execute("SET LOCAL plan_cache_mode = force_generic_plan")
        await conn.execute(f"PREPARE take(text, text, boolean, text) AS {Q['take_task']}")
        # once, so that what is read below is not the function's first
        # compilation and planning (once a session)
        await conn.execute(f"EXECUTE take('default', '{PARKED}', false, NULL)")
        for what, (queue, activity, found) in cases.items():
            out = await conn.fetchval(
                "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) "
                f"EXECUTE take('default', '{queue}', {activity}, NULL)"
            )
            plan = (orjson.loads(out) if isinstance(out, str) else out)[0]["Plan"]
            assert plan["Actual Rows"] == found, what
            reads[what] = _blocks(plan)
    finally:
        await tx.rollback()
    return reads


async def test_a_take_reads_a_few_pages_beside_a_large_backlog_of_other_tasks(
    region: Region,
) -> None:
    """Whatever plan PostgreSQL settles on for the prepared take, it walks the
    polled queue's own rows in id order: it never reads through the backlog
    of other queues or of the other kind of task."""
    async with region.store.pool.acquire() as conn:
        await _backlog(conn, "busy", 30000)
        await conn.execute(
            "INSERT INTO tasks (namespace, task_queue, kind, workflow_id, run_id, ref)"
            " VALUES ('default', 'quiet', 'workflow', 'x', gen_random_uuid(), '')"
        )
        await conn.execute("ANALYZE tasks")
        reads = await _take_reads(
            conn,
            {
                "a workflow poll of a quiet queue": ("quiet", False, 1),
                "an activity poll beside a backlog of workflow tasks": ("busy", True, 0),
                "a workflow poll of the backlog itself": ("busy", False, 1),
            },
        )
    # 30,000 rows fill some 300 pages of each index and of the heap
    assert all(n < 60 for n in reads.values()), reads


# Autovacuum may vacuum or analyze tasks while it is nearly empty, and the
# generic plans a server's prepared statements and baton_write_run_v5 then make
# believe it holds a row or so. Those plans must still read a few pages when a
# backlog has grown since.
BACKLOG = 5000


async def _stats_of_a_nearly_empty_table(conn: asyncpg.Connection) -> None:
    """``tasks`` as autovacuum may leave it: vacuumed with a row or two left
    (so its pages stay whatever the table's settings), statistics to match;
    then a backlog of workflow tasks of one queue arrives."""
    await _backlog(conn, "elsewhere", BACKLOG, "old")
    await conn.execute(
        "DELETE FROM tasks WHERE task_queue = 'elsewhere'"
        " AND id < (SELECT max(id) FROM tasks WHERE task_queue = 'elsewhere')"
    )
    await conn.execute("VACUUM tasks")
    stats = await conn.fetchrow(
        "SELECT relpages, reltuples FROM pg_class WHERE oid = 'tasks'::regclass"
    )
    assert stats["relpages"] > 1 and stats["reltuples"] <= 2, dict(stats)
    await _backlog(conn, "busy", BACKLOG)


async def test_a_take_beside_a_backlog_reads_a_few_pages_after_an_empty_table_was_analyzed(
    region: Region, client: Client
) -> None:
    await client.start_workflow(Waits, id="one", task_queue="busy")
    async with region.store.pool.acquire() as conn:
        await _stats_of_a_nearly_empty_table(conn)
        reads = await _take_reads(
            conn,
            {
                # the queue's oldest task, deleted: not a walk of the index again
                "a workflow poll of the backlog": ("busy", False, 1),
                # every row of the queue is a workflow task
                "an activity poll of the same queue": ("busy", True, 0),
            },
        )
    # 5,000 rows fill some 50-60 pages of the heap and of each index
    assert all(n < 25 for n in reads.values()), reads


async def _blocks_read(conn: asyncpg.Connection) -> int:
    """Pages of ``tasks`` and its indexes this transaction has read so far."""
    return int(
        await conn.fetchval(
            "SELECT sum(pg_stat_get_xact_blocks_fetched(c)) FROM ("
            " SELECT 'tasks'::regclass::oid AS c"
            " UNION ALL SELECT indexrelid FROM pg_index WHERE indrelid = 'tasks'::regclass) r"
        )
    )


async def test_closing_a_run_deletes_its_tasks_through_its_index_after_an_empty_table_was_analyzed(
    region: Region, client: Client
) -> None:
    handle = await client.start_workflow(Waits, id="closing", task_queue="busy")
    run_id = handle.run_id
    assert run_id is not None
    async with region.store.pool.acquire() as conn:
        await _stats_of_a_nearly_empty_table(conn)
        async with conn.transaction():
            # the plans baton_write_run_v5 makes for itself once it settles
            await conn.execute("SET LOCAL plan_cache_mode = force_generic_plan")
            rt = await RunTxn.lock(
                conn,
                "default",
                "closing",
                run_id,
                region=region.store.region,
                region_urls=region.store.region_urls,
            )
            before = await _blocks_read(conn)
            terminate_txn(rt, "plans", "test")
            await rt.write_txn()
            read = await _blocks_read(conn) - before
            left = await conn.fetchval(
                "SELECT count(*) FROM tasks WHERE workflow_id = 'closing' AND run_id = $1",
                uuid.UUID(run_id),
            )
    assert left == 0
    # a scan of every task row reads 50 pages or more; a loop over them,
    # thousands
    assert read < 25, read


async def test_an_untaken_query_s_task_is_deleted_through_its_index_beside_a_backlog(
    region: Region,
) -> None:
    """A query answered or given up before a worker took its task deletes the
    task by its query id: a few pages, not a scan of the queue's backlog."""
    query_id = uuid.uuid4()
    async with region.store.pool.acquire() as conn:
        await _backlog(conn, "busy", 30000)
        await conn.execute(
            "INSERT INTO tasks (namespace, task_queue, kind, workflow_id, run_id, ref)"
            " VALUES ('default', 'busy', 'query', 'q', gen_random_uuid(), $1)",
            str(query_id),
        )
        await conn.execute("ANALYZE tasks")
        async with conn.transaction():
            await conn.execute("SET LOCAL plan_cache_mode = force_generic_plan")
            before = await _blocks_read(conn)
            await conn.execute(Q["delete_query"], query_id)
            read = await _blocks_read(conn) - before
            left = await conn.fetchval("SELECT count(*) FROM tasks WHERE kind = 'query'")
    assert left == 0
    # 30,000 rows fill some 300 pages of the heap
    assert read < 10, read


async def test_a_poll_of_a_queue_found_empty_asks_before_it_opens_a_transaction(
    region: Region, client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A take is a transaction (BEGIN, take, COMMIT). A poll of a queue this
    process last found empty asks first whether it holds a task, one
    statement, and takes only then; a task committed while it sleeps still
    reaches it."""
    store = region.store
    txns = 0
    real_txn = store.txn

    async def counted(fn: Any) -> Any:
        nonlocal txns
        txns += 1
        return await real_txn(fn)

    monkeypatch.setattr(store, "txn", counted)
    now = PollRequest(task_queue=QUEUE, identity="t", wait_s=0)
    assert await poll_workflow_task(store, "default", now) is None
    assert txns == 1  # a queue not seen before: taken from
    assert await poll_workflow_task(store, "default", now) is None
    assert txns == 1, "a poll of a queue found empty opened a transaction"

    # a task in the table (no poller waited for it): asked, then taken
    await client.start_workflow(Waits, id="w1", task_queue=QUEUE)
    task = await poll_workflow_task(store, "default", now)
    assert task is not None and task["workflow_id"] == "w1"
    assert txns == 2

    # found empty again, then a task committed by another connection while the
    # poll sleeps: its notification wakes the poll, which takes it
    assert await poll_workflow_task(store, "default", now) is None
    assert txns == 3
    await client.start_workflow(Waits, id="w2", task_queue=PARKED)
    waiting = PollRequest(task_queue=QUEUE, identity="t", wait_s=10)
    poll = asyncio.create_task(poll_workflow_task(store, "default", waiting))
    await asyncio.sleep(0.3)
    assert not poll.done()
    assert txns == 3, "the sleeping poll took from a queue it was told was empty"
    async with store.pool.acquire() as conn:
        await _unpark(conn)
    task = await asyncio.wait_for(poll, 5)
    assert task is not None and task["workflow_id"] == "w2"


async def _statement_calls(conn: asyncpg.Connection, prefix: str) -> int:
    """Calls of the statements whose text starts with ``prefix`` in this database."""
    return int(
        await conn.fetchval(
            "SELECT coalesce(sum(s.calls), 0) FROM pg_stat_statements s"
            " JOIN pg_database d ON d.oid = s.dbid"
            " WHERE d.datname = current_database() AND ltrim(s.query) LIKE $1 || '%'",
            prefix,
        )
    )


async def test_a_take_locks_its_run_in_the_statement_that_takes_the_task(
    region: Region, client: Client
) -> None:
    """Taking a workflow task from the table and locking its run (namespace
    row shared, then the run) is one statement, not two."""
    store = region.store
    await client.start_workflow(Waits, id="taken", task_queue=QUEUE)
    async with store.pool.acquire() as conn:
        await conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        await conn.execute("SELECT pg_stat_statements_reset()")
    req = PollRequest(task_queue=QUEUE, identity="t", wait_s=5)
    task = await poll_workflow_task(store, "default", req)
    assert task is not None and task["workflow_id"] == "taken"
    assert [e["event_type"] for e in task["events"]][-1] == "WorkflowTaskStarted"
    async with store.pool.acquire() as conn:
        assert await _statement_calls(conn, "-- A workflow poll's take") == 1
        assert await _statement_calls(conn, "-- One lock order everywhere") == 0
        assert await _statement_calls(conn, "-- The oldest free task") == 0


async def test_a_query_task_taken_from_the_table_reaches_the_poll(
    region: Region, client: Client
) -> None:
    """A query whose task waited in the table (no poller then) is taken by the
    next poll as a query task; the run it asks is not locked for it."""
    store = region.store
    h = await client.start_workflow(Waits, id="asked", task_queue=QUEUE)
    req = PollRequest(task_queue=QUEUE, identity="t", wait_s=5)
    first = await poll_workflow_task(store, "default", req)
    assert first is not None and first["workflow_id"] == "asked"
    query = asyncio.create_task(h.query("anything", timeout=5.0))
    try:
        async with store.pool.acquire() as conn:
            for _ in range(100):
                if await conn.fetchval("SELECT count(*) FROM tasks WHERE kind = 'query'"):
                    break
                await asyncio.sleep(0.05)
            # the run's row stays free while the query task is taken: a lock on
            # it would make this wait
            holder = await asyncpg.connect(region.dsn)
            try:
                async with holder.transaction():
                    await holder.execute(
                        "SELECT 1 FROM executions WHERE workflow_id = 'asked' FOR UPDATE"
                    )
                    got = await asyncio.wait_for(poll_workflow_task(store, "default", req), 5)
            finally:
                await holder.close()
        assert got is not None and got["query"]["name"] == "anything"
        assert got["workflow_id"] == "asked"
    finally:
        query.cancel()
        with contextlib.suppress(BaseException):
            await query


async def test_a_poll_arriving_at_a_queue_just_found_empty_sleeps_without_reading_it(
    region: Region, client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With more pollers than tasks, every poll a worker sends again after its
    task would read an empty queue. One arriving within TRUST_EMPTY_S of a take
    that found the queue empty sleeps at once, with no statement: each task
    committed since was announced and woke a sleeping poll, or, finding every
    poll of the queue awake, dropped the mark so the next poll reads."""
    store = region.store
    monkeypatch.setattr("store.tasks.TRUST_EMPTY_S", 60.0)  # only a notification ends it
    txns = 0
    real_txn = store.txn

    async def counted(fn: Any) -> Any:
        nonlocal txns
        txns += 1
        return await real_txn(fn)

    async def reads() -> int:
        async with store.pool.acquire() as conn:
            return txns + await _statement_calls(conn, "-- Whether the queue holds a task")

    async with store.pool.acquire() as conn:
        await conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        await conn.execute("SELECT pg_stat_statements_reset()")
    now = PollRequest(task_queue=QUEUE, identity="t", wait_s=0)
    assert await poll_workflow_task(store, "default", now) is None  # found empty
    monkeypatch.setattr(store, "txn", counted)
    before = await reads()

    # a waiting poll arrives: no read, it sleeps; a task committed by another
    # connection wakes it and it takes the task
    await client.start_workflow(Waits, id="t1", task_queue=PARKED)
    waiting = PollRequest(task_queue=QUEUE, identity="t", wait_s=10)
    poll = asyncio.create_task(poll_workflow_task(store, "default", waiting))
    await asyncio.sleep(0.3)
    assert not poll.done()
    assert await reads() == before, "a poll of a queue just found empty read it before sleeping"
    async with store.pool.acquire() as conn:
        await _unpark(conn)
    task = await asyncio.wait_for(poll, 5)
    assert task is not None and task["workflow_id"] == "t1"

    # a task committed while no poll of the queue waits here: its
    # notification finds nobody to wake and drops the mark, so the next poll
    # reads the queue and takes the task at once
    assert await poll_workflow_task(store, "default", now) is None  # found empty
    await client.start_workflow(Waits, id="t2", task_queue=PARKED)
    async with store.pool.acquire() as conn:
        await _unpark(conn)
    await asyncio.sleep(0.3)  # the notification reaches the listener
    task = await asyncio.wait_for(poll_workflow_task(store, "default", waiting), 1)
    assert task is not None and task["workflow_id"] == "t2"


async def test_a_task_left_unannounced_is_taken_once_the_empty_mark_is_old(
    region: Region, client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A take another process began and never committed (it was killed)
    leaves its task in the table with no new notification. A poll arriving
    more than TRUST_EMPTY_S after the queue was found empty reads it again."""
    store = region.store
    monkeypatch.setattr("store.tasks.TRUST_EMPTY_S", 0.3)
    now = PollRequest(task_queue=QUEUE, identity="t", wait_s=0)
    assert await poll_workflow_task(store, "default", now) is None  # found empty
    await client.start_workflow(Waits, id="quiet", task_queue=PARKED)
    async with store.pool.acquire() as conn, conn.transaction():
        # no trigger: the row lands as one whose announcement went to a taker
        # that died before it committed
        await conn.execute("SET LOCAL session_replication_role = replica")
        await _unpark(conn)
    waiting = PollRequest(task_queue=QUEUE, identity="t", wait_s=1)
    # within the window the arriving poll trusts the mark and sleeps its wait out
    assert await poll_workflow_task(store, "default", waiting) is None
    # the mark is older than the window now: the next poll reads the queue
    task = await asyncio.wait_for(poll_workflow_task(store, "default", waiting), 2)
    assert task is not None and task["workflow_id"] == "quiet"
