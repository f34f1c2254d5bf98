"""``remove-region`` of a region deposed by a forced failover, whose database
answers but which cannot leave the namespace yet (it has not stepped down, or
holds batches of the namespace it has not shipped), says which and what to do,
with the region in ``details``: the answer used to wrap that reason in
"its database could not be told ... run it again once it is up", though the
database was up and what it waited for was its servers."""

from __future__ import annotations

import pytest

from replication.failover import forced_failover
from replication.migration import remove_region
from store.errors import Unavailable
from tests.conftest import RegionPair
from tests.helpers import eventually
from tests.integration.test_run_state import QUEUE, HoldBack, fetchval, two_region_ns

pytestmark = pytest.mark.integration
NS = "nottold"


async def test_a_region_that_cannot_leave_yet_says_why_not_that_it_is_down(
    regions: RegionPair,
) -> None:
    rs = regions
    client = await two_region_ns(rs, NS)

    async def in_b() -> bool:
        return await fetchval(rs.b, "SELECT count(*) FROM namespaces WHERE name = $1", NS) == 1

    await eventually(in_b, timeout=30, what="the namespace in region-b")
    async with HoldBack(rs.a):
        # acknowledged in region-a and not shipped when region-b is promoted
        await client.start_workflow("T", id="tail", task_queue=QUEUE)
        await forced_failover(rs.a.config, NS, rs.b.name)
        with pytest.raises(Unavailable) as refused:
            await remove_region(rs.a.config, NS, rs.a.name)
        assert refused.value.details["region"] == rs.a.name
        message = refused.value.message
        assert "could not be told" not in message and "once it is up" not in message, message
        assert f"{rs.a.name} is out of namespace {NS!r} in {rs.b.name}" in message, message
        assert f"baton namespace remove-region {NS} {rs.a.name}` again" in message, message
    # shipped, region-a leaves: by itself or by the rerun
    waiting = "SELECT count(*) FROM outbox WHERE namespace = $1"

    async def shipped() -> bool:
        return await fetchval(rs.a, waiting, NS) == 0

    await eventually(shipped, timeout=30, what="region-a to ship its tail")

    async def left() -> bool:
        try:
            await remove_region(rs.a.config, NS, rs.a.name)
        except Unavailable:
            return False
        except Exception:
            pass  # not a region any more: it left by itself
        row = await fetchval(rs.a, "SELECT regions FROM namespaces WHERE name = $1", NS)
        return row == [rs.b.name]

    await eventually(left, timeout=30, what="region-a out of the namespace")
