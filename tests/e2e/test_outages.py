"""Outages: a region lost with its database (forced failover), Kafka stopped under load.

Regions are separate `baton server` processes; region A of the forced-failover
test has a PostgreSQL cluster of its own, which the test stops. Both tests
stop and restart a Kafka broker, so this module runs one of its own.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from ops.kafka import KafkaBroker
from ops.pg import PgCluster
from replication.admin import list_conflicts
from replication.failover import FailoverTargetBehind, forced_failover
from replication.verify import verify_namespace
from store import db
from tests.apps.workflows import ALL_ACTIVITIES, Noted, Steps, ThreeSteps, step
from tests.helpers import eventually
from tests.multiregion import Regions, server_regions
from worker import Client, Worker, workflow
from worker._http import ns_path, wf_path
from worker.errors import TaskNotFoundError, UnavailableError

pytestmark = pytest.mark.e2e
QUEUE = "outages"


@pytest.fixture
async def two_regions(
    pg: PgCluster, template_db: str, broker: KafkaBroker, state_dir: Path, tmp_path: Path
) -> AsyncIterator[Regions]:
    if broker.pid is None:  # a failed test may have left it stopped
        await broker.up()
    async with server_regions(
        pg, template_db, broker.bootstrap, state_dir, tmp_path, count=2, own_pg=(0,)
    ) as regions:
        yield regions


@pytest.fixture
async def three_regions(
    pg: PgCluster, template_db: str, broker: KafkaBroker, state_dir: Path, tmp_path: Path
) -> AsyncIterator[Regions]:
    if broker.pid is None:
        await broker.up()
    async with server_regions(
        pg, template_db, broker.bootstrap, state_dir, tmp_path, count=3
    ) as regions:
        yield regions


async def _history(client: Client, wid: str) -> list[dict[str, Any]]:
    return list(await client.get_workflow_handle(wid).history())


async def test_forced_failover_then_the_old_region_returns_as_standby(
    two_regions: Regions, broker: KafkaBroker
) -> None:
    rs = two_regions
    a, b = rs[0], rs[1]
    ns = "forced"
    async with await Client.connect(rs.urls, namespace=ns) as client:
        await client.create_namespace(ns, regions=[a.name, b.name], active_region=a.name)
        worker = Worker(
            client, task_queue=QUEUE, workflows=[Noted, Steps], activities=ALL_ACTIVITIES
        )
        async with worker:
            noted = [
                await client.start_workflow(Noted, i, 6.0, id=f"noted-{i}", task_queue=QUEUE)
                for i in range(20)
            ]
            steps = [
                await client.start_workflow(Steps, 30, 0.2, id=f"steps-{i}", task_queue=QUEUE)
                for i in range(5)
            ]

            async def all_sleeping_in_b() -> bool:
                n = await rs.fetchval(
                    b.name,
                    "SELECT count(*) FROM history_events WHERE namespace = $1 "
                    "AND event_type = 'TimerStarted'",
                    ns,
                )
                # the Steps runs too: the test follows every run B knows of
                known = await rs.fetchval(
                    b.name,
                    "SELECT count(*) FROM executions WHERE namespace = $1 "
                    "AND workflow_id LIKE 'steps-%'",
                    ns,
                )
                return n == 20 and known == 5

            await eventually(all_sleeping_in_b, timeout=60, what="timers and steps in B")
            # Kafka goes away: what A writes now stays in its outbox.
            broker.stop()
            for i in range(5):
                await client.get_workflow_handle(f"noted-{i}").signal("note", f"lost-{i}")
            orphans = [
                await client.start_workflow(Noted, 100 + i, 0.5, id=f"orphan-{i}", task_queue=QUEUE)
                for i in range(2)
            ]
            # Region A is lost: its server is SIGKILLed and its database stops.
            rs.kill(a.name)
            await asyncio.to_thread(a.pg.stop)
            await broker.up()
            t_force = time.monotonic()
            wall_force = time.time()
            result = await forced_failover(rs.config, ns, b.name)
            assert result.forced and result.target == b.name and result.version == 2

            async def first_progress_in_b() -> float | None:
                row = await rs.fetchval(
                    b.name,
                    "SELECT extract(epoch FROM min(event_time)) FROM history_events "
                    "WHERE namespace = $1 AND version = $2 AND event_type IN "
                    "('ActivityTaskCompleted', 'TimerFired', 'WorkflowTaskCompleted')",
                    ns,
                    2,
                )
                return float(row) if row is not None else None  # type: ignore[arg-type]

            first = await eventually(first_progress_in_b, timeout=60, what="progress in B")
            print(
                f"\nforced failover: promote {result.seconds:.2f} s, first progress in B "
                f"{first - wall_force:.2f} s after the command"
            )
            # every workflow B knew of completes in B
            results = await asyncio.gather(*[h.result(timeout=120) for h in noted + steps])
            assert time.monotonic() - t_force < 120
            assert [r["value"] for r in results[:20]] == [i + 2 for i in range(20)]
            # the signals A took after Kafka stopped are not in B (yet)
            assert all(r["notes"] == [] for r in results[:20])
            assert results[20:] == [30] * 5

            # Region A returns: it sees the higher version and becomes a standby.
            await asyncio.to_thread(a.pg.start)
            await rs.start(a.name)

            async def a_is_standby() -> bool:
                row = await rs.fetchval(
                    a.name, "SELECT active_region FROM namespaces WHERE name = $1", ns
                )
                return row == b.name

            await eventually(a_is_standby, timeout=60, what="A standby")
            # the starts A took were re-applied in B and run there (once A's
            # publisher, which starts after its applier, has shipped them)
            assert len(orphans) == 2

            async def orphans_in_b() -> bool:
                n = await rs.fetchval(
                    b.name,
                    "SELECT count(*) FROM executions WHERE namespace = $1 "
                    "AND workflow_id LIKE 'orphan-%'",
                    ns,
                )
                return n == 2

            await eventually(orphans_in_b, timeout=60, what="A's starts re-applied in B")
            for i in range(2):
                r = await client.get_workflow_handle(f"orphan-{i}").result(timeout=90)
                assert r["value"] == 100 + i + 2

            async def archived() -> list[dict[str, Any]]:
                rows = await list_conflicts(rs.config, ns, a.name)
                wids = {r["workflow_id"] for r in rows}
                want = {f"noted-{i}" for i in range(5)} | {"orphan-0", "orphan-1"}
                return rows if want <= wids else []

            conflicts = await eventually(archived, timeout=60, what="A's tail archived")
            assert all(c["kind"] == "local_tail" and c["winning_version"] == 2 for c in conflicts)
            # B refused the late batches and re-applied their starts once; the
            # signals found their workflows closed, and say so
            in_b = await list_conflicts(rs.config, ns, b.name)
            outcomes = [o for c in in_b for o in c["reapplied"]]
            # (a tail can reach B twice: as A's late batch and as A's archive)
            started = [o for o in outcomes if o["event_type"] == "WorkflowExecutionStarted"]
            assert [o["outcome"] for o in started].count("re-applied") == 2
            signals = [o for o in outcomes if o["event_type"] == "WorkflowExecutionSignaled"]
            refused = [o for o in signals if o["outcome"] == "refused"]
            assert len(refused) == 5
            assert all(o["code"] == "WORKFLOW_NOT_RUNNING" for o in refused)
            assert all(o["outcome"] == "already re-applied" for o in signals if o not in refused)

            async def clean() -> Any:
                v = await verify_namespace(rs.config, ns)
                return v if v.clean else None

            v = await eventually(clean, timeout=90, interval=1.0, what="verify clean")
            assert v.runs_compared >= 27


async def test_a_database_shutting_down_answers_unavailable_not_internal(
    two_regions: Regions,
) -> None:
    """While PostgreSQL shuts down (or starts up) it refuses new sessions with
    "the database system is shutting down": every route answers UNAVAILABLE,
    which clients retry (elsewhere), and not a non-retryable INTERNAL."""
    rs = two_regions
    a = rs[0]
    ns = "shutting"
    async with await Client.connect(a.url, namespace=ns) as client:
        await client.create_namespace(ns, regions=[a.name], active_region=a.name)
    # A session of ours keeps a smart shutdown waiting, refusing new sessions.
    holder = await db.connect(a.dsn)
    try:
        pid = a.pg.pid()
        assert pid is not None
        os.kill(pid, signal.SIGTERM)
        # end the server's sessions: its next requests need new ones
        await holder.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE pid <> pg_backend_pid() AND backend_type = 'client backend'"
        )
        async with httpx.AsyncClient(base_url=a.url, timeout=30) as http:
            answers = [
                await http.post(
                    f"/api/v1/namespaces/{ns}/workflows",
                    json={"workflow_type": "T", "task_queue": "q", "workflow_id": "w"},
                ),
                await http.post(
                    f"/api/v1/namespaces/{ns}/workflow-tasks/poll",
                    json={"task_queue": "q", "wait_s": 1},
                ),
                await http.get(f"/api/v1/namespaces/{ns}"),
            ]
        for resp in answers:
            assert resp.status_code == 503, resp.text
            assert resp.json()["error"]["code"] == "UNAVAILABLE", resp.text
    finally:
        await holder.close()

    async def stopped() -> bool:
        return a.pg.pid() is None

    await eventually(stopped, timeout=30, what="the database stopped")
    await asyncio.to_thread(a.pg.start)


async def test_a_database_closed_to_new_sessions_answers_unavailable(
    two_regions: Regions,
) -> None:
    """An operator closes a region's database to new sessions (``ALTER
    DATABASE ... ALLOW_CONNECTIONS false``): the routes answer UNAVAILABLE,
    which clients retry elsewhere, and work again once it opens."""
    rs = two_regions
    a = rs[0]
    ns = "closed-db"
    async with await Client.connect(a.url, namespace=ns) as client:
        await client.create_namespace(ns, regions=[a.name], active_region=a.name)
    # a session in another database: PostgreSQL refuses to close the current one
    holder = await db.connect(a.pg.dsn("postgres"))
    try:
        await holder.execute(f'ALTER DATABASE "{a.dbname}" ALLOW_CONNECTIONS false')
        # end the server's sessions: its next requests need new ones
        await holder.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE pid <> pg_backend_pid() AND backend_type = 'client backend' "
            "AND datname = $1",
            a.dbname,
        )
        async with httpx.AsyncClient(base_url=a.url, timeout=30) as http:
            answers = [
                await http.post(
                    f"/api/v1/namespaces/{ns}/workflows",
                    json={"workflow_type": "T", "task_queue": "q", "workflow_id": "w"},
                ),
                await http.get(f"/api/v1/namespaces/{ns}"),
            ]
        for resp in answers:
            assert resp.status_code == 503, resp.text
            assert resp.json()["error"]["code"] == "UNAVAILABLE", resp.text
    finally:
        await holder.execute(f'ALTER DATABASE "{a.dbname}" ALLOW_CONNECTIONS true')
        await holder.close()
    async with await Client.connect(a.url, namespace=ns) as client:
        handle = await client.start_workflow("T", id="after", task_queue="q")
        assert handle.run_id


@workflow.defn(name="NotedAfterTimer")
class NotedAfterTimer:
    """An activity and a short durable timer, then waits for a `note` and runs
    one more activity. Unlike `Noted` it cannot finish before the note comes,
    however long a failover takes."""

    def __init__(self) -> None:
        self.notes: list[str] = []

    @workflow.run
    async def run(self, n: int) -> dict[str, Any]:
        x = await workflow.execute_activity(step, n, start_to_close_timeout=timedelta(seconds=10))
        await workflow.sleep(timedelta(seconds=1))
        await workflow.wait_condition(lambda: bool(self.notes))
        x = await workflow.execute_activity(step, x, start_to_close_timeout=timedelta(seconds=10))
        return {"value": x, "notes": self.notes}

    @workflow.signal
    def note(self, text: str) -> None:
        self.notes.append(text)


async def test_clients_and_workers_leave_a_region_whose_database_is_down(
    two_regions: Regions,
) -> None:
    """Region A loses its database but its server stays up, answering
    UNAVAILABLE. After a forced failover, a client and a worker given every
    region's URL carry on in B instead of waiting on A until their deadline."""
    rs = two_regions
    a, b = rs[0], rs[1]
    ns = "dbdown"
    async with await Client.connect(rs.urls, namespace=ns, retry_for_s=20) as client:
        await client.create_namespace(ns, regions=[a.name, b.name], active_region=a.name)
        async with Worker(
            client, task_queue=QUEUE, workflows=[NotedAfterTimer], activities=ALL_ACTIVITIES
        ):
            handle = await client.start_workflow(NotedAfterTimer, 1, id="dbdown", task_queue=QUEUE)

            async def sleeping_in_b() -> bool:
                n = await rs.fetchval(
                    b.name,
                    "SELECT count(*) FROM history_events WHERE namespace = $1 "
                    "AND event_type = 'TimerStarted'",
                    ns,
                )
                return n == 1

            await eventually(sleeping_in_b, timeout=60, what="the timer replicated to B")
            await asyncio.to_thread(a.pg.stop)
            try:
                # Before the failover B sends the client back to A: a call
                # ends in A's UNAVAILABLE, whichever region answered last.
                for k in range(6):
                    with pytest.raises(UnavailableError):
                        await client.call(
                            "POST",
                            wf_path(ns, "dbdown", "/signal"),
                            {"signal_name": "note", "input": [], "request_id": f"early-{k}"},
                            retry_for_s=0.3 + 0.2 * k,
                        )
                result = await forced_failover(rs.config, ns, b.name)
                assert result.version == 2
                await handle.signal("note", "in B")
                assert await handle.result(timeout=60) == {"value": 3, "notes": ["in B"]}
                assert client.transport.active_endpoint == b.url
            finally:
                await asyncio.to_thread(a.pg.start)


