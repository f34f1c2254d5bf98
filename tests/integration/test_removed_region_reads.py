"""A region taken out of a namespace keeps the histories it held but applies
nothing more of it, so what it holds only grows older. It went on answering
reads of the namespace from that copy: after a migration (add C, fail over,
remove A) a client whose calls went to A saw its runs as they were at the
removal, and waited on a result that A would never learn, forever. It sends
such a client to the namespace's active region instead, as a standby that
lacks a run does."""

from __future__ import annotations

import aiohttp
import pytest

from replication.failover import graceful_failover
from replication.migration import remove_region
from tests.conftest import RegionPair
from tests.helpers import eventually
from worker import BatonError, Client, Worker, workflow

pytestmark = pytest.mark.integration
NS, QUEUE = "moved-away", "moved-away"


@workflow.defn(name="Waits")
class Waits:
    def __init__(self) -> None:
        self.go = False

    @workflow.run
    async def run(self) -> str:
        await workflow.wait_condition(lambda: self.go)
        return "done"

    @workflow.signal
    def release(self) -> None:
        self.go = True


async def test_a_removed_region_sends_reads_to_the_active_region(regions: RegionPair) -> None:
    rs = regions
    async with await Client.connect([rs.a.url, rs.b.url], namespace=NS) as client:
        await client.create_namespace(NS, regions=[rs.a.name, rs.b.name], active_region=rs.a.name)
        async with Worker(client, task_queue=QUEUE, workflows=[Waits]):
            h = await client.start_workflow(Waits, id="waits", task_queue=QUEUE)

            async def in_b() -> bool:
                async with await Client.connect(
                    rs.b.url, namespace=NS, follow_failover=False
                ) as only_b:
                    try:
                        d = await only_b.get_workflow_handle("waits").describe()
                    except BatonError:  # not there yet
                        return False
                    return bool(d["execution"]["history_length"] >= 4)

            await eventually(in_b, timeout=30, what="the run replicated to region-b")
            async with await Client.connect(rs.a.url, namespace=NS) as only_a:
                # region-a's server has read the namespace (and remembers it)
                assert (await only_a.describe_namespace())["regions"] == [rs.a.name, rs.b.name]
            await graceful_failover(rs.a.config, NS, rs.b.name, timeout_s=30)
            assert await remove_region(rs.a.config, NS, rs.a.name) == [rs.b.name]
            await h.signal("release")
            assert await h.result(timeout=30) == "done"

        # a client that reaches region-a first is sent on to region-b
        async with await Client.connect(rs.a.url, namespace=NS) as via_a:
            handle = via_a.get_workflow_handle("waits")
            assert await handle.result(timeout=10) == "done"
            described = await handle.describe()
            assert described["execution"]["status"] == "completed"
            assert [w.status async for w in via_a.list_workflows()] == ["completed"]
            ns = await via_a.describe_namespace()
            assert ns["regions"] == [rs.b.name]
            assert ns["executions"]["completed"] == 1
            assert sum(ns["executions"].values()) == 1, ns

        # over HTTP the answer names where to ask
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"{rs.a.url}/api/v1/namespaces/{NS}/workflows/waits") as resp,
        ):
            body = await resp.json()
        assert resp.status == 421, body
        assert body["error"]["code"] == "NAMESPACE_NOT_ACTIVE"
        assert body["error"]["details"]["active_url"] == rs.b.url
        assert f"{rs.a.name} is no longer a region of namespace" in body["error"]["message"]
