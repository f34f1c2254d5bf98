"""A region lost with its database while a forced failover moved its namespace
comes back before the new active region's stream reaches it: it asks its
peers before it runs its loops or serves, so it fires none of the timers that
fell due while it was away and takes no write, and it converges once the
stream runs."""

from __future__ import annotations

import asyncio

import pytest

from replication.failover import forced_failover
from replication.verify import verify_namespace
from tests.helpers import eventually
from tests.integration.test_peer_fence import Nap
from tests.integration.test_run_state import HoldBack
from tests.multiregion import Regions
from worker import Client, Worker
from worker.errors import NamespaceNotActiveError

pytestmark = pytest.mark.e2e
NS, QUEUE, N = "returns", "returns", 20


async def test_a_region_back_from_a_forced_failover_steps_down_before_it_acts(
    a_with_own_database: Regions,
) -> None:
    rs = a_with_own_database
    a, b = rs[0], rs[1]
    count = "SELECT count(*) FROM history_events WHERE namespace = $1 AND event_type = $2"
    async with await Client.connect(rs.urls, namespace=NS) as client:
        await client.create_namespace(NS, regions=[a.name, b.name], active_region=a.name)
        async with Worker(client, task_queue=QUEUE, workflows=[Nap]):
            naps = [
                await client.start_workflow(Nap, 5.0, id=f"nap-{i}", task_queue=QUEUE)
                for i in range(N)
            ]

            async def napping_in_b() -> bool:
                return await rs.fetchval(b.name, count, NS, "TimerStarted") == N

            await eventually(napping_in_b, timeout=30, what="the timers replicated to region-b")
            # region-a is lost with its database: the failover cannot tell it
            rs.kill(a.name)
            await asyncio.to_thread(a.pg.stop)
            async with HoldBack(b):  # type: ignore[arg-type]  # (it needs only a dsn)
                # and nothing region-b writes from now on reaches it by the stream
                await forced_failover(rs.config, NS, b.name)
                assert await asyncio.gather(*(h.result(timeout=60) for h in naps)) == ["woke"] * N
                # region-a returns, its timers long due
                await asyncio.to_thread(a.pg.start)
                await rs.start(a.name)
                async with await Client.connect(
                    a.url, namespace=NS, follow_failover=False, retry_for_s=0
                ) as only_a:
                    with pytest.raises(NamespaceNotActiveError) as refused:
                        await only_a.start_workflow(Nap, 0.1, id="late", task_queue=QUEUE)
                assert refused.value.active_region == b.name
                await asyncio.sleep(2)
                assert await rs.fetchval(a.name, count, NS, "TimerFired") == 0
        # the stream runs again: region-a converges to region-b's histories

        async def clean() -> bool:
            return (await verify_namespace(rs.config, NS)).clean

        await eventually(clean, timeout=90, interval=1.0, what="verify clean")