@workflow.defn(name="Relay")
class Relay:
    """Continues as new at each signal, twice."""

    def __init__(self) -> None:
        self.notes: list[str] = []

    @workflow.run
    async def run(self, gen: int) -> list[str]:
        await workflow.wait_condition(lambda: bool(self.notes))
        if gen < 2:
            workflow.continue_as_new(gen + 1)
        return self.notes

    @workflow.signal
    def go(self, note: str) -> None:
        self.notes.append(note)


async def test_a_run_the_lost_region_continued_into_is_archived_when_it_returns(
    two_regions: Regions, broker: KafkaBroker
) -> None:
    """A continues a run as new and never ships it; B, promoted by force, holds
    the run before, still open (no worker has run it on). When A returns, the
    new run A alone holds lost with the branch that made it: A archives it
    instead of keeping a second running run of the workflow id (its current
    one), and both regions end equal."""
    rs = two_regions
    a, b = rs[0], rs[1]
    ns = "relay"
    runs_sql = (
        "SELECT array_agg(run_id::text || ':' || status ORDER BY start_time) "
        "FROM executions WHERE namespace = $1"
    )
    current_sql = "SELECT run_id::text FROM current_executions WHERE namespace = $1"
    async with await Client.connect(rs.urls, namespace=ns) as client:
        await client.create_namespace(ns, regions=[a.name, b.name], active_region=a.name)
        async with Worker(client, task_queue=QUEUE, workflows=[Relay]):
            first = await client.start_workflow(Relay, 0, id="relay", task_queue=QUEUE)

            async def waiting_in_b() -> bool:
                n = await rs.fetchval(
                    b.name,
                    "SELECT count(*) FROM history_events WHERE namespace = $1 "
                    "AND event_type = 'WorkflowTaskCompleted'",
                    ns,
                )
                return n == 1

            await eventually(waiting_in_b, timeout=60, what="the run waiting in B")
            broker.stop()
            await first.signal("go", "lost in A")

            async def continued_in_a() -> bool:
                runs = await rs.fetchval(a.name, runs_sql, ns)
                return len(runs or []) == 2  # type: ignore[arg-type]

            await eventually(continued_in_a, timeout=30, what="the new run in A")
        rs.kill(a.name)
        await asyncio.to_thread(a.pg.stop)
        await broker.up()
        await forced_failover(rs.config, ns, b.name)
        await asyncio.to_thread(a.pg.start)
        await rs.start(a.name)

        async def clean() -> Any:
            v = await verify_namespace(rs.config, ns)
            return v if v.clean else None

        await eventually(clean, timeout=60, interval=1.0, what="verify clean")
        in_b = await rs.fetchval(b.name, runs_sql, ns)
        assert [r.split(":")[1] for r in in_b] == ["running"]  # type: ignore[union-attr]
        assert await rs.fetchval(a.name, runs_sql, ns) == in_b
        assert await rs.fetchval(a.name, current_sql, ns) == first.run_id
        archived = await list_conflicts(rs.config, ns, a.name)
        assert any(c["first_event_id"] == 1 for c in archived), archived


