"""Schedules through outages: a region down for longer than the catch-up
window, and a graceful and a forced failover in the middle of a minutely
schedule. The servers run on the test clock (one clock per process: both
in-process regions share it)."""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from ops.pg import PgCluster
from replication.admin import list_conflicts
from replication.failover import forced_failover, graceful_failover
from scheduler.policy import action_workflow_id
from store import clock, db
from tests.apps.scheduled import Report
from tests.conftest import Region, RegionPair, default_namespace_client, one_region, serve_region
from tests.helpers import eventually
from tests.integration.test_run_state import HoldBack, verified
from tests.integration.test_schedules import (
    align,
    definition,
    fire,
    now,
    parse,
    processed,
    settled,
    started_ids,
    worker,
)
from worker import Client, ScheduleHandle

pytestmark = pytest.mark.integration

#: catch-up mode -> how many of the fires inside the window run
INSIDE_RUN = {"all": 3, "latest": 1, "none": 0}


@pytest.mark.parametrize("mode", list(INSIDE_RUN))
async def test_a_region_down_longer_than_the_catch_up_window(
    pg: PgCluster, template_db: str, tmp_path: Path, mode: str
) -> None:
    """Hourly, a 3-hour window, the region down for 18 hours 5 minutes: of the
    18 fires it slept through, the 3 inside the window run as the mode says
    and the rest are counted as missed."""
    policy = {"overlap": "allow-all", "catchup_window": "3h", "catchup": mode}
    async with (
        one_region(pg, template_db, tmp_path, test_clock=True) as region,
        default_namespace_client(region) as c,
        worker(c),
    ):
        sched = await definition(c, Report, policy, cron="0 * * * *")
        await align(c, timedelta(hours=1))
        h = await c.create_schedule("outage", sched)
        first = await fire(c, h)
        assert await started_ids(c, "outage") == [action_workflow_id("outage", first)]
    # the region is down: its clock (this process's) goes on without it
    # (5 minutes past a fire: a fire less than a minute late is on time)
    clock.advance(timedelta(hours=18, minutes=5))
    async with (
        serve_region(region.config, region.name),
        await Client.connect(region.url) as c,
        worker(c),
    ):
        h = c.get_schedule_handle("outage")
        back: datetime = await now(c)
        slept = [first + timedelta(hours=i) for i in range(1, 19)]
        assert slept[-1] + timedelta(minutes=5) <= back < slept[-1] + timedelta(minutes=10)
        await processed(h, slept[-1])
        await settled(c, h)
        inside = [t for t in slept if back - t <= timedelta(hours=3)]
        assert len(inside) == 3
        ran = {"all": inside, "latest": inside[-1:], "none": []}[mode]
        want = sorted(action_workflow_id("outage", t) for t in [first, *ran])

        async def started() -> bool:
            return await started_ids(c, "outage") == want

        await eventually(started, timeout=30, what=f"the fires {mode} catches up")
        counters = (await h.describe())["counters"]
        assert counters["actions"] == 1 + len(ran)
        assert counters["missed_catchup"] == len(slept) - len(ran)


# --------------------------------------------------------------------------- failover

NS = "scheduled"


async def runs_per_id(client: Client, schedule_id: str) -> dict[str, int]:
    """Workflow id -> how many runs of it the region lists."""
    out: dict[str, int] = {}
    async for r in client.list_workflows(f"ScheduledById = '{schedule_id}'"):
        out[r.workflow_id] = out.get(r.workflow_id, 0) + 1
    return out


async def region_runs(region: Region, ns: str, schedule_id: str) -> dict[str, int]:
    """Workflow id -> runs in the region's own database (any role)."""
    conn = await db.connect(region.dsn)
    try:
        rows = await conn.fetch(
            "SELECT workflow_id, count(*) AS n FROM executions"
            " WHERE namespace = $1 AND workflow_id LIKE $2 GROUP BY workflow_id",
            ns,
            f"{schedule_id}-%",
        )
    finally:
        await conn.close()
    return {r["workflow_id"]: int(r["n"]) for r in rows}


