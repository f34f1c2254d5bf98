"""Pause across regions: a paused run is paused in region-b after a failover,
and a pause racing the failover is refused with a retryable error or in
effect in region-b, never lost."""

from __future__ import annotations

import asyncio

import pytest

from replication.failover import graceful_failover
from tests.apps.visibility import Waiter
from tests.conftest import RegionPair
from tests.helpers import eventually
from worker import Client, Worker
from worker.errors import BatonError

pytestmark = pytest.mark.integration
QUEUE, NS, N = "pausing", "paused", 30


async def test_pause_holds_across_a_failover_and_a_racing_pause_is_never_lost(
    regions: RegionPair,
) -> None:
    rs = regions
    async with await Client.connect([rs.a.url, rs.b.url], namespace=NS) as client:
        await client.create_namespace(NS, regions=[rs.a.name, rs.b.name], active_region=rs.a.name)
        ids = [f"w-{i:02}" for i in range(N)]
        async with Worker(client, task_queue=QUEUE, workflows=[Waiter]):
            for wid in ids:
                await client.start_workflow(Waiter, id=wid, task_queue=QUEUE)

            async def started() -> bool:
                q = "WorkflowType = 'Waiter' AND HistoryLength >= 4"
                return int((await client.count_workflows(q))["count"]) == N

            await eventually(started, timeout=30, what="every first task")
            await client.get_workflow_handle(ids[0]).pause("before the failover")

            # the rest are paused through region-a alone, without retries, while
            # the namespace moves
            outcomes: dict[str, str] = {}
            async with await Client.connect(rs.a.url, namespace=NS, retry_for_s=0) as only_a:

                async def pause(wid: str, delay: float) -> None:
                    await asyncio.sleep(delay)
                    try:
                        await only_a.get_workflow_handle(wid).pause("racing the failover")
                        outcomes[wid] = "paused"
                    except BatonError as exc:
                        assert exc.retryable, exc
                        outcomes[wid] = exc.code

                await asyncio.gather(
                    graceful_failover(rs.a.config, NS, rs.b.name, timeout_s=60),
                    *(pause(wid, i * 0.03) for i, wid in enumerate(ids[1:])),
                )
            refused = sorted(w for w, o in outcomes.items() if o != "paused")
            async with await Client.connect(rs.b.url, namespace=NS) as in_b:
                for wid in ids:
                    h = in_b.get_workflow_handle(wid)
                    if wid in refused:
                        await h.pause("retried after the failover")
                    d = await h.describe()
                    assert d["execution"]["paused"], (wid, outcomes.get(wid))
                    assert d["execution"]["last_write_version"] >= 1
                assert int((await in_b.count_workflows("Paused = true"))["count"]) == N
                first = (await in_b.get_workflow_handle(ids[0]).describe())["execution"]
                assert first["pause"]["reason"] == "before the failover"
                for wid in ids:
                    await in_b.get_workflow_handle(wid).signal("note", "stop")
                await asyncio.sleep(0.5)
                running = "WorkflowType = 'Waiter' AND ExecutionStatus = 'Running'"
                assert int((await in_b.count_workflows(running))["count"]) == N
                for wid in ids:
                    await in_b.get_workflow_handle(wid).unpause("region-b takes over")
                for wid in ids:
                    assert await in_b.get_workflow_handle(wid).result(timeout=60) == ["stop"]
        print(f"\npauses racing the failover: {outcomes}")
