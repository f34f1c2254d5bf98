"""`baton namespace describe` shows the namespace as its newest copy says, as
`namespace list` does. It asked whichever region answered first, and a
standby's copy does not know of a handover (the state is the active
region's own): after a killed failover left the namespace in handover, every
write refused, describe said `active` when a standby answered."""

from __future__ import annotations

import pytest

from replication import fence
from replication.sql import QUERIES as RQ
from store import db
from store.sql import QUERIES as Q
from tests.conftest import Region, RegionPair
from tests.helpers import baton_json, eventually
from worker import Client

pytestmark = pytest.mark.integration
NS = "described-ns"


@pytest.fixture(autouse=True)
def _peers_not_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing but the commands here changes the namespace (see test_handover_left_behind)."""
    monkeypatch.setattr(fence, "CHECK_EVERY_S", 3600.0)


async def _killed_failover_from(region: Region) -> None:
    conn = await db.connect(region.dsn)
    try:
        assert await conn.fetchval(RQ["try_failover_lock"], NS)
        assert await conn.fetchval(Q["set_namespace_state"], NS, region.name, "handover")
    finally:
        await conn.close()


async def test_describe_shows_a_handover_whichever_region_answers(regions: RegionPair) -> None:
    a, b = regions.a, regions.b
    async with await Client.connect([a.url, b.url], namespace=NS) as client:
        await client.create_namespace(NS, regions=[a.name, b.name], active_region=b.name)

    async def in_a() -> bool:
        conn = await db.connect(a.dsn)
        try:
            return bool(await conn.fetchval("SELECT count(*) FROM namespaces WHERE name = $1", NS))
        finally:
            await conn.close()

    await eventually(in_a, timeout=30, what="the namespace replicated to region-a")
    await _killed_failover_from(b)
    for _ in range(3):
        code, out, err = await baton_json(a.config_path, "namespace", "describe", NS)
        assert code == 0, err
        assert (out["active_region"], out["state"]) == (b.name, "handover"), out
    # one region's view, when asked for
    code, out, err = await baton_json(
        a.config_path, "--region", a.name, "namespace", "describe", NS
    )
    assert code == 0, err
    assert (out["active_region"], out["state"]) == (b.name, "active"), out
