"""Runs a server remembers (store/run_cache.py) and starts without a read, on real PostgreSQL.

A task completion of a run this server process wrote last writes without
reading the run first, and a start in a namespace it read before writes
without reading anything. Each such write is checked against what was
remembered and refused when the run, the activity it completes, its sticky
queue or its namespace changed elsewhere (another server process, here a
write on another connection); the server then reads and writes again, and
the outcome is what it would have been without the cache.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import asyncpg
import pytest

from ops.bench_measure import ensure_statement_stats
from store.errors import StaleRun
from store.mutable_state import RunTxn
from store.run_cache import RunCache
from store.sql import QUERIES as Q
from tests.apps.workflows import ALL_ACTIVITIES, ThreeSteps
from tests.conftest import Region
from worker import Client, Worker, workflow
from worker.errors import WorkflowAlreadyStartedError
from worker.wire import EventType

pytestmark = pytest.mark.integration
QUEUE = "run-cache"
IDLE_QUEUE = "no-worker-polls-this"


@workflow.defn(name="WaitsForever")
class WaitsForever:
    @workflow.run
    async def run(self) -> None:
        await workflow.wait_condition(lambda: False)


async def _calls(region: Region, prefix: str) -> int:
    """How many times statements starting with ``prefix`` ran in the region's database."""
    conn = await asyncpg.connect(region.dsn)
    try:
        return int(
            await conn.fetchval(
                "SELECT coalesce(sum(calls), 0) FROM pg_stat_statements s "
                "JOIN pg_database d ON d.oid = s.dbid "
                "WHERE d.datname = current_database() AND s.query LIKE $1 || '%'",
                prefix,
            )
        )
    finally:
        await conn.close()


READ = "-- A run and its namespace read without locks"
START_READ = "-- A start's namespace"
RESULT_READ = "SELECT * FROM executions WHERE namespace = $1"


async def test_completions_of_a_remembered_run_read_nothing(region: Region, client: Client) -> None:
    """Three activities: none of the four completions (the first workflow
    task, then three activity results each with the task it schedules, run
    ahead by the worker) reads the run, the first task's take remembering it
    as it started that task; the second start reads nothing; the result is
    read once."""
    assert await ensure_statement_stats(region.dsn), "the test cluster preloads pg_stat_statements"
    stats = region.store.run_cache.stats
    async with Worker(client, task_queue=QUEUE, workflows=[ThreeSteps], activities=ALL_ACTIVITIES):
        first = await client.start_workflow(ThreeSteps, 1, id="warm", task_queue=QUEUE)
        assert await first.result(timeout=20) == 4
        reads, start_reads, results = (
            await _calls(region, READ),
            await _calls(region, START_READ),
            await _calls(region, RESULT_READ),
        )
        hits = stats.hits
        # no worker polls this queue yet: the first workflow task waits as a
        # task row, and the poll that takes it remembers the run
        h = await client.start_workflow(ThreeSteps, 10, id="cached", task_queue="later")
        waiting = asyncio.create_task(h.result(timeout=20))
        async with Worker(
            client, task_queue="later", workflows=[ThreeSteps], activities=ALL_ACTIVITIES
        ):
            assert await waiting == 13
    assert await _calls(region, START_READ) - start_reads == 0
    assert await _calls(region, READ) - reads == 0
    assert await _calls(region, RESULT_READ) - results == 1
    assert stats.hits - hits == 4
    kinds = [e["event_type"] for e in await h.history()]
    assert kinds.count("ActivityTaskCompleted") == 3
    assert kinds[-1] == "WorkflowExecutionCompleted"
    # a closed run is not kept
    assert region.store.run_cache.lookup(("default", "cached", str(h.run_id))) is None


async def test_a_start_handed_to_a_waiting_poller_keeps_the_run(
    region: Region, client: Client
) -> None:
    """A start whose first workflow task goes to a poller asleep in this
    process (store/matching.py) writes the run unlocked and keeps it as the
    write left it: the task's completion, and the three after it, read
    nothing, as after a take."""
    assert await ensure_statement_stats(region.dsn), "the test cluster preloads pg_stat_statements"
    store = region.store
    stats = store.run_cache.stats
    async with Worker(client, task_queue=QUEUE, workflows=[ThreeSteps], activities=ALL_ACTIVITIES):
        warm = await client.start_workflow(ThreeSteps, 1, id="warm-match", task_queue=QUEUE)
        assert await warm.result(timeout=20) == 4
        await asyncio.sleep(0.5)  # the worker's polls are back, asleep
        matched, reads, hits = store.matcher.matched, await _calls(region, READ), stats.hits
        h = await client.start_workflow(ThreeSteps, 10, id="matched", task_queue=QUEUE)
        assert await h.result(timeout=20) == 13
    assert store.matcher.matched - matched == 1, "the start did not hand its task over"
    assert await _calls(region, READ) - reads == 0, "a completion read the run a start kept"
    assert stats.hits - hits == 4