async def one_run_each(client: Client, h: ScheduleHandle, first: datetime) -> dict[str, int]:
    """Wait until every minute from ``first`` to the last the schedule has
    processed has exactly one run, and no other run exists; returns the runs.
    (The test clock runs on like real time, so the schedule may also have
    fired a minute of its own: the promise holds for every minute it passed.)"""
    last: dict[str, int] = {}

    async def exact() -> bool:
        nonlocal last
        upto = parse((await h.describe())["last_processed"])
        minutes = int((upto - first).total_seconds() // 60) + 1
        want = {action_workflow_id(h.id, first + timedelta(minutes=i)): 1 for i in range(minutes)}
        last = await runs_per_id(client, h.id)
        return last == want

    await eventually(exact, timeout=30, what="one run for every minute processed")
    return last


@contextlib.asynccontextmanager
async def minutely_in_region_a(rs: RegionPair) -> AsyncIterator[tuple[Client, ScheduleHandle]]:
    """A client of a namespace of both regions (active in region-a), a worker for
    the actions, and the schedule ``minutely`` created just after a minute began."""
    async with await Client.connect([rs.a.url, rs.b.url], namespace=NS) as client:
        await client.create_namespace(NS, regions=[rs.a.name, rs.b.name], active_region=rs.a.name)
        async with worker(client):
            sched = await definition(client, Report, {"overlap": "allow-all"})
            await align(client, timedelta(minutes=1))
            yield client, await client.create_schedule("minutely", sched)


async def test_graceful_failover_mid_schedule_starts_exactly_one_run_per_minute(
    clock_regions: RegionPair,
) -> None:
    rs = clock_regions
    async with minutely_in_region_a(rs) as (client, h):
        fired = [await fire(client, h) for _ in range(3)]
        await one_run_each(client, h, fired[0])
        await graceful_failover(rs.a.config, NS, rs.b.name, timeout_s=60)
        fired += [await fire(client, h) for _ in range(3)]
        await h.pause("checked")  # no fire of its own while the test looks
        await settled(client, h)
        assert all(b - a == timedelta(minutes=1) for a, b in itertools.pairwise(fired))
        runs = await one_run_each(client, h, fired[0])
        assert set(runs) >= {action_workflow_id("minutely", t) for t in fired}
        d = await h.describe()
        assert d["counters"]["actions"] == len(runs)
        assert {a["outcome"] for a in d["recent"]} == {"completed"}
        await verified(rs, NS)
        # region-a, standby now, holds the same runs: nothing started twice anywhere
        assert await region_runs(rs.a, NS, "minutely") == runs
        assert await region_runs(rs.b, NS, "minutely") == runs


async def test_forced_failover_mid_schedule_leaves_one_run_per_minute_and_misses_none(
    clock_regions: RegionPair,
) -> None:
    """Region-a fires minute 3 but ships nothing of it before it is lost: region-b
    fires minute 3 again, and when region-a returns its copy is archived."""
    rs = clock_regions
    async with minutely_in_region_a(rs) as (client, h):
        first = await fire(client, h)
        await fire(client, h)
        await one_run_each(client, h, first)
        await verified(rs, NS)  # region-b has all of it so far
        async with HoldBack(rs.a):
            lost = await fire(client, h)  # started in region-a, never shipped
            lost_id = action_workflow_id("minutely", lost)
            assert lost_id in await region_runs(rs.a, NS, "minutely")
            await forced_failover(rs.a.config, NS, rs.b.name)
            # region-b's copy of the schedule had not seen that minute: it fires it
            await processed(h, lost)
            await one_run_each(client, h, first)
            await fire(client, h)
            await fire(client, h)
            await h.pause("checked")  # no fire of its own while the test looks
            await settled(client, h)
            runs = await one_run_each(client, h, first)
            assert lost_id in runs and len(runs) >= 5
        # region-a's lost branch ships now: region-b refuses it, region-a archives it
        await verified(rs, NS)
        archived = {c["workflow_id"] for c in await list_conflicts(rs.a.config, NS)}
        assert lost_id in archived
        assert await region_runs(rs.a, NS, "minutely") == runs
        assert await region_runs(rs.b, NS, "minutely") == runs
