"""A region lost while a forced failover moved its namespace away, and then
taken out of the namespace before it returned, comes back holding itself the
namespace's active region: it steps down before it acts, as a region deposed
but still a member does, and a rerun of ``remove-region`` finishes the removal
instead of saying nothing changed; a rerun before its servers have made it
step down says so, where it answered "not a region: nothing changed" while
region-a's own row still listed it as the active region."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from replication.failover import forced_failover
from replication.migration import NotARegion, remove_region
from store import db
from store.errors import Unavailable
from tests.helpers import eventually
from tests.integration.test_peer_fence import Nap
from tests.integration.test_run_state import HoldBack
from tests.multiregion import Regions
from worker import Client, Worker
from worker.errors import NamespaceNotActiveError

pytestmark = pytest.mark.e2e
NS, QUEUE, N = "removed", "removed", 5


async def test_a_region_removed_while_away_steps_down_when_it_returns(
    a_with_own_database: Regions,
) -> None:
    rs = a_with_own_database
    a, b = rs[0], rs[1]
    active = "SELECT active_region FROM namespaces WHERE name = $1"
    count = "SELECT count(*) FROM history_events WHERE namespace = $1 AND event_type = $2"
    async with await Client.connect(rs.urls, namespace=NS) as client:
        await client.create_namespace(NS, regions=[a.name, b.name], active_region=a.name)
        async with Worker(client, task_queue=QUEUE, workflows=[Nap]):
            naps = [
                await client.start_workflow(Nap, 4.0, id=f"nap-{i}", task_queue=QUEUE)
                for i in range(N)
            ]

            async def napping_in_b() -> bool:
                return await rs.fetchval(b.name, count, NS, "TimerStarted") == N

            await eventually(napping_in_b, timeout=30, what="the timers replicated to region-b")
            rs.kill(a.name)
            await asyncio.to_thread(a.pg.stop)
            await forced_failover(rs.config, NS, b.name)
            # region-b's row drops region-a; region-a's database cannot be told
            with pytest.raises(Unavailable):
                await remove_region(rs.config, NS, a.name)
            # a rerun while it is still down says so again, not "nothing changed"
            with pytest.raises(Unavailable):
                await remove_region(rs.config, NS, a.name)
            assert await asyncio.gather(*(h.result(timeout=60) for h in naps)) == ["woke"] * N
        # region-a's database returns holding itself active, its timers long due
        await asyncio.to_thread(a.pg.start)
        assert await rs.fetchval(a.name, active, NS) == a.name
        # a rerun now is not "nothing changed": region-a still lists itself,
        # active, and must step down (and ship what it had not) before it leaves
        with pytest.raises(Unavailable, match="still holds itself the active region"):
            await remove_region(rs.config, NS, a.name)
        assert await rs.fetchval(a.name, active, NS) == a.name
        await rs.start(a.name)
        async with await Client.connect(
            a.url, namespace=NS, follow_failover=False, retry_for_s=0
        ) as only_a:
            with pytest.raises(NamespaceNotActiveError) as refused:
                await only_a.start_workflow(Nap, 0.1, id="late", task_queue=QUEUE)
        assert refused.value.active_region == b.name
        await asyncio.sleep(2)
        assert await rs.fetchval(a.name, count, NS, "TimerFired") == 0
        assert await rs.fetchval(a.name, active, NS) == b.name
        # stepped down, it leaves by itself (region-b no longer lists it); a
        # rerun finishes the removal if it has not yet, or changes nothing
        await _rerun_removal(rs)


async def test_a_removal_rerun_waits_for_what_the_region_had_not_shipped(
    a_with_own_database: Regions,
) -> None:
    rs = a_with_own_database
    a, b = rs[0], rs[1]
    async with await Client.connect(rs.urls, namespace=NS) as client:
        await client.create_namespace(NS, regions=[a.name, b.name], active_region=a.name)

        async def in_b() -> bool:
            return await rs.fetchval(b.name, "SELECT count(*) FROM namespaces") == 1

        await eventually(in_b, timeout=30, what="the namespace in region-b")
        async with HoldBack(a):  # type: ignore[arg-type]  # (it needs only a dsn)
            # acknowledged in region-a, never shipped: it is lost with it
            await client.start_workflow(Nap, 0.1, id="tail", task_queue=QUEUE)
            rs.kill(a.name)
            await asyncio.to_thread(a.pg.stop)
    await forced_failover(rs.config, NS, b.name)
    with pytest.raises(Unavailable):
        await remove_region(rs.config, NS, a.name)
    await asyncio.to_thread(a.pg.start)
    # region-a stepped down (as its fence makes it) but its publisher has not
    # shipped its tail yet: taking it out now would drop the tail
    conn = await db.connect(a.dsn)
    try:
        await conn.execute(
            "UPDATE namespaces SET active_region = $2, failover_version = 2 WHERE name = $1",
            NS,
            b.name,
        )
    finally:
        await conn.close()
    with pytest.raises(Unavailable, match="not shipped yet") as waiting:
        await remove_region(rs.config, NS, a.name)
    assert waiting.value.details["unshipped"] >= 1
    await rs.start(a.name)

    async def shipped() -> bool:
        return await rs.fetchval(a.name, "SELECT count(*) FROM outbox") == 0

    await eventually(shipped, timeout=30, what="region-a to ship its tail")
    await _rerun_removal(rs)

    async def started_again_in_b() -> bool:
        sql = "SELECT count(*) FROM executions WHERE namespace = $1 AND workflow_id = 'tail'"
        return await rs.fetchval(b.name, sql, NS) == 1

    await eventually(started_again_in_b, timeout=30, what="the tail's start applied in region-b")


async def _rerun_removal(rs: Regions) -> None:
    a, b = rs[0], rs[1]
    with contextlib.suppress(NotARegion):  # region-a may have left by itself first
        assert await remove_region(rs.config, NS, a.name) == [b.name]
    assert await rs.fetchval(a.name, "SELECT regions FROM namespaces WHERE name = $1", NS) == [
        b.name
    ]
