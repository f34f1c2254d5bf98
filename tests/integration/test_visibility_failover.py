"""Search attributes replicate with the history and answer the same query in every region."""

from __future__ import annotations

import asyncpg
import orjson
import pytest

from replication.failover import graceful_failover
from tests.apps.visibility import Tagged, record
from tests.conftest import RegionPair
from tests.helpers import eventually
from worker import Client, Worker

pytestmark = pytest.mark.integration
QUEUE = "visibility-failover"
QUERY = "CustomerId = 'c-1' AND Stage = 'charged' ORDER BY WorkflowId ASC"


async def listed(url: str, ns: str, query: str) -> list[tuple[str, dict[str, object]]]:
    async with await Client.connect(url, namespace=ns) as c:
        return [(e.workflow_id, e.search_attributes) async for e in c.list_workflows(query)]


async def test_upserted_attributes_answer_the_same_query_after_a_graceful_failover(
    regions: RegionPair,
) -> None:
    rs, ns = regions, "visible"
    async with await Client.connect([rs.a.url, rs.b.url], namespace=ns) as client:
        await _upserts_survive_failover(rs, ns, client)


async def _upserts_survive_failover(rs: RegionPair, ns: str, client: Client) -> None:
    await client.create_namespace(ns, regions=[rs.a.name, rs.b.name], active_region=rs.a.name)
    for name, kind in [("CustomerId", "Keyword"), ("Stage", "Keyword"), ("Amount", "Int")]:
        await client.add_search_attribute(name, kind)
    handles = []
    async with Worker(client, task_queue=QUEUE, workflows=[Tagged], activities=[record]):
        for i in range(3):
            customer = "c-1" if i < 2 else "c-2"
            handles.append(
                await client.start_workflow(Tagged, customer, id=f"t-{i}", task_queue=QUEUE)
            )

        async def charged_in_a() -> bool:
            # all three runs, not only the two the query below selects: the count
            # after the failover groups every run that has been charged
            return len(await listed(rs.a.url, ns, "Stage = 'charged'")) == 3

        await eventually(charged_in_a, timeout=30, what="every second upsert in region-a")
    in_a = await listed(rs.a.url, ns, QUERY)
    assert [wid for wid, _ in in_a] == ["t-0", "t-1"]
    await graceful_failover(rs.a.config, ns, rs.b.name, timeout_s=60)
    # the registry went along with the namespace, the attributes with the runs
    assert await listed(rs.b.url, ns, QUERY) == in_a
    async with await Client.connect(rs.b.url, namespace=ns) as in_b:
        counted = await in_b.count_workflows("Amount = 42", group_by="CustomerId")
        assert {g["value"]: g["count"] for g in counted["groups"]} == {"c-1": 2, "c-2": 1}
        # a worker with nothing cached replays the upserts in region-b
        async with Worker(
            in_b, task_queue=QUEUE, workflows=[Tagged], activities=[record], max_cached_workflows=0
        ):
            for h in handles:
                await in_b.get_workflow_handle(h.id).signal("done")
            results = [await in_b.get_workflow_handle(h.id).result(timeout=30) for h in handles]
        assert results[0] == {"CustomerId": "c-1", "Stage": "charged", "Amount": 42}
        for h in handles:
            events = await in_b.get_workflow_handle(h.id).history()
            failed = [e for e in events if e["event_type"] == "WorkflowTaskFailed"]
            assert not [e for e in failed if "NonDeterminism" in str(e["attributes"])], failed
        done = await listed(rs.b.url, ns, "ExecutionStatus = 'Completed' AND Stage = 'charged'")
        assert len(done) == 3


async def test_a_search_attribute_added_after_the_namespace_replicated_reaches_the_standby(
    regions: RegionPair,
) -> None:
    rs, ns = regions, "later"

    async def registered_in_b() -> dict[str, object] | None:
        """Region-b's registry of the namespace (None: it has no such namespace)."""
        conn = await asyncpg.connect(rs.b.dsn)
        try:
            row = await conn.fetchrow(
                "SELECT search_attributes FROM namespaces WHERE name = $1", ns
            )
        finally:
            await conn.close()
        return None if row is None else orjson.loads(row["search_attributes"])

    async with await Client.connect([rs.a.url, rs.b.url], namespace=ns) as client:
        await client.create_namespace(ns, regions=[rs.a.name, rs.b.name], active_region=rs.a.name)

        async def has_namespace() -> bool:
            return await registered_in_b() is not None

        await eventually(has_namespace, timeout=30, what="the namespace in region-b")
        assert "CustomerId" not in (await registered_in_b() or {})
        # a message that changes only the registry must still be applied
        await client.add_search_attribute("CustomerId", "Keyword")

        async def in_b() -> bool:
            return "CustomerId" in (await registered_in_b() or {})

        await eventually(in_b, timeout=30, what="the new search attribute in region-b")
