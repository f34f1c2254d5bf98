"""A graceful failover whose source's database goes down during the drain.

The namespace is in handover in the source and nobody can put it back while
that database is down: the failover's error says it is left in handover and
names both ways out, as for a failover whose process was killed.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ops.pg import PgCluster
from replication.failover import graceful_failover
from store import db
from store.errors import Unavailable
from tests.helpers import eventually
from tests.multiregion import Regions, server_regions
from worker import Client

pytestmark = pytest.mark.e2e
NS = "lost-source"


@pytest.fixture
async def regions(
    pg: PgCluster, template_db: str, kafka: str, state_dir: Path, tmp_path: Path
) -> AsyncIterator[Regions]:
    async with server_regions(
        pg, template_db, kafka, state_dir, tmp_path, count=2, own_pg=(0,)
    ) as rs:
        yield rs


@pytest.mark.timeout(120)
async def test_a_failover_that_loses_its_source_says_the_namespace_is_left_in_handover(
    regions: Regions,
) -> None:
    rs = regions
    a, b = list(rs.regions)
    async with await Client.connect(rs.urls, namespace=NS, retry_for_s=30) as client:
        await client.create_namespace(NS, regions=[a, b], active_region=a)

        async def in_b() -> bool:
            return bool(await rs.fetchval(b, "SELECT count(*) FROM namespaces"))

        await eventually(in_b, timeout=30, what="the namespace in the target")
        # The target's servers answer but apply nothing more of the namespace:
        # its appliers wait for the namespace's fence, held here. The drain waits.
        stall = await db.connect(rs.regions[b].dsn)
        await stall.execute("SELECT pg_advisory_lock(hashtextextended('baton-ns:' || $1, 0))", NS)
        for i in range(5):
            await client.start_workflow("Nothing", id=f"w-{i}", task_queue="q")
    try:
        failover = asyncio.create_task(graceful_failover(rs.config, NS, b, timeout_s=60))

        async def in_handover() -> bool:
            state = await rs.fetchval(a, "SELECT state FROM namespaces WHERE name = $1", NS)
            return state == "handover"

        await eventually(in_handover, timeout=20, what="the handover began")
        await asyncio.to_thread(rs.regions[a].pg.stop, 30, "immediate")
        with pytest.raises(Unavailable) as err:
            await failover
    finally:
        await stall.close()
    message = err.value.message
    assert f"{NS} is left in handover in {a}" in message, message
    assert f"`baton failover {NS} --to {a}`" in message, message
    assert f"`baton failover {NS} --to {b}`" in message, message
    assert err.value.details["state"] == "handover"

    # the way out it names works once the database is back
    await asyncio.to_thread(rs.regions[a].pg.start)
    assert await in_handover()
    back = await graceful_failover(rs.config, NS, a)
    assert back.handover_abandoned
    state = await rs.fetchval(a, "SELECT state FROM namespaces WHERE name = $1", NS)
    assert state == "active"
