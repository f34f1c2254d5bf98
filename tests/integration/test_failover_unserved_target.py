"""A graceful failover to a region none of whose servers answers is refused
before the promotion, with ``UNAVAILABLE`` naming the region and its URL, and
the namespace stays active where it was: moved there, it would have nothing
to take its writes, dispatch its tasks or fire its timers until someone
started them, where the failover succeeded and left the namespace unserved."""

from __future__ import annotations

import dataclasses

import pytest

from replication.failover import graceful_failover
from store.errors import Unavailable
from tests.conftest import RegionPair
from tests.helpers import eventually, free_port
from tests.integration.test_run_state import fetchval, two_region_ns

pytestmark = pytest.mark.integration
NS = "unserved"


async def test_a_graceful_failover_to_a_region_with_no_server_moves_nothing(
    regions: RegionPair,
) -> None:
    rs = regions
    await two_region_ns(rs, NS)
    row = (
        "SELECT active_region || '/' || state || '/' || failover_version "
        "FROM namespaces WHERE name = $1"
    )

    async def in_b() -> bool:
        return await fetchval(rs.b, row, NS) == f"{rs.a.name}/active/1"

    await eventually(in_b, timeout=30, what="the namespace in region-b")
    # region-b's database is up and caught up; no server of it answers
    gone = dataclasses.replace(
        rs.a.config.regions[rs.b.name], url=f"http://127.0.0.1:{free_port()}"
    )
    config = dataclasses.replace(rs.a.config, regions={**rs.a.config.regions, rs.b.name: gone})
    with pytest.raises(Unavailable) as refused:
        await graceful_failover(config, NS, rs.b.name, timeout_s=30)
    assert refused.value.details == {"target": rs.b.name, "url": gone.url}
    assert f"{NS} stays active in {rs.a.name}" in refused.value.message
    for r in (rs.a, rs.b):
        assert await fetchval(r, row, NS) == f"{rs.a.name}/active/1", r.name
    # with its servers answering, the same failover moves it
    moved = await graceful_failover(rs.a.config, NS, rs.b.name, timeout_s=30)
    assert (moved.target, moved.version) == (rs.b.name, 2)
