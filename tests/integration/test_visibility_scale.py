"""Visibility at a million runs: EXPLAIN shows every common filter served by an index.

The namespace is generated through the store's own write function
(ops/visibility_load.py), then each filter's list page (the exact statement
the server runs) and the selective counts are EXPLAINed. A plan that reads
the executions table sequentially fails the test.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from ops.pg import PgCluster
from ops.visibility_load import ATTRIBUTES, create_load_namespace, load_runs
from store import db
from store.visibility.listing import count_sql, list_sql
from tests.conftest import fresh_database

# Loading the million runs takes about 2-3 minutes on 2 cores; the default
# 300 s limit (setup included) left too little room on a busy machine.
pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

RUNS = int(os.environ.get("BATON_VISIBILITY_RUNS", "1000000"))
NS = "generated"
REGISTERED = {name: spec["type"] for name, spec in ATTRIBUTES.items()}

#: One filter per system attribute, and custom ones, as operators write them.
FILTERS = {
    "WorkflowId": "WorkflowId = 'load-4242'",
    "WorkflowId prefix": "WorkflowId STARTS_WITH 'load-4242'",
    "RunId": "RunId = '00000000-0000-0000-0000-000000000001'",
    "WorkflowType": "WorkflowType = 'Type7'",
    "ExecutionStatus": "ExecutionStatus = 'Running'",
    "TaskQueue": "TaskQueue = 'queue-3'",
    "StartTime": "StartTime > '2000-01-01T00:00:00Z'",
    "CloseTime": "CloseTime < '2000-01-01T00:00:00Z'",
    "ExecutionDuration": "ExecutionDuration > '599s'",
    "HistoryLength": "HistoryLength > 100",
    "Paused": "Paused = true",
    "BuildId": "BuildId = 'build-41'",
    "WorkerDeployment": "WorkerDeployment = 'payments'",
    "pinned on a build": "VersioningBehavior = 'pinned' AND BuildId = 'build-41'",
    "custom Keyword": "CustomerId = 'cust-4242'",
    "combined": "WorkflowType = 'Type7' AND ExecutionStatus = 'Running' AND CustomerId = 'cust-7'",
}
#: Counts of the selective filters (a count of "everything running" reads what it counts).
COUNTS = ["WorkflowId", "RunId", "WorkflowType", "custom Keyword", "ExecutionStatus"]


@pytest.fixture(scope="module")
async def loaded(pg: PgCluster, template_db: str) -> AsyncIterator[str]:
    dbname = fresh_database(pg, template_db)
    conns = [await db.connect(pg.dsn(dbname)) for _ in range(2)]
    try:
        await create_load_namespace(conns[0], NS, "region-a")
        seconds = await load_runs(conns, NS, RUNS)
        print(f"\nloaded {RUNS} runs in {seconds:.1f} s ({RUNS / seconds:.0f} runs/s)")
        yield pg.dsn(dbname)
    finally:
        for c in conns:
            await c.close()


def _nodes(plan: dict[str, Any]) -> list[dict[str, Any]]:
    out = [plan]
    for child in plan.get("Plans", []):
        out += _nodes(child)
    return out


async def _explain(conn: asyncpg.Connection, sql: str, params: list[Any]) -> list[dict[str, Any]]:
    plan = await conn.fetchval(f"EXPLAIN (FORMAT JSON) {sql}", *params)
    return _nodes(plan[0]["Plan"])


async def test_the_namespace_holds_a_million_runs(loaded: str) -> None:
    conn = await db.connect(loaded)
    try:
        n = await conn.fetchval("SELECT count(*) FROM executions WHERE namespace = $1", NS)
        events = await conn.fetchval("SELECT count(*) FROM history_events WHERE namespace = $1", NS)
    finally:
        await conn.close()
    assert n == RUNS and events == 2 * RUNS


@pytest.mark.parametrize("name", list(FILTERS))
async def test_no_filter_reads_the_table_sequentially(loaded: str, name: str) -> None:
    conn = await db.connect(loaded)
    try:
        sql, params, _ = list_sql(NS, FILTERS[name], REGISTERED, page_size=100)
        nodes = await _explain(conn, sql, params)
        scans = [n for n in nodes if n["Node Type"] == "Seq Scan"]
        assert not scans, f"{name}: {[(n['Node Type'], n.get('Relation Name')) for n in nodes]}"
        if name in COUNTS:
            sql, params = count_sql(NS, FILTERS[name], REGISTERED)
            nodes = await _explain(conn, sql, params)
            assert not [n for n in nodes if n["Node Type"] == "Seq Scan"], (name, nodes)
    finally:
        await conn.close()


async def test_a_deep_page_is_served_by_the_index_too(loaded: str) -> None:
    from store.visibility.listing import make_page_token

    conn = await db.connect(loaded)
    try:
        sql, params, _ = list_sql(NS, "WorkflowType = 'Type7'", REGISTERED, page_size=100)
        deep = min(5000, RUNS // 40)  # 50 pages of 100 down, at a million runs
        rows = await conn.fetch(f"{sql} OFFSET {deep}", *params)
        token = make_page_token("WorkflowType = 'Type7'", rows[0]["_sort"], rows[0])
        sql, params, _ = list_sql(
            NS, "WorkflowType = 'Type7'", REGISTERED, page_size=100, page_token=token
        )
        nodes = await _explain(conn, sql, params)
        assert not [n for n in nodes if n["Node Type"] == "Seq Scan"]
        page = await conn.fetch(sql, *params)
        assert len(page) == 101
        assert page[0]["workflow_id"] == rows[1]["workflow_id"]  # right after the token
    finally:
        await conn.close()
