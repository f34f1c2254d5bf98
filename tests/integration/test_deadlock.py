"""Workflow code that blocks holds up only its own run (real server, real worker).

Workflow code runs on the worker's threads, watched by a deadlock detector:
code that does not yield within ``deadlock_timeout`` fails its workflow task
with cause ``Deadlock`` (retried with backoff), a query on it answers an
error, and the worker goes on serving every other run and stops in bounded
time. These tests block with real sync calls (``time.sleep``, a wait on a
threading event); each fails on a worker that runs workflow code on its loop.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from tests.helpers import eventually
from worker import Client, Worker, activity, workflow
from worker.errors import QueryFailedError

pytestmark = pytest.mark.integration

#: When the blocking workflow began its sleep, and released sync waits.
SLEEP_BEGAN: list[float] = []
RELEASE = threading.Event()


@pytest.fixture(autouse=True)
def _release_blocked_threads() -> Iterator[None]:
    RELEASE.clear()
    SLEEP_BEGAN.clear()
    yield
    RELEASE.set()  # threads left blocked in workflow code return now


@activity.defn(name="deadlock.add_one")
async def add_one(n: int) -> int:
    return n + 1


@workflow.defn(name="Sleepy")
class SleepyV1:
    """Blocks its worker's thread for 5 s: a sync call that belongs in an activity."""

    @workflow.run
    async def run(self, n: int) -> int:
        SLEEP_BEGAN.append(time.monotonic())
        time.sleep(5)  # noqa: ASYNC251  (the blocking call is the point)
        return await workflow.execute_activity(
            add_one, n, start_to_close_timeout=timedelta(seconds=10)
        )


@workflow.defn(name="Sleepy")
class SleepyV2:
    """The same workflow, fixed: the blocking call is gone."""

    @workflow.run
    async def run(self, n: int) -> int:
        return await workflow.execute_activity(
            add_one, n, start_to_close_timeout=timedelta(seconds=10)
        )


@workflow.defn(name="Quick")
class Quick:
    @workflow.run
    async def run(self, n: int) -> int:
        n = await workflow.execute_activity(
            add_one, n, start_to_close_timeout=timedelta(seconds=10)
        )
        await workflow.sleep(0.1)
        return n


@workflow.defn(name="BlockingQuery")
class BlockingQuery:
    def __init__(self) -> None:
        self.done = False

    @workflow.run
    async def run(self) -> str:
        await workflow.wait_condition(lambda: self.done)
        return "finished"

    @workflow.signal
    def finish(self) -> None:
        self.done = True

    @workflow.query
    def peek(self) -> str:
        RELEASE.wait(30)  # sync I/O in a query handler
        return "peeked"


@workflow.defn(name="Stuck")
class Stuck:
    @workflow.run
    async def run(self) -> None:
        RELEASE.wait(60)  # a sync call that blocks until the test ends


@workflow.defn(name="BlockingCleanup")
class BlockingCleanup:
    """Blocks in a ``finally`` that runs when the worker evicts the run."""

    @workflow.run
    async def run(self) -> None:
        try:
            await workflow.wait_condition(lambda: False)
        finally:
            RELEASE.wait(15)  # sync I/O in cleanup code


@workflow.defn(name="Spin")
class Spin:
    @workflow.run
    async def run(self) -> None:
        while True:  # never awaits: not even a step boundary to check at
            pass


@workflow.defn(name="Busy")
class Busy:
    @workflow.run
    async def run(self) -> None:
        while True:  # noqa: ASYNC110  (awaits, but nothing durable)
            await asyncio.sleep(0)


def worker_of(client: Client, queue: str, *workflows: type, **options: Any) -> Worker:
    return Worker(
        client, task_queue=queue, workflows=list(workflows), activities=[add_one], **options
    )


async def deadlock_failures(handle: Any) -> list[dict[str, Any]]:
    return [
        e["attributes"]
        for e in await handle.history()
        if e["event_type"] == "WorkflowTaskFailed" and e["attributes"]["cause"] == "Deadlock"
    ]


async def test_a_blocking_workflow_holds_up_only_its_own_run_and_fixed_code_finishes_it(
    client: Client,
) -> None:
    queue = f"deadlock-{uuid.uuid4().hex[:6]}"
    sleepy = await client.start_workflow("Sleepy", 1, id=f"sleepy-{queue}", task_queue=queue)
    async with worker_of(client, queue, SleepyV1, Quick):
        await eventually(
            lambda: asyncio.sleep(0, bool(SLEEP_BEGAN)), timeout=20, what="the sleep began"
        )
        quick = await client.start_workflow(Quick, 41, id=f"quick-{queue}", task_queue=queue)
        assert await quick.result(timeout=20) == 42
        # another run finished while the first one's code was still asleep
        assert time.monotonic() - SLEEP_BEGAN[0] < 5.0

        failures = await eventually(
            lambda: deadlock_failures(sleepy), timeout=20, what="a task failed as a deadlock"
        )
    failure = failures[0]["failure"]
    assert failure["type"] == "DeadlockError"
    assert "did not yield within 2 s" in failure["message"]
    assert "time.sleep or sync I/O belong in activities" in failure["message"]
    assert "time.sleep(5)" in failure["stack_trace"]  # where the code was stuck
    desc = await sleepy.describe()
    assert desc["execution"]["status"] == "running"  # a deadlock never fails the run

    # fix the code, restart the worker: the run finishes
    async with worker_of(client, queue, SleepyV2):
        assert await sleepy.result(timeout=30) == 2
    kinds = [e["event_type"] for e in await sleepy.history()]
    assert kinds[-1] == "WorkflowExecutionCompleted"


