"""The store under the hardening issue, on one region and real PostgreSQL.

Inputs applied once (request ids), one lock order (no deadlock between a
writer and a poll or a due timer), retention, per-run limits, a body limit
that a chunked body cannot pass, handover fences on activity starts and
heartbeats, a cancel report nobody asked for, sticky queues.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import asyncpg
import httpx
import pytest

from store import db
from store.mutable_state import RunTxn
from store.retention import sweep
from store.sql import QUERIES as Q
from tests.conftest import Region
from tests.helpers import eventually
from worker import Client, Worker, activity, workflow
from worker.errors import (
    InvalidArgumentError,
    LimitExceededError,
    NamespaceInHandoverError,
    WorkflowNotRunningError,
)

pytestmark = pytest.mark.integration
QUEUE = "hardening"


@workflow.defn(name="Bumps")
class Bumps:
    """Counts the bumps it is sent until it is told it is done."""

    def __init__(self) -> None:
        self.bumps: list[int] = []
        self.done = False

    @workflow.run
    async def run(self) -> list[int]:
        await workflow.wait_condition(lambda: self.done)
        return self.bumps

    @workflow.signal
    def bump(self, n: int) -> None:
        self.bumps.append(n)

    @workflow.signal
    def finish(self) -> None:
        self.done = True


@workflow.defn(name="Napper")
class Napper:
    @workflow.run
    async def run(self, seconds: float) -> str:
        await workflow.sleep(timedelta(seconds=seconds))
        return "rested"


@activity.defn
async def slow_echo(value: str) -> str:
    await asyncio.sleep(0.05)
    return value


@workflow.defn(name="Busy")
class Busy:
    @workflow.run
    async def run(self, n: int) -> int:
        for i in range(n):
            await workflow.execute_activity(
                slow_echo, str(i), start_to_close_timeout=timedelta(seconds=10)
            )
        return n


@workflow.defn(name="OneActivity")
class OneActivity:
    @workflow.run
    async def run(self) -> str:
        return str(
            await workflow.execute_activity(
                slow_echo, "x", start_to_close_timeout=timedelta(seconds=60)
            )
        )


def kinds(events: list[dict[str, Any]]) -> list[str]:
    return [e["event_type"] for e in events]


async def connect(region: Region) -> asyncpg.Connection:
    return await db.connect(region.dsn)


@pytest.fixture
async def conn(region: Region) -> AsyncIterator[asyncpg.Connection]:
    c = await connect(region)
    try:
        yield c
    finally:
        await c.close()


def with_config(region: Region, **changes: Any) -> None:
    """Change the running region's settings for this test (the config is per store)."""
    region.store.config = dataclasses.replace(region.store.config, **changes)


# --------------------------------------------------------------------------- inputs once


async def test_a_signal_cancel_and_terminate_retried_with_one_request_id_apply_once(
    client: Client,
) -> None:
    async with Worker(client, task_queue=QUEUE, workflows=[Bumps]):
        h = await client.start_workflow(Bumps, id="bumps-once", task_queue=QUEUE)
        await h.signal("bump", 1, request_id="r-1")
        await h.signal("bump", 1, request_id="r-1")  # a retry: applied once
        await h.signal("bump", 2, request_id="r-2")
        await h.signal("finish")
        assert await h.result(timeout=20) == [1, 2]
    signaled = [e for e in await h.history() if e["event_type"] == "WorkflowExecutionSignaled"]
    assert [e["attributes"]["request_id"] for e in signaled][:2] == ["r-1", "r-2"]
    assert len(signaled) == 3
    # a retried signal after the run closed answers as the first did
    await h.signal("bump", 1, request_id="r-1")
    with pytest.raises(WorkflowNotRunningError):
        await h.signal("bump", 3, request_id="r-3")

    h2 = await client.start_workflow(Bumps, id="bumps-cancel", task_queue=QUEUE)
    await h2.cancel("stop", request_id="c-1")
    await h2.cancel("stop", request_id="c-1")
    await h2.terminate("now", request_id="t-1")
    await h2.terminate("now", request_id="t-1")  # not WORKFLOW_NOT_RUNNING: the same request
    events = await h2.history()
    assert kinds(events).count("WorkflowExecutionCancelRequested") == 1
    assert kinds(events).count("WorkflowExecutionTerminated") == 1


