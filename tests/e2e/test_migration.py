"""Namespace migration: a third region joins a namespace with 1,000 workflows,
is backfilled (resumably), takes the namespace over, and a standby leaves."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any

import pytest

from ops.pg import PgCluster
from replication.failover import forced_failover, graceful_failover
from replication.migration import add_region, remove_region
from replication.verify import verify_namespace
from store.errors import InvalidArgument, Unavailable
from tests.apps.workflows import ALL_ACTIVITIES, ThreeSteps
from tests.helpers import eventually
from tests.multiregion import Regions, server_regions
from worker import Client, Worker

pytestmark = pytest.mark.e2e
CLOSED, OPEN = 700, 300


class Interrupted(Exception):
    pass


async def test_a_third_region_is_backfilled_and_takes_the_namespace_over(
    three_regions: Regions,
) -> None:
    rs = three_regions
    a, b, c = rs[0], rs[1], rs[2]
    ns = "growing"
    async with await Client.connect(rs.urls, namespace=ns) as client:
        await client.create_namespace(ns, regions=[a.name, b.name], active_region=a.name)
        gate = asyncio.Semaphore(20)

        async def start(i: int) -> None:
            async with gate:
                h = await client.start_workflow(ThreeSteps, i, id=f"g-{i}", task_queue="later")
                if i < CLOSED:
                    await h.terminate("closed before the migration")

        await asyncio.gather(*[start(i) for i in range(CLOSED + OPEN)])

        # The first attempt stops part way (as a killed CLI would)...
        seen: list[tuple[str, int, int]] = []

        def stop_midway(phase: str, done: int, total: int) -> None:
            seen.append((phase, done, total))
            if phase == "enqueue" and done >= 300:
                raise Interrupted

        with pytest.raises(Interrupted):
            await add_region(rs.config, ns, c.name, progress=stop_midway, chunk=100)
        # ...and running it again resumes from its cursor.
        phases: list[tuple[str, int, int]] = []
        result = await add_region(
            rs.config, ns, c.name, progress=lambda *p: phases.append(p), chunk=100
        )
        assert result.resumed and result.runs == CLOSED + OPEN
        assert phases[0][0] == "enqueue" and phases[0][1] == 400  # carried on after 300
        assert phases[-1] == ("apply", CLOSED + OPEN, CLOSED + OPEN)
        again = await add_region(rs.config, ns, c.name)  # done already: nothing to add
        assert again.already_member and not again.resumed

        # C holds every run once add_region returns; B, a standby all along,
        # may still be applying A's last terminations from the stream.
        async def copies_equal() -> bool:
            return (await verify_namespace(rs.config, ns)).clean

        with contextlib.suppress(AssertionError):  # the assertion below names the runs
            await eventually(copies_equal, timeout=30, interval=0.5, what="equal copies")
        v = await verify_namespace(rs.config, ns)
        assert v.clean and v.regions == sorted([a.name, b.name, c.name]), v.differences[:3]
        assert v.runs_compared == CLOSED + OPEN

        moved = await graceful_failover(rs.config, ns, c.name, timeout_s=60)
        assert moved.target == c.name and moved.version == 3
        async with Worker(
            client, task_queue="later", workflows=[ThreeSteps], activities=ALL_ACTIVITIES
        ):
            results = await asyncio.gather(
                *[
                    client.get_workflow_handle(f"g-{i}").result(timeout=120)
                    for i in range(CLOSED, CLOSED + OPEN)
                ]
            )
        assert results == [i + 3 for i in range(CLOSED, CLOSED + OPEN)]

        async def clean() -> Any:
            v = await verify_namespace(rs.config, ns)
            return v if v.clean else None

        await eventually(clean, timeout=60, interval=1.0, what="three regions equal")

        # B leaves the namespace: it applies nothing of it from then on.
        assert await remove_region(rs.config, ns, b.name) == [a.name, c.name]
        with pytest.raises(InvalidArgument):
            await remove_region(rs.config, ns, c.name)  # the active region stays
        with pytest.raises(InvalidArgument):
            await forced_failover(rs.config, ns, b.name)  # B is out: it cannot take over
        before = await rs.fetchval(
            b.name, "SELECT count(*) FROM executions WHERE namespace = $1", ns
        )
        async with Worker(
            client, task_queue="later", workflows=[ThreeSteps], activities=ALL_ACTIVITIES
        ):
            h = await client.start_workflow(ThreeSteps, 1, id="after-removal", task_queue="later")
            assert await h.result(timeout=60) == 4

        async def a_has_it() -> bool:
            n = await rs.fetchval(
                a.name, "SELECT count(*) FROM executions WHERE namespace = $1", ns
            )
            return n == CLOSED + OPEN + 1

        await eventually(a_has_it, timeout=30, what="A applied the new run")
        after = await rs.fetchval(
            b.name, "SELECT count(*) FROM executions WHERE namespace = $1", ns
        )
        assert after == before
        v = await eventually(clean, timeout=60, interval=1.0, what="A and C equal")
        assert v.regions == sorted([a.name, c.name])


async def test_a_removal_the_standby_missed_is_finished_by_running_it_again(
    pg: PgCluster, template_db: str, kafka: str, state_dir: Path, tmp_path: Path
) -> None:
    """The standby being removed is down: it is out of the namespace, and
    running the removal again once it is back tells it too (a namespace left
    with one region ships no change it could learn it from)."""
    async with server_regions(
        pg, template_db, kafka, state_dir, tmp_path, count=2, own_pg=(1,)
    ) as rs:
        a, b = rs[0], rs[1]
        ns = "leaving"
        async with await Client.connect(rs.urls, namespace=ns) as client:
            await client.create_namespace(ns, regions=[a.name, b.name], active_region=a.name)
        regions_sql = "SELECT regions FROM namespaces WHERE name = $1"

        async def in_b() -> Any:
            return await rs.fetchval(b.name, regions_sql, ns)

        await eventually(in_b, timeout=30, what="the namespace in B")
        await asyncio.to_thread(b.pg.stop)
        with pytest.raises(Unavailable, match="run `baton namespace remove-region"):
            await remove_region(rs.config, ns, b.name)
        assert await rs.fetchval(a.name, regions_sql, ns) == [a.name]
        await asyncio.to_thread(b.pg.start)
        assert await in_b() == [a.name, b.name]
        assert await remove_region(rs.config, ns, b.name) == [a.name]
        assert await in_b() == [a.name]
        with pytest.raises(InvalidArgument, match="not a region"):
            await remove_region(rs.config, ns, b.name)
