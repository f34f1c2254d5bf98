"""The pollers a deployment's versions remember stay bounded.

Each worker process polls under an identity of its own, so every deploy, and
every restart of a worker, added rows that stayed for ever: `deployment
describe` listed every poller a version ever had. The retention sweeper drops
those gone (stopped, or silent) for a day, but the last of each version and
task queue, which says when the version last polled it.
"""

from __future__ import annotations

from collections.abc import Awaitable

import asyncpg
import pytest

from store.retention import sweep
from tests.conftest import Region
from tests.helpers import eventually
from tests.versioning_helpers import registered, shop_worker
from worker import Client

pytestmark = pytest.mark.integration


async def _equal(count: Awaitable[int], n: int) -> bool:
    return await count == n


async def test_pollers_gone_for_a_day_are_swept_but_the_last_of_each_version(
    client: Client, region: Region
) -> None:

    async def pollers_of(build: str) -> int:
        d = await client.describe_deployment("shop")
        return sum(len(v["pollers"]) for v in d["versions"] if v["build_id"] == build)

    for n in range(1, 4):  # three restarts of build 1's worker
        async with shop_worker(client, "1"):
            await registered(client, "1")
            await eventually(lambda n=n: _equal(pollers_of("1"), n), what=f"{n} pollers")
    async with shop_worker(client, "2"):
        await registered(client, "2")
        conn = await asyncpg.connect(region.dsn)
        try:
            rows = await conn.fetch(
                "SELECT identity FROM version_pollers WHERE build_id = '1' ORDER BY identity"
            )
            assert len(rows) == 3
            # two stopped two days ago, the third a day and a half ago (their
            # versions' rows: those of their task queues, `task-queue
            # describe`'s, under the empty deployment, stay as they are)
            for row, hours in zip(rows, (48, 49, 36), strict=True):
                await conn.execute(
                    "UPDATE version_pollers SET last_seen = now() - make_interval(hours => $1),"
                    " stopped_at = now() - make_interval(hours => $1) + interval '1 second'"
                    " WHERE identity = $2 AND deployment <> ''",
                    hours,
                    row["identity"],
                )
            # build 2's live poller was last seen long ago too (its touch is throttled)
            await conn.execute(
                "UPDATE version_pollers SET last_seen = now() - interval '3 days' "
                "WHERE build_id = '2'"
            )
            live = await conn.fetchval("SELECT identity FROM version_pollers WHERE build_id = '2'")
            swept = await sweep(region.store)
            assert swept.pollers == 2
            left = await conn.fetch(
                "SELECT build_id, identity FROM version_pollers WHERE deployment <> ''"
            )
            assert sorted((r["build_id"], r["identity"]) for r in left) == [
                ("1", rows[2]["identity"]),
                ("2", live),
            ]
            assert (await sweep(region.store)).pollers == 0  # safe to run again
            # the task queue rows of workers gone for a day go too, but the
            # last of each queue and kind
            gone = [rows[0]["identity"], rows[1]["identity"]]
            aged = await conn.execute(
                "UPDATE version_pollers SET last_seen = now() - interval '2 days', "
                "stopped_at = now() - interval '2 days' "
                "WHERE deployment = '' AND identity = ANY($1)",
                gone,
            )
            # (a queue and kind only they polled keeps its last row)
            newer_beside = await conn.fetchval(
                "SELECT count(*) FROM version_pollers p WHERE p.deployment = '' "
                "AND p.identity = ANY($1) AND EXISTS (SELECT 1 FROM version_pollers q "
                "WHERE q.namespace = p.namespace AND q.deployment = '' "
                "AND q.build_id = p.build_id AND q.task_queue = p.task_queue "
                "AND q.identity <> ALL($1))",
                gone,
            )
            assert newer_beside > 0, aged
            assert (await sweep(region.store)).pollers == newer_beside
            left_of_gone = await conn.fetchval(
                "SELECT count(*) FROM version_pollers WHERE identity = ANY($1)", gone
            )
            assert left_of_gone == int(aged.split()[1]) - newer_beside
        finally:
            await conn.close()
        d = await client.describe_deployment("shop")
        pollers = {v["build_id"]: v["pollers"] for v in d["versions"]}
        assert [p["identity"] for p in pollers["1"]] == [rows[2]["identity"]]
        assert len(pollers["2"]) == 1
