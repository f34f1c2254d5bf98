"""A start re-applied from a losing branch after a forced failover is the
client's start: the run it gives in the new region has the search attributes
and the versioning behaviour the client asked for, so a list by them finds it
there as it found it in the lost region. An attribute the new region no
longer takes is left out, and the run still starts."""

from __future__ import annotations

from typing import Any

import pytest

from replication.admin import list_conflicts
from replication.failover import forced_failover
from tests.conftest import RegionPair
from tests.helpers import eventually
from tests.integration.test_run_state import QUEUE, HoldBack, Tally, events_in, two_region_ns

pytestmark = pytest.mark.integration


async def test_a_re_applied_start_keeps_its_search_attributes_and_versioning(
    regions: RegionPair,
) -> None:
    rs, ns = regions, "reapplied-start"
    client = await two_region_ns(rs, ns)
    await client.add_search_attribute("Customer", "Keyword")
    await client.add_search_attribute("Region", "Keyword")
    await client.start_workflow(Tally, id="warm", task_queue=QUEUE)
    await eventually(lambda: events_in(rs.b, ns, "warm"), what="the namespace in B")
    async with HoldBack(rs.a):
        # acknowledged by region-a, never shipped
        await client.start_workflow(
            Tally,
            id="lost",
            task_queue=QUEUE,
            search_attributes={"Customer": "c-1", "Region": "north"},
            versioning_behavior="pinned",
        )
        in_a = (await client.get_workflow_handle("lost").describe())["execution"]
        assert in_a["versioning_behavior"] == "pinned"
        await forced_failover(rs.a.config, ns, rs.b.name)
        # region-b no longer takes one of them
        await client.remove_search_attribute("Region")

    async def reapplied() -> list[Any]:
        rows = [c for c in await list_conflicts(rs.a.config, ns) if c["region"] == rs.b.name]
        return [o for c in rows for o in c["reapplied"]]

    outcomes = await eventually(reapplied, timeout=30, what="B to re-apply the lost start")
    assert [o["outcome"] for o in outcomes] == ["re-applied"], outcomes
    in_b = (await client.get_workflow_handle("lost").describe())["execution"]
    assert in_b["search_attributes"] == {"Customer": "c-1"}
    assert in_b["versioning_behavior"] == "pinned"
    assert int((await client.count_workflows("Customer = 'c-1'"))["count"]) == 1