async def test_the_lost_region_s_tasks_and_cache_do_not_leak_into_the_new_one(
    two_regions: Regions, broker: KafkaBroker
) -> None:
    """After a forced failover the new region reaches the same event ids as the
    lost one, on another branch of history. Neither a late completion from the
    old region's worker nor a worker's cached run of the lost branch may carry
    on there.

    Two workflows sleep on a timer; with Kafka down, A takes a signal for each
    and hands out their workflow tasks (events 12-14 in A). After the forced
    failover B fires the timers instead, at the very same event ids (12-14 in
    B). Tasks are polled by hand so each step happens in a known order.
    """
    rs = two_regions
    a, b = rs[0], rs[1]
    ns = "stale"
    # long enough that no timer fires in A before it is lost (stopping the
    # broker alone can take seconds), short enough to wait for in B
    sleep_s = 10.0
    async with await Client.connect(rs.urls, namespace=ns) as client:
        await client.create_namespace(ns, regions=[a.name, b.name], active_region=a.name)
        async with Worker(client, task_queue=QUEUE, workflows=[Noted], activities=ALL_ACTIVITIES):
            late = await client.start_workflow(
                Noted, 1, sleep_s, id="late-worker", task_queue=QUEUE, task_timeout=60
            )
            cached = await client.start_workflow(Noted, 10, sleep_s, id="cached", task_queue=QUEUE)

            async def sleeping_in_b() -> bool:
                n = await rs.fetchval(
                    b.name,
                    "SELECT count(*) FROM history_events WHERE namespace = $1 "
                    "AND event_type = 'TimerStarted'",
                    ns,
                )
                return n == 2

            await eventually(sleeping_in_b, timeout=60, what="timers replicated to B")

        async def call(path: str, body: dict[str, Any]) -> Any:
            return await client.call("POST", ns_path(ns, path), body)

        async def poll() -> dict[str, Any]:
            res = await call("/workflow-tasks/poll", {"task_queue": QUEUE, "wait_s": 30})
            assert res and res["task"], "no workflow task handed out"
            return dict(res["task"])

        def kinds(task: dict[str, Any]) -> list[str]:
            return [e["event_type"] for e in task["events"]]

        broker.stop()
        await late.signal("note", "taken in A")
        late_in_a = await poll()
        await cached.signal("note", "taken in A")
        cached_in_a = await poll()
        assert [late_in_a["workflow_id"], cached_in_a["workflow_id"]] == ["late-worker", "cached"]
        # a worker of region A runs the second task there and caches the run
        old_worker = Worker(client, task_queue=QUEUE, workflows=[Noted])
        await old_worker._handle_workflow_task(cached_in_a)
        rs.kill(a.name)
        await broker.up()
        result = await forced_failover(rs.config, ns, b.name)
        assert result.version == 2
        in_b = {t["workflow_id"]: t for t in [await poll(), await poll()]}  # timers were due

        # 1. A late completion with A's token: same run, same ids, other branch
        late_in_b = in_b["late-worker"]
        assert late_in_b["run_id"] == late_in_a["run_id"]
        assert late_in_b["started_event_id"] == late_in_a["started_event_id"]
        assert "WorkflowExecutionSignaled" in kinds(late_in_a)
        assert "TimerFired" in kinds(late_in_b)
        with pytest.raises(TaskNotFoundError) as exc:
            await call(
                "/workflow-tasks/complete",
                {"task_token": late_in_a["task_token"], "commands": []},
            )
        assert "failover version 1" in exc.value.message

        # 2. Another worker runs B's branch of "cached" a step further ...
        await Worker(client, task_queue=QUEUE, workflows=[Noted])._handle_workflow_task(
            in_b["cached"]
        )
        async with Worker(client, task_queue=QUEUE, activities=ALL_ACTIVITIES):
            cached_next = await poll()  # after its activity
        stale = old_worker._cache.get(cached.run_id)
        assert cached_next["previous_started_event_id"] == stale.last_event_id
        assert (cached_next["previous_started_event_version"], stale.last_event_version) == (2, 1)
        # ... and the old worker, holding the lost branch at that very event
        # id, replays B's history instead of going on from its cache: the run
        # closes with B's branch (no signal), and no workflow task failed.
        await old_worker._handle_workflow_task(cached_next)
        assert await cached.result(timeout=10) == {"value": 12, "notes": []}
        history = await cached.history()
        assert "WorkflowTaskFailed" not in [e["event_type"] for e in history]

        # B's own task of "late-worker" is untouched: hand it back and finish
        await call(
            "/workflow-tasks/fail",
            {"task_token": late_in_b["task_token"], "failure": {"message": "handed back"}},
        )
        async with Worker(client, task_queue=QUEUE, workflows=[Noted], activities=ALL_ACTIVITIES):
            assert await late.result(timeout=60) == {"value": 3, "notes": []}