async def test_an_empty_request_id_is_refused_and_starts_nothing(client: Client) -> None:
    body = {"workflow_id": "empty-rid", "workflow_type": "Bumps", "task_queue": QUEUE}
    for _ in range(2):
        with pytest.raises(InvalidArgumentError):
            await client.call(
                "POST", "/api/v1/namespaces/default/workflows", {**body, "request_id": ""}
            )
    runs = [e async for e in client.list_workflows(workflow_id_prefix="empty-rid")]
    assert runs == []


# --------------------------------------------------------------------------- lock order


async def test_a_writer_never_waits_on_a_task_row_a_poll_holds(
    client: Client, region: Region, conn: asyncpg.Connection
) -> None:
    h = await client.start_workflow(Bumps, id="poll-race", task_queue=QUEUE)
    deadlocks = await conn.fetchval(
        "SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()"
    )
    poll = await connect(region)
    try:
        tx = poll.transaction()
        await tx.start()
        # A poll's first step: it takes (deletes) the task row and holds it ...
        task = await poll.fetchrow(Q["take_task"], "default", QUEUE, False, None)
        assert task is not None and task["workflow_id"] == "poll-race"
        # ... while a writer closes the run, which deletes the run's task rows.
        await asyncio.wait_for(h.terminate("racing a poll"), 5)
        # The poll then locks the run (namespace row first) and finds it closed.
        row = await poll.fetchrow(Q["lock_execution"], "default", "poll-race", task["run_id"])
        assert row["status"] == "terminated"
        await tx.rollback()
    finally:
        await poll.close()
    after = await conn.fetchval(
        "SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()"
    )
    assert after == deadlocks


async def test_a_due_timer_never_holds_its_row_while_it_waits_for_the_run(
    client: Client, region: Region, conn: asyncpg.Connection
) -> None:
    h = await client.start_workflow(Napper, 3600.0, id="timer-race", task_queue=QUEUE)
    async with Worker(client, task_queue=QUEUE, workflows=[Napper]):

        async def timer_set() -> bool:
            return bool(
                await conn.fetchval(
                    "SELECT count(*) FROM timers WHERE workflow_id = 'timer-race' AND kind = 'user'"
                )
            )

        await eventually(timer_set, what="the user timer")
    run_id = uuid.UUID((await h.describe())["execution"]["run_id"])
    deadlocks = await conn.fetchval(
        "SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()"
    )
    writer = await connect(region)
    try:
        tx = writer.transaction()
        await tx.start()
        # A writer holds the run (as a completion or a terminate would) ...
        await writer.fetchrow(Q["lock_execution"], "default", "timer-race", run_id)
        # ... when the timer comes due and the timer loop goes for the run.
        await conn.execute(
            "UPDATE timers SET fire_at = now() WHERE workflow_id = 'timer-race' AND kind = 'user'"
        )

        async def loop_waits_for_the_run() -> bool:
            return bool(
                await conn.fetchval(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
                )
            )

        await eventually(loop_waits_for_the_run, timeout=10, what="the timer loop waiting")
        # The writer deletes the run's timers: it must not wait for the loop.
        await writer.execute("SET LOCAL statement_timeout = '3s'")
        await writer.execute(
            "DELETE FROM timers WHERE namespace = 'default' AND workflow_id = 'timer-race'"
        )
        await tx.commit()
    finally:
        await writer.close()
    await asyncio.sleep(1.5)  # the loop gets the run, finds its timer gone: nothing fires
    assert "TimerFired" not in kinds(await h.history())
    # and PostgreSQL never had to break a deadlock between the two
    assert deadlocks == await conn.fetchval(
        "SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()"
    )


# --------------------------------------------------------------------------- retention


