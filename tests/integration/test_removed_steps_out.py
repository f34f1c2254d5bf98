"""A region taken out of a namespace while it was away, after a forced
failover moved the namespace from it, steps down when it returns (its peers
say so) and then, once it holds nothing of the namespace unshipped, leaves
the namespace by itself: its own row no longer lists it and its namespace
list no longer shows the namespace, where both stayed until an operator ran
``remove-region`` again. A region's list shows only the namespaces it is a
region of, as a region holds only those."""

from __future__ import annotations

import dataclasses

import pytest

from replication.failover import forced_failover
from replication.migration import NotARegion, remove_region
from store.errors import Unavailable
from tests.conftest import RegionPair
from tests.helpers import eventually
from tests.integration.test_run_state import HoldBack, fetchval
from worker import Client

pytestmark = pytest.mark.integration
NS = "steps-out"


async def test_a_removed_region_leaves_the_namespace_after_it_steps_down(
    regions: RegionPair,
) -> None:
    rs = regions
    async with await Client.connect([rs.a.url, rs.b.url], namespace=NS) as client:
        await client.create_namespace(NS, regions=[rs.a.name, rs.b.name], active_region=rs.a.name)

        async def in_b() -> bool:
            return (
                int(await fetchval(rs.b, "SELECT count(*) FROM namespaces WHERE name = $1", NS))
                == 1
            )

        await eventually(in_b, timeout=30, what="the namespace in region-b")
    # region-a's database answers neither the failover nor the removal
    away = dataclasses.replace(rs.a.config.regions[rs.a.name], dsn="postgresql://127.0.0.1:1/x")
    config = dataclasses.replace(rs.a.config, regions={**rs.a.config.regions, rs.a.name: away})
    regions = "SELECT regions FROM namespaces WHERE name = $1"
    async with HoldBack(rs.b):
        await forced_failover(config, NS, rs.b.name)
        with pytest.raises(Unavailable):
            await remove_region(config, NS, rs.a.name)
        assert await fetchval(rs.b, regions, NS) == [rs.b.name]

        # its peer says region-a is out: it steps down, then leaves by itself

        async def left() -> bool:
            return await fetchval(rs.a, regions, NS) == [rs.b.name]

        await eventually(left, timeout=20, what="region-a to leave the namespace")
    assert await fetchval(rs.a, "SELECT active_region FROM namespaces WHERE name = $1", NS) == (
        rs.b.name
    )
    async with await Client.connect([rs.a.url], namespace=NS, follow_failover=False) as only_a:
        assert [n["name"] for n in await only_a.list_namespaces()] == []
    async with await Client.connect([rs.b.url], namespace=NS) as only_b:
        assert [n["name"] for n in await only_b.list_namespaces()] == [NS]
    # the rerun an operator may still make changes nothing
    with pytest.raises(NotARegion):
        await remove_region(rs.a.config, NS, rs.a.name)
