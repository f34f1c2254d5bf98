"""`baton replication verify` under traffic: a standby a few messages behind
holds less of a run (or none of a new one) for as long as its replication
lag, and verify reported that as a difference and exited 1, so a verify run
right after the workflows it checks, or beside live traffic, failed now and
then on regions that were equal a moment later. It gives runs that one region
holds less of a few seconds to catch up; a region that stays behind, or a
history that differs, is still reported."""

from __future__ import annotations

import asyncio

import pytest

from replication.verify import verify_namespace
from store import db
from tests.conftest import RegionPair
from tests.helpers import eventually
from worker import Client

pytestmark = pytest.mark.integration
NS = "verified-live"


async def test_verify_waits_out_a_standby_s_lag(regions: RegionPair) -> None:
    a, b = regions.a, regions.b
    async with await Client.connect([a.url, b.url], namespace=NS) as client:
        await client.create_namespace(NS, regions=[a.name, b.name], active_region=a.name)
        await client.start_workflow("Nobody", id="first", task_queue="nobody")

        async def clean() -> bool:
            return (await verify_namespace(a.config, NS)).clean

        await eventually(clean, timeout=30, what="the first run in region-b")
        # region-b's applier waits behind the namespace's fence, held here
        # for a second and a half: as long as a lag it cannot apply the start
        fence = await db.connect(b.dsn)
        try:
            tx = fence.transaction()
            await tx.start()
            await fence.execute("SELECT baton_namespace_exclusive_v1($1)", NS)
            await client.start_workflow("Nobody", id="second", task_queue="nobody")
            verifying = asyncio.create_task(verify_namespace(a.config, NS))
            await asyncio.sleep(1.5)
            assert not verifying.done()  # waiting for region-b, not reporting it
            await tx.rollback()
        finally:
            await fence.close()
        v = await verifying
        assert v.clean, v.differences
        assert v.runs_compared == 2

        # a region that does not catch up is reported once the wait is over
        conn = await db.connect(b.dsn)
        try:
            await conn.execute(
                "DELETE FROM history_events WHERE namespace = $1 AND workflow_id = 'first' "
                "AND event_id > 1",
                NS,
            )
        finally:
            await conn.close()
        v = await verify_namespace(a.config, NS, settle_s=0.5)
        assert [d.workflow_id for d in v.differences] == ["first"]
        assert v.differences[0].regions[b.name]["last_event_id"] == 1