async def test_kafka_stopped_for_ten_seconds_under_load(
    two_regions: Regions, broker: KafkaBroker
) -> None:
    rs = two_regions
    a, b = rs[0], rs[1]
    ns = "outage"
    n = 60
    async with await Client.connect(rs.urls, namespace=ns) as client:
        await client.create_namespace(ns, regions=[a.name, b.name], active_region=a.name)
        async with Worker(
            client, task_queue=QUEUE, workflows=[ThreeSteps], activities=ALL_ACTIVITIES
        ):

            async def load() -> list[int]:
                out = []
                for i in range(n):
                    h = await client.start_workflow(ThreeSteps, i, id=f"load-{i}", task_queue=QUEUE)
                    out.append(await h.result(timeout=60))
                    await asyncio.sleep(0.1)
                return out

            runner = asyncio.create_task(load())
            await asyncio.sleep(3.0)
            broker.stop()
            stopped = time.monotonic()
            await asyncio.sleep(10.0)
            # A kept working without Kafka; its outbox held what B misses
            backlog = await rs.fetchval(a.name, "SELECT count(*) FROM outbox")
            assert isinstance(backlog, int) and backlog > 0
            await broker.up()
            print(
                f"\nKafka down {time.monotonic() - stopped:.1f} s; A's outbox held {backlog} rows"
            )
            results = await runner
        assert results == [i + 3 for i in range(n)]

    async def drained() -> bool:
        return await rs.fetchval(a.name, "SELECT count(*) FROM outbox") == 0

    await eventually(drained, timeout=60, what="A's outbox shipped")

    async def clean() -> Any:
        v = await verify_namespace(rs.config, ns)
        return v if v.clean else None

    v = await eventually(clean, timeout=60, interval=1.0, what="verify clean")
    assert v.runs_compared == n
    # nothing applied twice: B's events are unique per run and contiguous from 1
    gaps = await rs.fetchval(
        b.name,
        "SELECT count(*) FROM (SELECT workflow_id, run_id, count(*) AS c, max(event_id) AS m "
        "FROM history_events WHERE namespace = $1 GROUP BY 1, 2) r WHERE c <> m",
        ns,
    )
    assert gaps == 0
    conflicts = await list_conflicts(rs.config, ns)
    assert conflicts == []


