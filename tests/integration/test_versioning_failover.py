"""Worker versioning across regions: a ramp assigns exactly the ids the hash
assigns, deployment state and pins replicate with the namespace, and after a
graceful failover mid-rollout region-b routes the same way."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from replication.failover import graceful_failover
from tests.conftest import RegionPair
from tests.helpers import eventually
from tests.versioning_helpers import shop_worker as build
from versioning import ramp_bucket
from worker import Client
from worker.errors import NamespaceNotActiveError, NamespaceNotFoundError

pytestmark = pytest.mark.integration
QUEUE, NS = "shop", "rollout"
IDS = [f"ramp-{i}" for i in range(500)]


async def builds_of(client: Client, query: str) -> dict[str, str | None]:
    return {e.workflow_id: e.raw["build_id"] async for e in client.list_workflows(query)}


async def start_flows(client: Client) -> dict[str, str | None]:
    """Start a Flow for every id; once each first task ran, the build that ran it."""
    for i in range(0, len(IDS), 50):
        await asyncio.gather(
            *(client.start_workflow("Flow", id=wid, task_queue=QUEUE) for wid in IDS[i : i + 50])
        )
    query = "WorkflowType = 'Flow' AND ExecutionStatus = 'Running' AND BuildId IS NOT NULL"

    async def all_ran() -> bool:
        return int((await client.count_workflows(query))["count"]) == len(IDS)

    await eventually(all_ran, timeout=120, what="every Flow's first task")
    return await builds_of(client, "WorkflowType = 'Flow' AND ExecutionStatus = 'Running'")


def expected(percent: float) -> dict[str, str | None]:
    return {wid: "2" if ramp_bucket(wid) < percent else "1" for wid in IDS}


def routing(d: dict[str, Any]) -> dict[str, Any]:
    """What replicates of a deployment's description (pollers are each region's own)."""
    return {
        **{k: d[k] for k in ("current", "ramping", "ramping_percent", "revision")},
        "versions": [
            {k: v[k] for k in ("build_id", "status", "task_queues", "open_pinned")}
            for v in d["versions"]
        ],
    }


async def test_a_ramp_routes_by_the_hash_and_a_failover_mid_rollout_routes_the_same(
    regions: RegionPair,
) -> None:
    rs = regions
    async with await Client.connect([rs.a.url, rs.b.url], namespace=NS) as client:
        await client.create_namespace(NS, regions=[rs.a.name, rs.b.name], active_region=rs.a.name)
        async with build(client, "1"), build(client, "2"):

            async def registered() -> bool:
                try:
                    d = await client.describe_deployment("shop")
                except Exception:
                    return False
                return len(d["versions"]) == 2

            await eventually(registered, timeout=20, what="both builds registered")
            await client.set_current_version("shop", "1")
            orders = [
                await client.start_workflow("Order", i, id=f"order-{i}", task_queue=QUEUE)
                for i in range(20)
            ]

            async def pinned() -> bool:
                q = "WorkflowType = 'Order' AND VersioningBehavior = 'pinned' AND BuildId = '1'"
                return int((await client.count_workflows(q))["count"]) == 20

            await eventually(pinned, timeout=30, what="20 Orders pinned on build 1")

            await client.set_ramping_version("shop", "2", 20)
            got = await start_flows(client)
            assert got == expected(20)
            assert 60 < sum(b == "2" for b in got.values()) < 140  # the hash spreads them

            # mid-rollout: ramp to 50%, then fail over
            await client.set_ramping_version("shop", "2", 50)
            in_a = routing(await client.describe_deployment("shop"))
            for i in range(0, len(IDS), 50):
                await asyncio.gather(
                    *(
                        client.get_workflow_handle(wid).terminate("next round")
                        for wid in IDS[i : i + 50]
                    )
                )
            await graceful_failover(rs.a.config, NS, rs.b.name, timeout_s=60)

            # region-a is the standby now: it refuses, naming the active region
            async with httpx.AsyncClient() as http:
                r = await http.post(
                    f"{rs.a.url}/api/v1/namespaces/{NS}/deployments/shop/current",
                    json={"build_id": "2"},
                )
            assert r.status_code == 421
            assert r.json()["error"]["code"] == "NAMESPACE_NOT_ACTIVE"
            assert rs.b.name in r.json()["error"]["message"]

            async with await Client.connect(rs.b.url, namespace=NS) as in_b:
                assert routing(await in_b.describe_deployment("shop")) == in_a
                # the same ids, new runs, started in region-b: the same hash at 50%
                assert await start_flows(in_b) == expected(50)
                for h in orders:
                    await in_b.get_workflow_handle(h.id).signal("proceed")
                for h in orders:
                    assert await in_b.get_workflow_handle(h.id).result(timeout=60) == "v1"
                for h in orders:
                    events = await in_b.get_workflow_handle(h.id).history()
                    ran = {
                        e["attributes"].get("worker_version")
                        for e in events
                        if e["event_type"] == "WorkflowTaskCompleted"
                    }
                    assert ran == {"shop:1"}, h.id
                v1 = next(
                    v
                    for v in (await in_b.describe_deployment("shop"))["versions"]
                    if v["build_id"] == "1"
                )
                assert (v1["status"], v1["open_pinned"]) == ("current", 0)


async def test_a_standby_sends_describe_to_the_active_region_whose_workers_poll_there(
    regions: RegionPair,
) -> None:
    """`baton deployment describe` reads from the first region of its config.
    After a failover that is a standby, whose pollers are none: it showed every
    version with no live poller while the builds' workers polled the active
    region. A standby now names the active region and the SDK asks there."""
    rs = regions
    async with await Client.connect([rs.a.url, rs.b.url], namespace=NS) as client:
        await client.create_namespace(NS, regions=[rs.a.name, rs.b.name], active_region=rs.a.name)
        async with build(client, "1"):

            async def polled() -> bool:
                try:
                    d = await client.describe_deployment("shop")
                except Exception:
                    return False
                return d["versions"][0]["live_pollers"] >= 1

            await eventually(polled, timeout=20, what="build 1 polling region-a")
            await client.set_current_version("shop", "1")
            async with await Client.connect(rs.b.url, namespace=NS) as b_only:

                async def replicated() -> bool:
                    try:
                        return any(d["current"] == "1" for d in await b_only.list_deployments())
                    except NamespaceNotFoundError:
                        return False

                await eventually(replicated, timeout=30, what="the deployment in region-b")
            # a CLI whose config names the standby first
            async with await Client.connect([rs.b.url, rs.a.url], namespace=NS) as b_first:
                d = await b_first.describe_deployment("shop")
                assert d["current"] == "1"
                assert d["versions"][0]["live_pollers"] >= 1
            async with await Client.connect(
                rs.b.url, namespace=NS, follow_failover=False
            ) as standby:
                with pytest.raises(NamespaceNotActiveError, match=rs.a.name):
                    await standby.describe_deployment("shop")
