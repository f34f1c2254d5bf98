"""A schedule deleted while another region was active leaves no gauges behind
in a region that becomes active again: each region's schedule stats are its own
(not replicated), and only open schedules are exported."""

from __future__ import annotations

import httpx
import pytest

from replication.failover import graceful_failover
from tests.apps.scheduled import Report
from tests.conftest import RegionPair
from tests.helpers import eventually
from tests.integration.test_schedules import definition, worker
from worker import Client

pytestmark = pytest.mark.integration

NS = "scheduled"


async def _exported(url: str, schedule_id: str) -> bool:
    async with httpx.AsyncClient() as http:
        text = (await http.get(f"{url}/metrics")).text
    return f'schedule="{schedule_id}"' in text


async def test_a_schedule_deleted_in_another_region_leaves_no_gauges(
    regions: RegionPair,
) -> None:
    """Regression: region-a kept exporting the counters it last had of a
    schedule deleted after a failover to region-b, for ever, once the
    namespace came back to it."""
    rs = regions
    async with await Client.connect([rs.a.url, rs.b.url], namespace=NS) as client:
        await client.create_namespace(NS, regions=[rs.a.name, rs.b.name], active_region=rs.a.name)
        async with worker(client):
            sched = await definition(client, Report, {}, cron="0 0 1 1 *")
            h = await client.create_schedule("yearly", sched)
            kept = await client.create_schedule("kept", sched)
            for sid in ("yearly", "kept"):
                await eventually(
                    lambda sid=sid: _exported(rs.a.url, sid), what=f"{sid} in region-a"
                )

            await graceful_failover(rs.a.config, NS, rs.b.name, timeout_s=60)
            await h.delete()
            await graceful_failover(rs.b.config, NS, rs.a.name, timeout_s=60)

            async def kept_open() -> bool:
                return (await kept.describe())["paused"] is False

            await eventually(kept_open, what="the kept schedule back in region-a")
            assert await _exported(rs.a.url, "kept")
            assert not await _exported(rs.a.url, "yearly")
