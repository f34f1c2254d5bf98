"""Batch jobs survive a SIGKILLed server and a failover, and act once on each run."""

from __future__ import annotations

import asyncio

import pytest

from replication.failover import graceful_failover
from tests.helpers import eventually
from tests.multiregion import Regions
from worker import Client

pytestmark = pytest.mark.e2e
QUEUE = "batch-e2e"


async def start_many(client: Client, prefix: str, n: int) -> None:
    sem = asyncio.Semaphore(20)

    async def one(i: int) -> None:
        async with sem:
            await client.start_workflow("Idle", id=f"{prefix}-{i:04d}", task_queue=QUEUE)

    await asyncio.gather(*(one(i) for i in range(n)))


async def progress(client: Client, job_id: str) -> dict[str, object]:
    return await client.describe_batch(job_id)


async def terminations(rs: Regions, region: str, ns: str, prefix: str) -> tuple[int, int, int]:
    """(runs, runs terminated once, runs terminated more than once) by their histories."""
    conn_sql = (
        "SELECT count(*) FILTER (WHERE n = 1), count(*) FILTER (WHERE n > 1), count(*) FROM ("
        " SELECT e.workflow_id, (SELECT count(*) FROM history_events h"
        "   WHERE h.namespace = e.namespace AND h.workflow_id = e.workflow_id"
        "     AND h.run_id = e.run_id AND h.event_type = 'WorkflowExecutionTerminated') AS n"
        " FROM executions e WHERE e.namespace = $1 AND e.workflow_id LIKE $2) t"
    )
    from store import db

    conn = await db.connect(rs.regions[region].dsn)
    try:
        once, more, runs = await conn.fetchrow(conn_sql, ns, f"{prefix}-%")
    finally:
        await conn.close()
    return int(runs), int(once), int(more)


async def test_a_batch_resumes_after_sigkill_and_terminates_each_run_once(
    two_regions: Regions,
) -> None:
    rs = two_regions
    a = rs[0]  # started by the fixture
    async with await Client.connect(a.url, namespace="bulk", retry_for_s=120) as client:
        await client.create_namespace("bulk")
        await start_many(client, "k", 1000)
        await client.start_batch(
            "WorkflowType = 'Idle'", "terminate", reason="drain", rps=100, job_id="kill"
        )

        async def halfway() -> bool:
            d = await progress(client, "kill")
            return int(d["done"] or 0) >= 300  # type: ignore[call-overload]

        await eventually(halfway, timeout=120, interval=0.2, what="the batch half way")
        rs.kill(a.name)  # SIGKILL: the page in flight dies with the server
        await asyncio.sleep(0.5)
        await rs.start(a.name)

        async def ended() -> dict[str, object] | None:
            d = await progress(client, "kill")
            return d if d["state"] != "running" else None

        d = await eventually(ended, timeout=180, interval=0.5, what="the batch resumed and ended")
        assert d["state"] == "completed" and d["failed"] == 0, d
        assert d["done"] == 1000, d
    runs, once, more = await terminations(rs, a.name, "bulk", "k")
    assert (runs, once, more) == (1000, 1000, 0)


async def test_a_running_batch_finishes_in_the_new_region_after_a_failover(
    two_regions: Regions,
) -> None:
    rs = two_regions
    a, b = rs[0], rs[1]  # started by the fixture
    async with await Client.connect(rs.urls, namespace="moving", retry_for_s=120) as client:
        await client.create_namespace("moving", regions=[a.name, b.name], active_region=a.name)
        await start_many(client, "m", 300)
        await client.start_batch(
            "WorkflowType = 'Idle'", "terminate", reason="move", rps=20, job_id="move"
        )

        async def started() -> bool:
            return int((await progress(client, "move"))["done"] or 0) >= 40  # type: ignore[call-overload]

        await eventually(started, timeout=120, interval=0.2, what="the batch under way")
        await graceful_failover(rs.config, "moving", b.name, timeout_s=60)
        async with await Client.connect(b.url, namespace="moving") as in_b:
            assert (await in_b.describe_namespace())["active_region"] == b.name

            async def ended() -> dict[str, object] | None:
                d = await progress(in_b, "move")
                return d if d["state"] != "running" else None

            d = await eventually(ended, timeout=180, interval=0.5, what="the batch ended in B")
            assert d["state"] == "completed" and d["failed"] == 0, d
            assert d["done"] == 300, d
            # the job's last pages ran in B: its history has events written there
            job = await in_b.get_workflow_handle("batch/move").history()
            assert job[-1]["version"] > job[0]["version"]
    runs, once, more = await terminations(rs, b.name, "moving", "m")
    assert (runs, once, more) == (300, 300, 0)


async def test_a_server_stops_promptly_mid_batch_and_the_job_carries_on(
    two_regions: Regions,
) -> None:
    rs = two_regions
    a = rs[0]  # started by the fixture
    async with await Client.connect(a.url, namespace="stopping", retry_for_s=120) as client:
        await client.create_namespace("stopping")
        await start_many(client, "s", 40)
        await client.start_batch(
            "WorkflowType = 'Idle'", "terminate", reason="stop", rps=4, job_id="stop"
        )

        async def under_way() -> bool:
            query = "ExecutionStatus = 'Terminated'"
            return (await client.count_workflows(query)).count >= 1

        await eventually(under_way, timeout=60, what="the job's first page under way")
        procs = [p.proc for p in a.procs if p.proc is not None]
        assert procs
        for p in procs:
            p.terminate()  # SIGTERM, mid-page
        # each exits by itself (a page in flight is handed back) within the wait
        for p in procs:
            assert await asyncio.to_thread(p.wait, 30) is not None
        a.procs.clear()
        await rs.start(a.name)

        async def ended() -> dict[str, object] | None:
            d = await client.describe_batch("stop")
            return d if d["state"] != "running" else None

        d = await eventually(ended, timeout=120, interval=0.5, what="the job ended after restart")
        assert (d["state"], d["done"], d["failed"]) == ("completed", 40, 0), d
    runs, once, more = await terminations(rs, a.name, "stopping", "s")
    assert (runs, once, more) == (40, 40, 0)