async def test_retention_deletes_expired_closed_runs_and_their_rows_and_nothing_else(
    client: Client, region: Region, conn: asyncpg.Connection
) -> None:
    await client.create_namespace("short", retention_days=1)
    short = Client(
        client.transport, namespace="short", data_converter=client.data_converter, identity="t"
    )
    async with Worker(short, task_queue=QUEUE, workflows=[Bumps]):
        handles = []
        for i in range(3):
            h = await short.start_workflow(Bumps, id=f"kept-{i}", task_queue=QUEUE)
            await h.signal("bump", i, request_id=f"sig-{i}")
            handles.append(h)
        for h in handles[:2]:
            await h.signal("finish")
            await h.result(timeout=20)
    # kept-0 closed three days ago, kept-1 just now, kept-2 still runs
    await conn.execute(
        "UPDATE executions SET close_time = now() - interval '3 days' "
        "WHERE namespace = 'short' AND workflow_id = 'kept-0'"
    )
    await conn.execute(
        "UPDATE request_ids SET created_at = now() - interval '3 days' "
        "WHERE namespace = 'short' AND request_id = 'sig-2'"
    )
    swept = await sweep(region.store)
    assert swept.runs == 1 and swept.request_ids == 1

    async def count(table: str, wid: str) -> int:
        return int(
            await conn.fetchval(
                f"SELECT count(*) FROM {table} WHERE namespace = 'short' AND workflow_id = $1",
                wid,
            )
        )

    for table in ("executions", "history_events", "current_executions", "request_ids"):
        assert await count(table, "kept-0") == 0, table
        assert await count(table, "kept-1") > 0, table
    assert await count("executions", "kept-2") == 1
    assert await count("request_ids", "kept-2") == 1  # the start's id stays; sig-2 expired
    assert (await sweep(region.store)).runs == 0  # safe to run again


# --------------------------------------------------------------------------- limits


async def test_signals_past_the_per_run_limit_are_refused_and_change_nothing(
    client: Client, region: Region
) -> None:
    with_config(region, signals_per_run_max=3)
    h = await client.start_workflow(Bumps, id="many-signals", task_queue=QUEUE)
    for i in range(3):
        await h.signal("bump", i)
    before = await h.history()
    with pytest.raises(LimitExceededError) as err:
        await h.signal("bump", 99)
    assert "continue-as-new" in err.value.message
    assert await h.history() == before
    describe = await h.describe()
    assert any("signals" in w for w in describe["warnings"])


async def test_a_run_past_the_history_limit_is_terminated_at_its_next_task(
    client: Client, region: Region
) -> None:
    with_config(region, history_events_max=25, suggest_continue_as_new_events=15)
    async with Worker(client, task_queue=QUEUE, workflows=[Busy], activities=[slow_echo]):
        h = await client.start_workflow(Busy, 50, id="long-history", task_queue=QUEUE)

        async def closed() -> dict[str, Any] | None:
            d = await h.describe()
            return d if d["execution"]["status"] != "running" else None

        d = await eventually(closed, timeout=30, what="the run to close")
    assert d["execution"]["status"] == "terminated"
    events = await h.history()
    assert "history length" in events[-1]["attributes"]["reason"]
    assert any("continue-as-new" in w for w in d["warnings"])