async def _remembered_write(
    region: Region, conn: asyncpg.Connection, run_id: str, marker: str, **exe: Any
) -> RunTxn:
    rt, _ = await RunTxn.read_unlocked(
        conn,
        "default",
        "w",
        run_id,
        region=region.store.region,
        region_urls=region.store.region_urls,
        cache=region.store.run_cache,
    )
    rt.exe.update(exe)
    rt.add_event(EventType.MARKER_RECORDED, {"marker_name": marker, "details": {}})
    return rt


def _markers(events: list[dict[str, Any]]) -> list[str]:
    return [e["attributes"]["marker_name"] for e in events if e["event_type"] == "MarkerRecorded"]


async def test_a_remembered_run_written_elsewhere_is_refused_then_read_again(
    region: Region, client: Client
) -> None:
    h = await client.start_workflow(WaitsForever, id="w", task_queue=IDLE_QUEUE)
    run_id = str(h.run_id)
    cache = region.store.run_cache
    other = await asyncpg.connect(region.dsn)
    try:
        async with region.store.pool.acquire() as conn:
            await (await _remembered_write(region, conn, run_id, "one")).write_txn()
            entry = cache.lookup(("default", "w", run_id))
            assert entry is not None and entry.exe["next_event_id"] == 4
            # another server process writes the run: its row gets a new xmin
            await other.execute(
                'UPDATE executions SET memo = \'{"by": "elsewhere"}\' '
                "WHERE namespace = 'default' AND workflow_id = 'w'"
            )
            rt = await _remembered_write(region, conn, run_id, "two")
            assert rt.cached is not None
            refused = cache.stats.stale
            with pytest.raises(StaleRun):
                await rt.write_txn()
            assert cache.stats.stale == refused + 1
            assert cache.lookup(("default", "w", run_id)) is None  # forgotten
            assert _markers(await h.history()) == ["one"]
            # read again: the write goes through, on top of the other one
            rt = await _remembered_write(region, conn, run_id, "two")
            assert rt.cached is None and rt.exe["memo"] == {"by": "elsewhere"}
            await rt.write_txn()
    finally:
        await other.close()
    assert _markers(await h.history()) == ["one", "two"]


async def test_a_remembered_write_is_refused_when_its_sticky_queue_was_closed(
    region: Region, client: Client
) -> None:
    h = await client.start_workflow(WaitsForever, id="w", task_queue=IDLE_QUEUE)
    run_id = str(h.run_id)
    async with region.store.pool.acquire() as conn:
        rt = await _remembered_write(
            region, conn, run_id, "one", sticky_queue="sticky-1", sticky_timeout_s=5.0
        )
        await rt.write_txn()
        # the worker of that sticky queue shuts down (what its close route runs)
        await conn.execute(Q["close_sticky_queue"], "default", "sticky-1")
        rt = await _remembered_write(region, conn, run_id, "two")
        assert rt.cached is not None
        with pytest.raises(StaleRun):
            await rt.write_txn()
        rt = await _remembered_write(region, conn, run_id, "two")
        assert rt.exe["sticky_queue"] is None  # read: the run's tasks go to its own queue
        await rt.write_txn()
    assert _markers(await h.history()) == ["one", "two"]


async def _read_activity(
    region: Region, conn: asyncpg.Connection, run_id: str, sid: int
) -> tuple[RunTxn, dict[str, Any] | None]:
    return await RunTxn.read_unlocked(
        conn,
        "default",
        "w",
        run_id,
        region=region.store.region,
        region_urls=region.store.region_urls,
        activity=sid,
        cache=region.store.run_cache,
    )


async def test_a_remembered_activity_changed_elsewhere_refuses_the_completion(
    region: Region, client: Client
) -> None:
    """An activity completion checks the activity row's xmin too: a retry or a
    heartbeat elsewhere changes the row without touching the run's."""
    h = await client.start_workflow(WaitsForever, id="w", task_queue=IDLE_QUEUE)
    run_id = str(h.run_id)
    async with region.store.pool.acquire() as conn:
        rt = await _remembered_write(region, conn, run_id, "one")
        sid = rt.add_event(EventType.ACTIVITY_TASK_SCHEDULED, {"activity_type": "a"})
        rt.insert_activity(
            {
                "namespace": "default",
                "workflow_id": "w",
                "run_id": run_id,
                "scheduled_event_id": sid,
                "activity_id": "a-1",
                "activity_type": "a",
                "task_queue": IDLE_QUEUE,
                "input": [],
                "first_scheduled_time": rt.now,
                "scheduled_time": rt.now,
                "retry_policy": {},
                "state": "started",
                "attempt": 1,
                "started_identity": "me",
                "last_failure": None,
                "cancel_requested": False,
            }
        )
        await rt.write_txn()
        key = ("default", "w", run_id)
        assert region.store.run_cache.lookup(key, sid) is not None
        await conn.execute(
            "UPDATE activities SET attempt = 2 WHERE namespace = 'default' AND workflow_id = 'w'"
        )
        rt, act = await _read_activity(region, conn, run_id, sid)
        assert rt.cached is not None and act is not None and act["attempt"] == 1
        rt.add_event(EventType.MARKER_RECORDED, {"marker_name": "late", "details": {}})
        with pytest.raises(StaleRun):
            await rt.write_txn()
        rt, act = await _read_activity(region, conn, run_id, sid)
        assert rt.cached is None and act is not None and act["attempt"] == 2
    assert _markers(await h.history()) == ["one"]


