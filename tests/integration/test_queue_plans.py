"""The queue tables' hot statements stay short whatever their statistics say.

Autovacuum may vacuum or analyze ``tasks`` while it is nearly empty, and the
generic plans a server's prepared statements and ``baton_write_run_v5`` then
make believe it holds a row or so. Those plans must still read a few pages
when a backlog has grown since: a take walks its own queue's rows in id order
and a write deletes its run's tasks through the run's index, never a nested
loop over every task row.
"""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import orjson
import pytest

from store.mutable_state import RunTxn
from store.sql import QUERIES as Q
from store.workflows import terminate_txn
from tests.conftest import Region
from worker import Client, workflow

pytestmark = pytest.mark.integration
BACKLOG = 5000
QUEUE = "busy"


@workflow.defn(name="NeverPolled")
class NeverPolled:
    @workflow.run
    async def run(self) -> None:
        await workflow.wait_condition(lambda: False)


async def _stats_of_a_nearly_empty_table(conn: asyncpg.Connection) -> None:
    """``tasks`` as autovacuum may leave it: vacuumed with one row left (so
    some pages stay whatever the table's settings), statistics of a row or two;
    then a backlog of workflow tasks of one queue arrives."""
    await conn.execute(
        "INSERT INTO tasks (namespace, task_queue, kind, workflow_id, run_id, ref)"
        " SELECT 'default', 'elsewhere', 'workflow', 'old' || g, gen_random_uuid(), ''"
        " FROM generate_series(1, $1::int) g",
        BACKLOG,
    )
    await conn.execute(
        "DELETE FROM tasks WHERE task_queue = 'elsewhere'"
        " AND id < (SELECT max(id) FROM tasks WHERE task_queue = 'elsewhere')"
    )
    await conn.execute("VACUUM tasks")
    stats = await conn.fetchrow(
        "SELECT relpages, reltuples FROM pg_class WHERE oid = 'tasks'::regclass"
    )
    assert stats["relpages"] > 1 and stats["reltuples"] <= 2, dict(stats)
    await conn.execute(
        "INSERT INTO tasks (namespace, task_queue, kind, workflow_id, run_id, ref)"
        " SELECT 'default', $1, 'workflow', 'w' || g, gen_random_uuid(), ''"
        " FROM generate_series(1, $2::int) g",
        QUEUE,
        BACKLOG,
    )


async def _blocks_read(conn: asyncpg.Connection) -> int:
    """Pages of ``tasks`` and its indexes this transaction has read so far."""
    return int(
        await conn.fetchval(
            "SELECT sum(pg_stat_get_xact_blocks_fetched(c)) FROM ("
            " SELECT 'tasks'::regclass::oid AS c"
            " UNION ALL SELECT indexrelid FROM pg_index WHERE indrelid = 'tasks'::regclass) r"
        )
    )


def _plan_blocks(plan: dict[str, Any]) -> int:
    return int(plan.get("Shared Hit Blocks", 0)) + int(plan.get("Shared Read Blocks", 0))


async def test_a_take_beside_a_backlog_reads_a_few_pages_after_an_empty_table_was_analyzed(
    region: Region, client: Client
) -> None:
    await client.start_workflow(NeverPolled, id="one", task_queue=QUEUE)
    async with region.store.pool.acquire() as conn:
        await _stats_of_a_nearly_empty_table(conn)
        tx = conn.transaction()
        await tx.start()
        try:
            await conn.execute("SET LOCAL plan_cache_mode = force_generic_plan")
            await conn.execute(f"PREPARE take(text, text, boolean, text) AS {Q['take_task']}")
            # once, so that what is read below is not the function's first
            # compilation and planning (once a session)
            await conn.execute("EXECUTE take('default', 'nobody-polls-this', false, NULL)")
            cases = {
                # the queue's oldest task, deleted: not a walk of the index again
                "a workflow poll of the backlog": (False, 1),
                # every row of the queue is a workflow task
                "an activity poll of the same queue": (True, 0),
            }
            for what, (activity, found) in cases.items():
                out = await conn.fetchval(
                    "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) "
                    f"EXECUTE take('default', '{QUEUE}', {activity}, NULL)"
                )
                plan = (orjson.loads(out) if isinstance(out, str) else out)[0]["Plan"]
                assert plan["Actual Rows"] == found, what
                # 5,000 rows fill some 50-60 pages of the heap and of each index
                assert _plan_blocks(plan) < 25, (what, _plan_blocks(plan))
        finally:
            await tx.rollback()


async def test_closing_a_run_deletes_its_tasks_through_its_index_after_an_empty_table_was_analyzed(
    region: Region, client: Client
) -> None:
    handle = await client.start_workflow(NeverPolled, id="closing", task_queue=QUEUE)
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