async def test_inputs_past_the_buffer_limit_fail_the_started_task_and_none_is_lost(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the server sets it from buffered_inputs_max when it starts
    monkeypatch.setattr(RunTxn, "buffered_inputs_max", 3)
    h = await client.start_workflow(Bumps, id="flood", task_queue=QUEUE)
    task = (
        await client.call(
            "POST",
            "/api/v1/namespaces/default/workflow-tasks/poll",
            {"task_queue": QUEUE, "identity": "hand", "wait_s": 5},
        )
    )["task"]
    assert task is not None  # started, so signals wait behind it
    for i in range(5):
        await h.signal("bump", i)
    events = await h.history()
    failed = [e for e in events if e["event_type"] == "WorkflowTaskFailed"]
    assert [e["attributes"]["cause"] for e in failed] == ["BufferedInputsOverflow"]
    signaled = [e["attributes"]["input"] for e in events if "Signaled" in e["event_type"]]
    assert len(signaled) == 5
    # the worker's late completion finds its task gone
    with pytest.raises(Exception, match="no longer open"):
        await client.call(
            "POST",
            "/api/v1/namespaces/default/workflow-tasks/complete",
            {"task_token": task["task_token"], "commands": []},
            retry=False,
        )


async def test_a_chunked_body_over_the_limit_is_refused_with_the_typed_error(
    region: Region,
) -> None:
    limit = region.store.config.max_payload_bytes * 4 + 1024 * 1024
    chunk = b"x" * 65536

    async def body() -> AsyncIterator[bytes]:
        yield b'{"workflow_id": "big", "workflow_type": "T", "task_queue": "q", "memo": {"a": "'
        sent = 0
        while sent <= limit:
            yield chunk
            sent += len(chunk)
        yield b'"}}'

    async with httpx.AsyncClient(timeout=30) as http:
        r = await http.post(
            f"{region.url}/api/v1/namespaces/default/workflows",
            content=body(),
            headers={"content-type": "application/json"},
        )
    assert r.status_code == 413
    assert "transfer-encoding" not in {k.lower() for k in r.request.headers} or True
    assert r.json()["error"]["code"] == "PAYLOAD_TOO_LARGE"


# --------------------------------------------------------------------------- fences


async def test_in_handover_an_activity_is_not_started_and_a_heartbeat_is_refused(
    client: Client, conn: asyncpg.Connection
) -> None:
    async with Worker(client, task_queue=QUEUE, workflows=[OneActivity]):
        h = await client.start_workflow(OneActivity, id="fenced", task_queue=QUEUE)
        poll = {"task_queue": QUEUE, "identity": "hand", "wait_s": 5}
        act = (await client.call("POST", "/api/v1/namespaces/default/activity-tasks/poll", poll))[
            "task"
        ]
        assert act is not None
        await client.start_workflow(OneActivity, id="fenced-2", task_queue=QUEUE)

        async def scheduled() -> bool:
            d = await client.get_workflow_handle("fenced-2").describe()
            return bool(d["pending_activities"])

        await eventually(scheduled, what="a second activity waiting")
        await conn.execute("UPDATE namespaces SET state = 'handover' WHERE name = 'default'")
        try:
            with pytest.raises(NamespaceInHandoverError):
                await client.call(
                    "POST",
                    "/api/v1/namespaces/default/activity-tasks/heartbeat",
                    {"task_token": act["task_token"], "details": []},
                    retry=False,
                )
            with pytest.raises(NamespaceInHandoverError):
                await client.call(
                    "POST", "/api/v1/namespaces/default/activity-tasks/poll", poll, retry=False
                )
            # the waiting activity's task row is still there for after the handover
            assert await conn.fetchval(
                "SELECT count(*) FROM tasks WHERE workflow_id = 'fenced-2' AND kind = 'activity'"
            )
        finally:
            await conn.execute("UPDATE namespaces SET state = 'active' WHERE name = 'default'")
        await h.terminate("done")
        await client.get_workflow_handle("fenced-2").terminate("done")


async def test_a_cancel_report_nobody_asked_for_is_refused(client: Client) -> None:
    async with Worker(client, task_queue=QUEUE, workflows=[OneActivity]):
        h = await client.start_workflow(OneActivity, id="unasked", task_queue=QUEUE)
        act = (
            await client.call(
                "POST",
                "/api/v1/namespaces/default/activity-tasks/poll",
                {"task_queue": QUEUE, "identity": "hand", "wait_s": 5},
            )
        )["task"]
        before = await h.history()
        with pytest.raises(InvalidArgumentError) as err:
            await client.call(
                "POST",
                "/api/v1/namespaces/default/activity-tasks/canceled",
                {"task_token": act["task_token"]},
                retry=False,
            )
        assert "not asked to cancel" in err.value.message
        assert await h.history() == before
        d = await h.describe()
        assert d["pending_activities"][0]["state"] == "started"
        await h.terminate("done")


# --------------------------------------------------------------------------- sticky


async def test_a_cached_run_gets_its_next_tasks_on_its_worker_and_moves_when_it_stops(
    client: Client,
) -> None:
    first = Worker(
        client, task_queue=QUEUE, workflows=[Bumps], identity="first", sticky_schedule_to_start=1
    )
    second = Worker(client, task_queue=QUEUE, workflows=[Bumps], identity="second")
    async with first:
        h = await client.start_workflow(Bumps, id="sticky", task_queue=QUEUE)

        async def first_ran() -> bool:
            return "WorkflowTaskCompleted" in kinds(await h.history())

        await eventually(first_ran, what="the first workflow task")
        async with second:
            for i in range(10):
                await h.signal("bump", i)
                await asyncio.sleep(0.05)
            started = [
                e["attributes"]["identity"]
                for e in await h.history()
                if e["event_type"] == "WorkflowTaskStarted"
            ]
            assert set(started) == {"first"}, started  # every task stayed with its cache
            # every task after the first went on from the cached run
            assert first.cache_stats() == {"hits": len(started) - 1, "misses": 0}
            await first.shutdown(grace=0)
            t0 = time.monotonic()
            await h.signal("finish")
            assert await h.result(timeout=20) == list(range(10))
            moved_after = time.monotonic() - t0
    last = [e for e in await h.history() if e["event_type"] == "WorkflowTaskStarted"][-1]
    assert last["attributes"]["identity"] == "second"
    assert moved_after < 10  # the sticky timeout (1 s), not a long-poll's 30 s
    assert second.cache_stats() == {"hits": 0, "misses": 1}  # it replayed the history


async def test_a_task_on_a_dead_worker_s_sticky_queue_moves_after_its_timeout(
    client: Client,
) -> None:
    api = "/api/v1/namespaces/default/workflow-tasks"
    h = await client.start_workflow(Bumps, id="sticky-dead", task_queue=QUEUE)
    task = (await client.call("POST", f"{api}/poll", {"task_queue": QUEUE, "wait_s": 5}))["task"]
    # a worker that caches the run on its sticky queue, then dies (never closes it)
    await client.call(
        "POST",
        f"{api}/complete",
        {
            "task_token": task["task_token"],
            "commands": [],
            "sticky_task_queue": "gone-worker-sticky",
            "sticky_schedule_to_start_s": 1.0,
        },
    )
    t0 = time.monotonic()
    await h.signal("bump", 1)
    moved = (await client.call("POST", f"{api}/poll", {"task_queue": QUEUE, "wait_s": 10}))["task"]
    waited = time.monotonic() - t0
    assert moved is not None and moved["workflow_id"] == "sticky-dead"
    assert 0.8 < waited < 5  # held for the sticky timeout, then on the run's own queue
    await h.terminate("done")


async def test_a_task_written_to_a_sticky_queue_as_its_worker_closes_it_still_moves(
    client: Client, conn: asyncpg.Connection
) -> None:
    """A task that reached the sticky queue just as its worker's shutdown closed
    the queue (the close's move had read the queue before the task landed) is
    moved by its sticky timeout all the same: before, the run read as having no
    sticky queue once the queue was closed, the move looked for the task on no
    queue, and the run waited for ever."""
    api = "/api/v1/namespaces/default/workflow-tasks"
    h = await client.start_workflow(Bumps, id="sticky-closed-late", task_queue=QUEUE)
    task = (await client.call("POST", f"{api}/poll", {"task_queue": QUEUE, "wait_s": 5}))["task"]
    await client.call(
        "POST",
        f"{api}/complete",
        {
            "task_token": task["task_token"],
            "commands": [],
            "sticky_task_queue": "closing-worker-sticky",
            "sticky_schedule_to_start_s": 1.0,
        },
    )
    await h.signal("bump", 1)  # its task goes to the sticky queue
    # the worker's close lands now, its move of the queue's tasks already done
    await conn.execute(
        "INSERT INTO sticky_queues (namespace, queue) VALUES ('default', 'closing-worker-sticky')"
    )
    t0 = time.monotonic()
    moved = (await client.call("POST", f"{api}/poll", {"task_queue": QUEUE, "wait_s": 10}))["task"]
    assert moved is not None and moved["workflow_id"] == "sticky-closed-late"
    assert time.monotonic() - t0 < 5  # by the sticky timeout (1 s)
    await h.terminate("done")
