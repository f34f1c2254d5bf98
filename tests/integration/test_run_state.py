"""What a running workflow carries from one region to another, on real PostgreSQL and Kafka.

Two regions served in-process, replicating through a real broker. Where a test
needs region A's publisher to hold some writes back (as a region lost before
it shipped them), it keeps a transaction with a transaction id open in A's
database: the publisher ships only rows of transactions older than every
running one, so every write after that transaction waits until it ends.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import httpx
import orjson
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from replication import topic_for
from replication.admin import list_conflicts
from replication.applier import Applier
from replication.failover import forced_failover, graceful_failover
from replication.verify import verify_namespace
from store import db
from store.activity_tasks import complete_activity_task, poll_activity_task
from store.tasks import complete_workflow_task, poll_workflow_task
from tests.conftest import Region, RegionPair
from tests.helpers import eventually
from worker import ActivityError, Client, RetryPolicy, Worker, activity, wire, workflow
from worker.errors import InvalidArgumentError

pytestmark = pytest.mark.integration
QUEUE = "run-state"


@workflow.defn(name="Quick")
class Quick:
    @workflow.run
    async def run(self) -> str:
        await workflow.sleep(timedelta(seconds=0.1))
        return "ok"


@workflow.defn(name="Tally")
class Tally:
    def __init__(self) -> None:
        self.values: list[int] = []
        self.done = False

    @workflow.run
    async def run(self) -> list[int]:
        await workflow.wait_condition(lambda: self.done)
        return self.values

    @workflow.signal
    def add(self, n: int) -> None:
        self.values.append(n)

    @workflow.signal
    def finish(self) -> None:
        self.done = True

    @workflow.update
    async def slow_double(self, n: int) -> int:
        await workflow.sleep(timedelta(seconds=3))
        self.values.append(2 * n)
        return 2 * n


FIXED = {"flag": False}


@workflow.defn(name="Broken")
class Broken:
    """Its workflow task raises until the flag flips (a bug, then its fix)."""

    @workflow.run
    async def run(self) -> str:
        if not FIXED["flag"]:
            raise RuntimeError("a bug in the workflow code")
        return "fixed"


ATTEMPTS: list[tuple[int, float]] = []


@activity.defn
async def fails_first(tag: str) -> str:
    info = activity.info()
    ATTEMPTS.append((info.attempt, time.time()))
    if info.attempt == 1:
        activity.heartbeat("first")
        await asyncio.sleep(0.2)  # the heartbeat goes out before the failure
        raise RuntimeError("first attempt fails")
    return tag


@activity.defn
async def hangs() -> str:
    await asyncio.sleep(300)
    return "never"


@workflow.defn(name="Backoff")
class Backoff:
    @workflow.run
    async def run(self) -> str:
        return str(
            await workflow.execute_activity(
                fails_first,
                "done",
                start_to_close_timeout=timedelta(seconds=30),
                retry_policy=RetryPolicy(initial_interval=timedelta(seconds=5)),
            )
        )


@workflow.defn(name="Deadline")
class Deadline:
    @workflow.run
    async def run(self, max_attempts: int) -> str:
        try:
            await workflow.execute_activity(
                hangs,
                schedule_to_close_timeout=timedelta(seconds=8),
                start_to_close_timeout=timedelta(seconds=60),
                retry_policy=RetryPolicy(
                    initial_interval=timedelta(seconds=0.5), maximum_attempts=max_attempts
                ),
            )
        except ActivityError as err:
            return f"gave up: {type(err.__cause__).__name__}"
        return "finished"


def kinds(events: list[dict[str, Any]]) -> list[str]:
    return [e["event_type"] for e in events]


_opened: list[Client] = []


@pytest.fixture(autouse=True)
async def _close_clients() -> AsyncIterator[None]:
    """A test that fails before its own ``close`` must not leave a session behind
    for the garbage collector to report in some later, unrelated test."""
    yield
    while _opened:
        await _opened.pop().close()


async def two_region_ns(rs: RegionPair, name: str) -> Client:
    client = await Client.connect([rs.a.url, rs.b.url], namespace=name)
    _opened.append(client)
    await client.create_namespace(name, regions=[rs.a.name, rs.b.name], active_region=rs.a.name)
    return client


class HoldBack:
    """Writes of a region from now on are not shipped until :meth:`release`."""

    def __init__(self, region: Region):
        self.region = region

    async def __aenter__(self) -> HoldBack:
        self.conn = await db.connect(self.region.dsn)
        self.tx = self.conn.transaction()
        await self.tx.start()
        await self.conn.fetchval("SELECT pg_current_xact_id()")
        return self

    async def release(self) -> None:
        if not self.conn.is_closed():
            await self.tx.rollback()
            await self.conn.close()

    async def __aexit__(self, *exc: object) -> None:
        await self.release()


async def fetchval(region: Region, sql: str, *args: object) -> Any:
    conn = await db.connect(region.dsn)
    try:
        return await conn.fetchval(sql, *args)
    finally:
        await conn.close()


async def events_in(region: Region, ns: str, wid: str) -> int:
    return int(
        await fetchval(
            region,
            "SELECT count(*) FROM history_events WHERE namespace = $1 AND workflow_id = $2",
            ns,
            wid,
        )
    )


async def verified(rs: RegionPair, ns: str) -> None:
    async def clean() -> bool:
        return (await verify_namespace(rs.a.config, ns)).clean

    await eventually(clean, timeout=60, interval=0.5, what=f"verify {ns} clean")


# --------------------------------------------------------------------------- items 3 and 4


async def test_a_task_started_in_the_lost_region_is_rescheduled_whatever_was_shipped(
    regions: RegionPair,
) -> None:
    rs, ns = regions, "lost-task"
    client = await two_region_ns(rs, ns)
    api = f"/api/v1/namespaces/{ns}/workflow-tasks"
    h = await client.start_workflow(Quick, id="w", task_queue=QUEUE)

    async def in_b(n: int) -> bool:
        return await events_in(rs.b, ns, "w") >= n

    await eventually(lambda: in_b(2), what="the start in B")
    first = await HoldBack(rs.a).__aenter__()
    # W1: a worker takes the task (WorkflowTaskStarted, event 3) ...
    task = (await client.call("POST", f"{api}/poll", {"task_queue": QUEUE, "wait_s": 5}))["task"]
    assert task["started_event_id"] == 3
    async with HoldBack(rs.a):
        # W2: ... and completes it (events 4-5), which A does not ship
        await client.call(
            "POST",
            f"{api}/complete",
            {
                "task_token": task["task_token"],
                "commands": [
                    {"type": "StartTimer", "attributes": {"timer_id": "1", "duration_s": 9e3}}
                ],
            },
        )
        await first.release()  # W1 ships, alone
        await eventually(lambda: in_b(3), what="W1 in B")
        # B's row is the row W1 left (a started task), not the row as it was
        # when the publisher read it (W2 done, no task at all).
        row = await fetchval(
            rs.b,
            "SELECT to_jsonb(e) FROM executions e WHERE namespace = $1 AND workflow_id = $2",
            ns,
            "w",
        )
        assert (row["next_event_id"], row["wt_started_event_id"]) == (4, 3)
        result = await forced_failover(rs.a.config, ns, rs.b.name)
        assert result.workflows_rebuilt == 1
        async with await Client.connect(rs.b.url, namespace=ns) as in_b_only:
            b_events = (await in_b_only.get_workflow_handle("w").history())[3:5]
        assert kinds(b_events) == ["WorkflowTaskTimedOut", "WorkflowTaskScheduled"]
        assert {e["version"] for e in b_events} == {result.version}
    # A's lost W2 ships now: B refuses it, A archives it and converges.
    async with Worker(client, task_queue=QUEUE, workflows=[Quick]):
        assert await h.result(timeout=30) == "ok"
    await verified(rs, ns)
    conflicts = await list_conflicts(rs.a.config, ns)
    archived = {(c["region"], c["kind"], c["first_event_id"]) for c in conflicts}
    assert (rs.a.name, "local_tail", 4) in archived
    await client.close()


# --------------------------------------------------------------------------- item 5


async def test_a_signal_retried_in_the_new_region_is_not_applied_again_when_the_old_returns(
    regions: RegionPair,
) -> None:
    rs, ns = regions, "signal-once"
    client = await two_region_ns(rs, ns)
    h = await client.start_workflow(Tally, id="t", task_queue=QUEUE)
    await eventually(lambda: events_in(rs.b, ns, "t"), what="the start in B")
    async with HoldBack(rs.a):
        await h.signal("add", 7, request_id="sig-7")  # acknowledged by A, not shipped
        await forced_failover(rs.a.config, ns, rs.b.name)
        await h.signal("add", 7, request_id="sig-7")  # the client's retry lands in B

    # A's copy ships now; B re-applies what the lost branch carried, by request id
    async def reapplied() -> list[Any]:
        rows = [c for c in await list_conflicts(rs.a.config, ns) if c["region"] == rs.b.name]
        return [o for c in rows for o in c["reapplied"]]

    outcomes = await eventually(reapplied, timeout=30, what="B to archive A's batch")
    # B already has the signal (the retry), so nothing is applied again. A's
    # batch may reach B twice (shipped while A archived it as unshipped): the
    # second copy finds its events claimed.
    kinds = sorted(o["outcome"] for o in outcomes)
    assert kinds[0] == "already applied"
    assert set(kinds[1:]) <= {"already re-applied"}, kinds
    async with Worker(client, task_queue=QUEUE, workflows=[Tally]):
        await h.signal("finish")
        assert await h.result(timeout=30) == [7]
    await verified(rs, ns)
    await client.close()


async def runs_of(region: Region, ns: str, wid: str) -> list[str]:
    conn = await db.connect(region.dsn)
    try:
        rows = await conn.fetch(
            "SELECT run_id FROM executions WHERE namespace = $1 AND workflow_id = $2"
            " ORDER BY start_time",
            ns,
            wid,
        )
    finally:
        await conn.close()
    return [str(r["run_id"]) for r in rows]


async def test_a_run_the_lost_region_started_and_closed_is_archived_there_when_it_returns(
    regions: RegionPair,
) -> None:
    """A run started and closed in region-a but never shipped is not in region-b:
    region-b re-applies its start as a new run, and region-a, back as a standby,
    archives its own closed copy instead of keeping a run no other region has.
    A closed run both regions hold stays where it is."""
    rs, ns = regions, "lost-closed"
    client = await two_region_ns(rs, ns)
    async with Worker(client, task_queue=QUEUE, workflows=[Quick]):
        kept = await client.start_workflow(Quick, id="kept", task_queue=QUEUE)
        assert await kept.result(timeout=30) == "ok"
        await verified(rs, ns)  # region-b holds the closed run "kept"
        async with HoldBack(rs.a):
            lost = await client.start_workflow(Quick, id="lost", task_queue=QUEUE)
            assert await lost.result(timeout=30) == "ok"  # closed in A, never shipped
            await forced_failover(rs.a.config, ns, rs.b.name)
        # B re-applies the lost start; a new run of "kept" starts in B
        again = await client.start_workflow(Quick, id="kept", task_queue=QUEUE)
        assert await again.result(timeout=30) == "ok"

        async def restarted() -> bool:
            return len(await runs_of(rs.b, ns, "lost")) == 1

        await eventually(restarted, timeout=30, what="B to start the lost run again")
        assert await client.get_workflow_handle("lost").result(timeout=30) == "ok"
    await verified(rs, ns)
    assert await runs_of(rs.a, ns, "lost") == await runs_of(rs.b, ns, "lost")
    assert lost.run_id not in await runs_of(rs.a, ns, "lost")
    assert await runs_of(rs.a, ns, "kept") == [kept.run_id, again.run_id]
    archived = [c for c in await list_conflicts(rs.a.config, ns) if c["region"] == rs.a.name]
    assert [(c["workflow_id"], c["run_id"], c["first_event_id"]) for c in archived] == [
        ("lost", lost.run_id, 1)
    ]
    await client.close()


# --------------------------------------------------------------------------- item 1


async def test_an_update_whose_handler_spans_a_failover_completes_once(
    regions: RegionPair,
) -> None:
    rs, ns = regions, "updates"
    client = await two_region_ns(rs, ns)
    async with Worker(client, task_queue=QUEUE, workflows=[Tally]):
        h = await client.start_workflow(Tally, id="u", task_queue=QUEUE)
        t0 = time.monotonic()
        call = asyncio.create_task(h.update("slow_double", 21, update_id="u-1", timeout=30))
        await asyncio.sleep(1.0)  # accepted in A, its handler sleeping
        await graceful_failover(rs.a.config, ns, rs.b.name, timeout_s=60)
        assert await call == 42
        assert time.monotonic() - t0 < 15  # not the update's 30 s timeout
        assert await h.update("slow_double", 21, update_id="u-1") == 42  # a retry: same answer
        await h.signal("finish")
        assert await h.result(timeout=30) == [42]
    events = await h.history()
    assert kinds(events).count("WorkflowExecutionUpdateAccepted") == 1
    assert kinds(events).count("WorkflowExecutionUpdateCompleted") == 1
    assert kinds(events).count("WorkflowTaskScheduled") < 10
    await verified(rs, ns)
    await client.close()


async def test_what_ended_behind_a_started_task_ends_once_in_the_new_region(
    regions: RegionPair,
) -> None:
    """An activity that completed and a timer that fired while a workflow task
    was started wait in the buffer; the new region writes them after timing the
    task out, and neither runs again there (the activity was not re-dispatched,
    the timer did not fire a second time)."""
    rs, ns, wid, queue = regions, "behind-task", "behind", "driven-by-hand"
    client = await two_region_ns(rs, ns)
    a, b = rs.a.store, rs.b.store
    poll = wire.PollRequest(task_queue=queue, identity="by-hand", wait_s=10)
    h = await client.start_workflow("DrivenByHand", id=wid, task_queue=queue)
    first = await poll_workflow_task(a, ns, poll)
    assert first is not None
    schedule = wire.Command(
        type=wire.CommandType.SCHEDULE_ACTIVITY,
        attributes={"activity_id": "work", "activity_type": "work", "start_to_close_s": 60},
    )
    timer = wire.Command(
        type=wire.CommandType.START_TIMER, attributes={"timer_id": "t", "duration_s": 3.0}
    )
    await complete_workflow_task(
        a,
        ns,
        wire.RespondWorkflowTaskCompleted(
            task_token=first["task_token"], commands=[schedule, timer], identity="by-hand"
        ),
    )
    act = await poll_activity_task(a, ns, poll)
    assert act is not None
    await h.signal("go")
    held = await poll_workflow_task(a, ns, poll)  # started, and never completed
    assert held is not None
    assert "TimerFired" not in kinds(held["events"]), "the timer fired before the task started"
    await complete_activity_task(
        a, ns, wire.RespondActivityTaskCompleted(task_token=act["task_token"], identity="by-hand")
    )

    async def both_buffered() -> bool:
        kinds_now = await fetchval(
            rs.b,
            "SELECT array_agg(event_type ORDER BY seq) FROM buffered_events "
            "WHERE namespace = $1 AND workflow_id = $2",
            ns,
            wid,
        )
        return sorted(kinds_now or []) == [
            "ActivityTaskCompleted",
            "ActivityTaskStarted",
            "TimerFired",
        ]

    await eventually(both_buffered, timeout=20, what="B to hold both inputs, buffered")
    await graceful_failover(rs.a.config, ns, rs.b.name, timeout_s=60)

    pending = await fetchval(
        rs.b,
        "SELECT (SELECT count(*) FROM activities WHERE namespace = $1) "
        "+ (SELECT count(*) FROM tasks WHERE namespace = $1 AND kind = 'activity') "
        "+ (SELECT count(*) FROM timers WHERE namespace = $1 AND kind = 'user')",
        ns,
    )
    assert pending == 0  # nothing of the activity or the timer is scheduled again
    # B's next task: the held one timed out, then the two inputs, written once
    task = await poll_workflow_task(b, ns, poll)
    assert task is not None
    await asyncio.sleep(1.5)  # a timer scheduled again would have fired by now
    events = kinds(await h.history())
    assert events.count("ActivityTaskCompleted") == 1
    assert events.count("TimerFired") == 1
    assert events.index("WorkflowTaskTimedOut") < events.index("ActivityTaskCompleted")
    await verified(rs, ns)


# --------------------------------------------------------------------------- item 2


async def test_a_workflow_task_in_retry_backoff_is_retried_in_the_new_region(
    regions: RegionPair,
) -> None:
    rs, ns = regions, "backoff-task"
    client = await two_region_ns(rs, ns)
    FIXED["flag"] = False
    async with Worker(client, task_queue=QUEUE, workflows=[Broken]):
        h = await client.start_workflow(Broken, id="b", task_queue=QUEUE)

        async def failing_in_backoff() -> bool:
            return kinds(await h.history()).count("WorkflowTaskFailed") >= 3

        await eventually(failing_in_backoff, timeout=30, what="three failed tasks")
        await graceful_failover(rs.a.config, ns, rs.b.name, timeout_s=60)
        FIXED["flag"] = True  # the fix is deployed
        assert await h.result(timeout=20) == "fixed"
    await verified(rs, ns)
    await client.close()


async def test_an_activity_retry_keeps_its_backoff_across_a_failover(regions: RegionPair) -> None:
    rs, ns = regions, "backoff-activity"
    client = await two_region_ns(rs, ns)
    ATTEMPTS.clear()
    async with Worker(client, task_queue=QUEUE, workflows=[Backoff], activities=[fails_first]):
        h = await client.start_workflow(Backoff, id="a", task_queue=QUEUE)

        async def retrying() -> bool:
            d = await h.describe()
            acts = d["pending_activities"]
            return bool(acts) and acts[0]["attempt"] == 2

        await eventually(retrying, timeout=20, what="the first attempt to fail")
        failed_at = time.time()

        async def progress_in_b() -> bool:
            return bool(
                await fetchval(
                    rs.b,
                    "SELECT count(*) FROM activity_progress WHERE namespace = $1 AND attempt = 2",
                    ns,
                )
            )

        await eventually(progress_in_b, what="B to learn of the retry")
        await graceful_failover(rs.a.config, ns, rs.b.name, timeout_s=60)
        assert await h.result(timeout=30) == "done"
    second = [t for attempt, t in ATTEMPTS if attempt == 2]
    assert second and second[0] - failed_at > 4.0  # its 5 s backoff, not at once in B
    await client.close()


@pytest.mark.parametrize(("max_attempts", "expected"), [(0, "TimeoutError_"), (1, "TimeoutError_")])
async def test_a_lost_attempt_counts_and_the_deadline_runs_from_the_first_schedule(
    regions: RegionPair, max_attempts: int, expected: str
) -> None:
    rs, ns = regions, f"deadline-{max_attempts}"
    client = await two_region_ns(rs, ns)
    async with Worker(client, task_queue=QUEUE, workflows=[Deadline], activities=[hangs]):
        h = await client.start_workflow(Deadline, max_attempts, id="d", task_queue=QUEUE)

        async def running() -> bool:
            acts = (await h.describe())["pending_activities"]
            return bool(acts) and acts[0]["state"] == "started"

        await eventually(running, what="the attempt to run")
        await asyncio.sleep(1.5)
        await graceful_failover(rs.a.config, ns, rs.b.name, timeout_s=60)
        assert await h.result(timeout=30) == f"gave up: {expected}"
    events = await h.history()
    scheduled = next(e for e in events if e["event_type"] == "ActivityTaskScheduled")
    closed = next(e for e in events if e["event_type"] == "ActivityTaskTimedOut")
    waited = _t(closed["event_time"]) - _t(scheduled["event_time"])
    if max_attempts == 1:
        # the lost attempt was the only one allowed: it ends at once in B
        assert closed["attributes"]["timeout_type"] == "start_to_close"
        assert waited < 6
    else:
        # retried in B until the deadline set by the first schedule in A
        assert closed["attributes"]["timeout_type"] == "schedule_to_close"
        assert 7.5 < waited < 9.5
    await client.close()


def _t(iso: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(iso).timestamp()


# --------------------------------------------------------------------------- items 6 and 7


async def test_a_query_sent_to_a_standby_is_redirected_at_once(regions: RegionPair) -> None:
    rs, ns = regions, "query-standby"
    client = await two_region_ns(rs, ns)
    await client.start_workflow(Tally, id="q", task_queue=QUEUE)
    await eventually(lambda: events_in(rs.b, ns, "q"), what="the start in B")
    async with httpx.AsyncClient() as http:
        t0 = time.monotonic()
        r = await http.post(
            f"{rs.b.url}/api/v1/namespaces/{ns}/workflows/q/query",
            json={"query_name": "anything", "timeout_s": 10},
        )
    assert r.status_code == 421 and r.json()["error"]["code"] == "NAMESPACE_NOT_ACTIVE"
    assert time.monotonic() - t0 < 2
    await client.close()


async def test_a_lagging_applier_cannot_roll_back_what_a_later_record_applied(
    regions: RegionPair,
) -> None:
    rs, ns = regions, "fenced-apply"
    client = await two_region_ns(rs, ns)
    async with Worker(client, task_queue=QUEUE, workflows=[Backoff], activities=[fails_first]):
        h = await client.start_workflow(Backoff, id="f", task_queue=QUEUE)

        async def attempt_two_in_b() -> bool:
            return bool(
                await fetchval(
                    rs.b,
                    "SELECT count(*) FROM activity_progress WHERE namespace = $1 AND attempt = 2",
                    ns,
                )
            )

        await eventually(attempt_two_in_b, timeout=20, what="B to learn of attempt 2")
        # Read the retry's progress record back from A's topic, as a second
        # applier would, and apply it late as that applier saw it before the
        # retry (attempt 1): the partition's stored offset is past it.
        topic = topic_for(rs.a.name)
        consumer = AIOKafkaConsumer(bootstrap_servers=rs.a.config.kafka_bootstrap)
        await consumer.start()
        try:
            parts = [TopicPartition(topic, p) for p in range(4)]
            consumer.assign(parts)
            await consumer.seek_to_beginning(*parts)
            found: list[tuple[TopicPartition, Any, dict[str, Any]]] = []
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and not found:
                got = await consumer.getmany(timeout_ms=500)
                for tp, records in got.items():
                    for r in records:
                        m = orjson.loads(r.value)
                        if m["type"] == "progress_v1" and m["namespace"] == ns and m["activities"]:
                            found.append((tp, r, m))
        finally:
            await consumer.stop()
        assert found, "the retry's progress record"
        tp, record, msg = found[-1]
        acts = [{**a, "attempt": 1, "state": "started"} for a in msg["activities"]]
        stale = SimpleNamespace(
            offset=record.offset, value=orjson.dumps({**msg, "activities": acts})
        )
        late = Applier(rs.b.store)
        try:
            await late._apply_records(tp, [stale])
        finally:
            await late.close()
        assert await attempt_two_in_b()  # not rolled back to attempt 1
        await h.result(timeout=30)
    await client.close()


# --------------------------------------------------------------------------- item 15


@activity.defn
async def big_result(size: int) -> str:
    return "r" * size


@workflow.defn(name="Big")
class Big:
    @workflow.run
    async def run(self, size: int) -> str:
        return str(
            await workflow.execute_activity(
                big_result, size, start_to_close_timeout=timedelta(seconds=30)
            )
        )


async def test_whatever_the_api_accepts_replicates_or_is_refused_at_write(
    regions: RegionPair,
) -> None:
    rs, ns = regions, "large"
    client = await two_region_ns(rs, ns)
    with pytest.raises(InvalidArgumentError):
        await client.create_namespace("wordy", description="d" * (2 * 1024 * 1024))
    assert await fetchval(rs.a, "SELECT count(*) FROM namespaces WHERE name = 'wordy'") == 0
    size = 1_500_000  # over Kafka's default message size, under the payload limit
    async with Worker(client, task_queue=QUEUE, workflows=[Big], activities=[big_result]):
        h = await client.start_workflow(
            Big, size, id="big", task_queue=QUEUE, memo={"notes": "m" * 900_000}
        )
        assert len(await h.result(timeout=60)) == size
    await verified(rs, ns)

    async def row_of(region: Region) -> Any:
        return await fetchval(
            region,
            "SELECT jsonb_build_object('memo', memo, 'result', result, 'status', status) "
            "FROM executions WHERE namespace = $1 AND workflow_id = 'big'",
            ns,
        )

    async def same_in_b() -> bool:
        return bool(await row_of(rs.b) == await row_of(rs.a))

    await eventually(same_in_b, what="B's row to match A's")
    await client.close()


@workflow.defn(name="Hop")
class Hop:
    @workflow.run
    async def run(self, gen: int) -> str:
        if gen == 0:
            workflow.continue_as_new(1)
        return f"done at {gen}"


async def test_a_continue_as_new_of_the_lost_branch_is_not_started_again(
    regions: RegionPair,
) -> None:
    """The lost region continued a run as new and the new region did so too,
    from its own copy of the run: the lost branch's second run was the
    workflow's decision, not a client's start, so it is archived, not started
    again once the winner's chain has closed."""
    rs, ns = regions, "lost-can"
    client = await two_region_ns(rs, ns)
    h = await client.start_workflow(Hop, 0, id="hop", task_queue=QUEUE)
    await eventually(lambda: events_in(rs.b, ns, "hop"), what="the start in B")
    async with HoldBack(rs.a), Worker(client, task_queue=QUEUE, workflows=[Hop]):
        assert await h.result(timeout=30) == "done at 1"  # in A, never shipped
        await forced_failover(rs.a.config, ns, rs.b.name)

        # B runs its copy of the first run again: it continues as new too
        async def closed_in_b() -> list[Any]:
            statuses = await fetchval(
                rs.b,
                "SELECT array_agg(status ORDER BY start_time) FROM executions"
                " WHERE namespace = $1 AND workflow_id = $2",
                ns,
                "hop",
            )
            return statuses if statuses == ["continued_as_new", "completed"] else []

        await eventually(closed_in_b, timeout=30, what="B's own chain to close")
    winners = await runs_of(rs.b, ns, "hop")

    async def start_outcomes() -> list[Any]:
        rows = [c for c in await list_conflicts(rs.a.config, ns) if c["region"] == rs.b.name]
        found = [
            o for c in rows for o in c["reapplied"] if o["event_type"] == "WorkflowExecutionStarted"
        ]
        return found

    outcomes = await eventually(start_outcomes, timeout=30, what="B to archive A's second run")
    assert {o["outcome"] for o in outcomes} <= {"not re-applied", "already re-applied"}, outcomes
    await asyncio.sleep(1.0)  # a start re-applied would have written its run by now
    assert await runs_of(rs.b, ns, "hop") == winners
    await verified(rs, ns)
    await client.close()
