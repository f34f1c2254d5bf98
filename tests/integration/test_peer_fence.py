"""A region deposed by a forced failover it did not hear of (its database did
not answer the failover, and the new active region's stream does not reach
it) learns the move from its peers: it stops acting as the active region
within seconds, refusing writes with the region that is active now and
firing none of its timers, instead of running the namespace beside it until
the stream returns."""

from __future__ import annotations

import dataclasses
import time
from datetime import timedelta

import pytest

from replication.failover import forced_failover
from tests.conftest import RegionPair
from tests.helpers import eventually
from tests.integration.test_run_state import HoldBack, fetchval, verified
from worker import Client, Worker, workflow
from worker.errors import NamespaceNotActiveError

pytestmark = pytest.mark.integration
NS, QUEUE = "deposed", "deposed"


@workflow.defn(name="Nap")
class Nap:
    @workflow.run
    async def run(self, seconds: float) -> str:
        await workflow.sleep(timedelta(seconds=seconds))
        return "woke"


async def test_a_region_that_missed_its_deposal_steps_down_by_its_peers_word(
    regions: RegionPair,
) -> None:
    rs = regions
    async with await Client.connect([rs.a.url, rs.b.url], namespace=NS) as client:
        await client.create_namespace(NS, regions=[rs.a.name, rs.b.name], active_region=rs.a.name)
        async with Worker(client, task_queue=QUEUE, workflows=[Nap]):
            nap = await client.start_workflow(Nap, 8.0, id="nap", task_queue=QUEUE)

            async def napping_in_b() -> bool:
                sql = "SELECT count(*) FROM history_events WHERE namespace = $1 AND event_type = $2"
                return int(await fetchval(rs.b, sql, NS, "TimerStarted")) == 1

            await eventually(napping_in_b, timeout=30, what="the timer replicated to region-b")
        # Region-a's database does not answer the failover, and nothing region-b
        # writes from now on ships: region-a hears of the move from no one but b.
        away = dataclasses.replace(rs.a.config.regions[rs.a.name], dsn="postgresql://127.0.0.1:1/x")
        config = dataclasses.replace(rs.a.config, regions={**rs.a.config.regions, rs.a.name: away})
        async with HoldBack(rs.b):
            result = await forced_failover(config, NS, rs.b.name)
            assert result.forced and result.version == 2
            async with await Client.connect(
                rs.a.url, namespace=NS, follow_failover=False, retry_for_s=0
            ) as only_a:
                t0 = time.monotonic()

                async def refused_in_a() -> NamespaceNotActiveError | None:
                    try:
                        await only_a.start_workflow(
                            Nap, 0.1, id=f"late-{time.monotonic()}", task_queue=QUEUE
                        )
                    except NamespaceNotActiveError as exc:
                        return exc
                    return None

                exc = await eventually(refused_in_a, timeout=20, what="region-a to step down")
                assert time.monotonic() - t0 < 10
                assert exc.active_region == rs.b.name
            # region-a holds no pending work: its copy of the timer will not fire
            timers = "SELECT count(*) FROM timers WHERE namespace = $1"
            assert int(await fetchval(rs.a, timers, NS)) == 0
        async with Worker(client, task_queue=QUEUE, workflows=[Nap]):
            assert await nap.result(timeout=30) == "woke"
    await verified(rs, NS)