async def test_a_cache_of_no_runs_reads_every_time(region: Region, client: Client) -> None:
    h = await client.start_workflow(WaitsForever, id="w", task_queue=IDLE_QUEUE)
    cache = RunCache(0)
    async with region.store.pool.acquire() as conn:
        rt, _ = await RunTxn.read_unlocked(
            conn,
            "default",
            "w",
            str(h.run_id),
            region=region.store.region,
            region_urls=region.store.region_urls,
            cache=cache,
        )
        await rt.write_txn()
    assert len(cache) == 0 and cache.lookup(("default", "w", str(h.run_id))) is None


async def test_a_start_without_a_read_keeps_every_start_rule(
    region: Region, client: Client
) -> None:
    """Once the namespace is known, a start writes blind; the write is refused
    whenever the read would have changed the answer, and the answer is the
    same: a running id is refused, a repeated request id gets its run, a
    closed id is reused under the policy that allows it."""
    assert await ensure_statement_stats(region.dsn)
    first = await client.start_workflow(WaitsForever, id="known", task_queue=IDLE_QUEUE)
    assert region.store.start_namespaces.get("default") is not None
    reads = await _calls(region, START_READ)
    fresh = await client.start_workflow(WaitsForever, id="fresh", task_queue=IDLE_QUEUE)
    assert await _calls(region, START_READ) == reads  # no read
    with pytest.raises(WorkflowAlreadyStartedError):
        await client.start_workflow(WaitsForever, id="known", task_queue=IDLE_QUEUE)
    request_id = str(uuid.uuid4())
    again = [
        await client.start_workflow(
            WaitsForever, id="dup", task_queue=IDLE_QUEUE, request_id=request_id
        )
        for _ in range(2)
    ]
    assert again[0].run_id == again[1].run_id
    await first.terminate("done")
    reused = await client.start_workflow(WaitsForever, id="known", task_queue=IDLE_QUEUE)
    assert reused.run_id != first.run_id
    async with region.store.pool.acquire() as conn:
        runs = await conn.fetchval(
            "SELECT count(*) FROM executions WHERE namespace = 'default' "
            "AND workflow_id IN ('known', 'fresh', 'dup')"
        )
    assert runs == 4
    assert fresh.run_id is not None


async def test_activities_that_change_before_they_complete_are_not_remembered(
    region: Region, client: Client
) -> None:
    """An activity a poll will start, or one that heartbeats, always changes
    its row before it completes: its completion reads the run."""
    h = await client.start_workflow(WaitsForever, id="w", task_queue=IDLE_QUEUE)
    run_id = str(h.run_id)
    async with region.store.pool.acquire() as conn:
        rt = await _remembered_write(region, conn, run_id, "one")
        ids = {}
        for name, state, heartbeat in (
            ("eager", "started", None),
            ("polled", "scheduled", None),
            ("beats", "started", 5.0),
        ):
            sid = rt.add_event(EventType.ACTIVITY_TASK_SCHEDULED, {"activity_type": name})
            ids[name] = sid
            rt.insert_activity(
                {
                    "namespace": "default",
                    "workflow_id": "w",
                    "run_id": run_id,
                    "scheduled_event_id": sid,
                    "activity_id": name,
                    "activity_type": name,
                    "task_queue": IDLE_QUEUE,
                    "input": [],
                    "first_scheduled_time": rt.now,
                    "scheduled_time": rt.now,
                    "retry_policy": {},
                    "state": state,
                    "attempt": 1,
                    "started_identity": "me" if state == "started" else None,
                    "heartbeat_s": heartbeat,
                    "last_failure": None,
                    "cancel_requested": False,
                }
            )
        await rt.write_txn()
    cache = region.store.run_cache
    key = ("default", "w", run_id)
    assert cache.lookup(key, ids["eager"]) is not None
    assert cache.lookup(key, ids["polled"]) is None
    assert cache.lookup(key, ids["beats"]) is None