async def test_three_regions_converge_after_a_forced_failover(
    three_regions: Regions, broker: KafkaBroker
) -> None:
    """A region lost in a forced failover returns with what it wrote while cut
    off: a signal to a run the others hold and the start of a run they do not.
    Whichever way that reaches the others (as late batches if its publisher is
    first, as a conflict archive if its applier learns of the failover first),
    the new active region refuses it and re-applies what it can, and the third
    region, a standby, keeps none of it: all three end equal.
    """
    rs = three_regions
    a, b, c = rs[0], rs[1], rs[2]
    ns = "three"
    names = [a.name, b.name, c.name]
    async with await Client.connect(rs.urls, namespace=ns) as client:
        await client.create_namespace(ns, regions=names, active_region=a.name)
        await client.start_workflow("Nobody", 1, id="existing", task_queue="nobody")

        async def everywhere() -> bool:
            for r in (b.name, c.name):
                n = await rs.fetchval(r, "SELECT count(*) FROM executions WHERE namespace = $1", ns)
                if n != 1:
                    return False
            return True

        await eventually(everywhere, timeout=60, what="the first run in B and C")
        broker.stop()
        # what A takes now never leaves it before it is lost
        await client.get_workflow_handle("existing").signal("note", "cut off")
        lost = await client.start_workflow("Nobody", 2, id="twice", task_queue="nobody")
        rs.kill(a.name)
        await broker.up()
        result = await forced_failover(rs.config, ns, b.name)
        assert result.version == 2
        # B starts the same workflow id for itself, so re-applying A's start is refused
        kept = await client.start_workflow("Nobody", 3, id="twice", task_queue="nobody")
        assert kept.run_id != lost.run_id

        async def runs_of(region: str, run_id: str) -> int:
            n = await rs.fetchval(
                region, "SELECT count(*) FROM executions WHERE run_id = $1::uuid", run_id
            )
            return int(n)  # type: ignore[call-overload]

        async def b_run_in_c() -> bool:
            return await runs_of(c.name, kept.run_id) == 1

        await eventually(b_run_in_c, timeout=60, what="B's run in C")
        await rs.start(a.name)  # A ships what it wrote while cut off

        async def b_refused_the_start() -> list[dict[str, Any]]:
            rows = await list_conflicts(rs.config, ns, b.name)
            return [
                o
                for r in rows
                for o in r["reapplied"]
                if o["event_type"] == "WorkflowExecutionStarted"
            ]

        starts = await eventually(b_refused_the_start, timeout=60, what="B re-applying A's start")
        assert all(o["outcome"] in ("refused", "already re-applied") for o in starts)
        assert "refused" in [o["outcome"] for o in starts]

        async def clean() -> Any:
            v = await verify_namespace(rs.config, ns)
            return v if v.clean else None

        v = await eventually(clean, timeout=90, interval=1.0, what="verify clean")
        assert v.regions == names
        for r in names:  # A's lost run is in none of them, B's is in all
            assert await runs_of(r, lost.run_id) == 0, r
            assert await runs_of(r, kept.run_id) == 1, r
        # the signal A took is archived in A, and B re-applied it to its run
        history = await client.get_workflow_handle("existing").history()
        assert [
            e["version"] for e in history if e["event_type"] == "WorkflowExecutionSignaled"
        ] == [2]