async def test_a_query_on_blocking_code_answers_an_error_and_the_run_goes_on(
    client: Client,
) -> None:
    queue = f"deadlock-{uuid.uuid4().hex[:6]}"
    async with worker_of(client, queue, BlockingQuery, deadlock_timeout=0.5):
        handle = await client.start_workflow(
            BlockingQuery, id=f"blocking-query-{queue}", task_queue=queue
        )
        await eventually(lambda: _has_event(handle, "WorkflowTaskCompleted"), what="the first task")
        began = time.monotonic()
        with pytest.raises(QueryFailedError, match=r"did not yield within 0\.5 s"):
            await handle.query(BlockingQuery.peek, timeout=20)
        assert time.monotonic() - began < 10.0  # an answer, not a hang
        # the instance the query was stuck in is dropped: the run replays and goes on
        await handle.signal(BlockingQuery.finish)
        assert await handle.result(timeout=20) == "finished"


async def test_shutdown_returns_in_bounded_time_with_a_thread_stuck_in_workflow_code(
    client: Client,
) -> None:
    queue = f"deadlock-{uuid.uuid4().hex[:6]}"
    # A deadlock timeout longer than the test: shutdown's grace is what ends the wait.
    worker = worker_of(client, queue, Stuck, deadlock_timeout=120.0, graceful_shutdown_timeout=0.5)
    async with worker:
        handle = await client.start_workflow(Stuck, id=f"stuck-{queue}", task_queue=queue)
        await eventually(
            lambda: _has_event(handle, "WorkflowTaskStarted"), what="its first task started"
        )
        await asyncio.sleep(0.5)  # the code is in its blocking wait now
        began = time.monotonic()
        await asyncio.wait_for(worker.shutdown(), timeout=20)
        assert time.monotonic() - began < 10.0
    # the task was handed back for another worker, not left to its timeout
    failed = [
        e["attributes"] for e in await handle.history() if e["event_type"] == "WorkflowTaskFailed"
    ]
    assert failed and failed[0]["failure"]["type"] == "WorkerShutdown"


async def test_evicting_a_run_whose_cleanup_blocks_holds_up_no_other_run(
    client: Client,
) -> None:
    queue = f"deadlock-{uuid.uuid4().hex[:6]}"
    # One cached run: caching the second evicts the first, which runs its finally.
    async with worker_of(client, queue, BlockingCleanup, Quick, max_cached_workflows=1):
        cleanup = await client.start_workflow(
            BlockingCleanup, id=f"cleanup-{queue}", task_queue=queue
        )
        await eventually(
            lambda: _has_event(cleanup, "WorkflowTaskCompleted"), what="its first task"
        )
        began = time.monotonic()
        quick = await client.start_workflow(Quick, 1, id=f"quick-{queue}", task_queue=queue)
        assert await quick.result(timeout=20) == 2
        assert time.monotonic() - began < 10.0  # not after the 15 s cleanup


async def test_loops_that_never_wait_fail_as_deadlocks_and_spinning_threads_come_back(
    client: Client,
) -> None:
    queue = f"deadlock-{uuid.uuid4().hex[:6]}"
    worker = worker_of(client, queue, Spin, Busy, Quick, deadlock_timeout=0.5)
    async with worker:
        spin = await client.start_workflow(Spin, id=f"spin-{queue}", task_queue=queue)
        busy = await client.start_workflow(Busy, id=f"busy-{queue}", task_queue=queue)
        quick = await client.start_workflow(Quick, 1, id=f"quick-{queue}", task_queue=queue)
        assert await quick.result(timeout=20) == 2
        for handle in (spin, busy):
            failures = await eventually(
                lambda h=handle: deadlock_failures(h), what="a task failed as a deadlock"
            )
            assert failures[0]["failure"]["type"] == "DeadlockError"
        # the pure spin is interrupted: its thread comes back instead of burning the GIL
        await eventually(
            lambda: asyncio.sleep(0, worker._threads.stuck == 0), what="no thread stuck"
        )


async def _has_event(handle: Any, kind: str) -> bool:
    return any(e["event_type"] == kind for e in await handle.history())
