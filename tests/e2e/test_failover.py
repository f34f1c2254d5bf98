"""Graceful failover of a namespace with workflows mid-flight, on real Kafka and PostgreSQL."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from replication.failover import graceful_failover
from replication.sql import QUERIES as RQ
from store import db
from store.errors import NamespaceInHandover
from store.sql import QUERIES as Q
from tests.apps.workflows import ALL_ACTIVITIES, Sleeper
from tests.conftest import RegionPair
from tests.helpers import eventually
from worker import Client, Worker

pytestmark = pytest.mark.e2e
QUEUE = "failover"
N = 40


def comparable(events: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [(e["event_id"], e["event_type"], e["version"], e["attributes"]) for e in events]


async def test_graceful_failover_moves_running_workflows(regions: RegionPair) -> None:
    a, b = regions.a, regions.b
    async with await Client.connect([a.url, b.url], namespace="moving") as client:
        await client.create_namespace("moving", regions=[a.name, b.name], active_region=a.name)
        async with Worker(client, task_queue=QUEUE, workflows=[Sleeper], activities=ALL_ACTIVITIES):
            handles = [
                await client.start_workflow(Sleeper, i, 6.0, id=f"mv-{i}", task_queue=QUEUE)
                for i in range(N)
            ]

            async def sleeping() -> bool:
                d = await client.get_workflow_handle(f"mv-{N - 1}").describe()
                return bool(d["pending_timers"])

            await eventually(sleeping, timeout=30, what="workflows on their timers")
            t0 = time.monotonic()
            result = await graceful_failover(a.config, "moving", b.name, timeout_s=60)
            assert result.source == a.name and result.target == b.name
            assert result.version == 2  # region-b's initial version, above 1
            assert result.workflows_rebuilt >= 1
            results = await asyncio.gather(*[h.result(timeout=90) for h in handles])
            # the workflows carry on in B at once (not after a long-poll times out);
            # their 6 s timers start before the handover and fire in B
            assert time.monotonic() - t0 < 30
        assert results == [i + 2 for i in range(N)]
        # the client now talks to B: the namespace is active there
        assert client.transport.active_endpoint == b.url
        async with await Client.connect(a.url, namespace="moving", retry_for_s=0) as in_a:
            desc = await in_a.describe_namespace("moving")
            assert desc["active_region"] == b.name and desc["failover_version"] == 2

            async def converged() -> bool:
                for i in range(N):
                    ha = await in_a.get_workflow_handle(f"mv-{i}").history()
                    hb = await client.get_workflow_handle(f"mv-{i}").history()
                    if comparable(ha) != comparable(hb):
                        return False
                return True

            await eventually(converged, timeout=60, what="both regions' histories equal")
        # every run closed in B, under B's version; its timer fired once
        for i in range(N):
            events = await client.get_workflow_handle(f"mv-{i}").history()
            assert events[-1]["event_type"] == "WorkflowExecutionCompleted"
            assert events[-1]["version"] == 2
            kinds = [e["event_type"] for e in events]
            assert kinds.count("TimerFired") == 1
            versions = [e["version"] for e in events]
            assert versions == sorted(versions)  # versions only grow along a history


async def test_a_failover_while_another_hands_over_is_refused_and_changes_nothing(
    regions: RegionPair,
) -> None:
    a, b = regions.a, regions.b
    ns = "busy"
    async with await Client.connect([a.url, b.url], namespace=ns) as client:
        await client.create_namespace(ns, regions=[a.name, b.name], active_region=a.name)
    row_sql = "SELECT active_region, failover_version, state FROM namespaces WHERE name = $1"

    async def row(dsn: str) -> tuple[Any, ...] | None:
        conn = await db.connect(dsn)
        try:
            r = await conn.fetchrow(row_sql, ns)
            return None if r is None else tuple(r)
        finally:
            await conn.close()

    await eventually(lambda: row(b.dsn), timeout=30, what="the namespace replicated to b")
    # A failover is handing over: it holds the lock and the namespace is in
    # handover in a, its stream not yet drained.
    first = await db.connect(a.dsn)
    try:
        assert await first.fetchval(RQ["try_failover_lock"], ns)
        assert await first.fetchval(Q["set_namespace_state"], ns, a.name, "handover") == 1
        with pytest.raises(NamespaceInHandover, match="already running"):
            await graceful_failover(a.config, ns, b.name, timeout_s=10)
        # nothing moved, and the running failover's handover stands
        assert await row(a.dsn) == (a.name, 1, "handover")
        assert await row(b.dsn) == (a.name, 1, "active")
    finally:
        await first.close()
    # That failover died (its lock went with its connection): a new one takes
    # its handover over and finishes the move.
    result = await graceful_failover(a.config, ns, b.name, timeout_s=30)
    assert (result.source, result.target, result.version) == (a.name, b.name, 2)
    assert await row(b.dsn) == (b.name, 2, "active")