async def test_a_forced_failover_refuses_a_target_behind_another_standby(
    three_regions: Regions,
) -> None:
    """With A lost, promoting B while C has applied more of A's stream would drop
    what only C holds: the forced failover says so, changes nothing, and names C."""
    rs = three_regions
    a, b, c = rs[0], rs[1], rs[2]
    ns = "behind"
    async with await Client.connect(rs.urls, namespace=ns) as client:
        await client.create_namespace(ns, regions=[a.name, b.name, c.name], active_region=a.name)

        async def runs_in(region: str) -> int:
            n = await rs.fetchval(
                region, "SELECT count(*) FROM executions WHERE namespace = $1", ns
            )
            return int(n)  # type: ignore[call-overload]

        await client.start_workflow("Nobody", 0, id="before", task_queue="nobody")

        async def both_have_it() -> bool:
            return await runs_in(b.name) == 1 and await runs_in(c.name) == 1

        await eventually(both_have_it, timeout=60, what="the first run in B and C")
        rs.kill(b.name)  # B's applier stops: C goes on applying A's stream
        for i in range(3):
            await client.start_workflow("Nobody", i, id=f"only-c-{i}", task_queue="nobody")

        async def c_has_them() -> bool:
            return await runs_in(c.name) == 4

        await eventually(c_has_them, timeout=60, what="C ahead of B")
        rs.kill(a.name)

        with pytest.raises(FailoverTargetBehind) as exc:
            await forced_failover(rs.config, ns, b.name)
        assert exc.value.code.value == "FAILOVER_TARGET_BEHIND"
        assert exc.value.details["ahead"] == c.name and exc.value.details["messages"] >= 3
        assert f"--to {c.name} --force" in exc.value.message
        # nothing moved
        for r in (b.name, c.name):
            row = await rs.fetchval(
                r,
                "SELECT active_region || '@' || failover_version FROM namespaces WHERE name = $1",
                ns,
            )
            assert row == f"{a.name}@1"

        # the region that holds the most takes over
        result = await forced_failover(rs.config, ns, c.name)
        assert result.target == c.name and result.forced
        assert await runs_in(c.name) == 4
