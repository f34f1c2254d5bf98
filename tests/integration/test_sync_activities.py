"""Plain (``def``) activities, which the worker runs on threads: how many run
at once, and how a stopping worker reaches them."""

from __future__ import annotations

import asyncio
import gc
import os
import threading
import time
import uuid
from datetime import timedelta

import pytest

from tests.helpers import eventually
from worker import Client, RetryPolicy, Worker, activity, workflow

pytestmark = pytest.mark.integration
QUEUE = "sync-activities"

#: More attempts than asyncio's default thread pool runs at once on this machine.
SIDE_BY_SIDE = min(32, (os.cpu_count() or 1) + 4) + 2
_met = threading.Barrier(SIDE_BY_SIDE)


@activity.defn
def meet(i: int) -> int:
    """Returns once every attempt of the fan-out runs at the same time."""
    _met.wait(timeout=15)
    return i


@workflow.defn(name="SyncFanOut")
class SyncFanOut:
    @workflow.run
    async def run(self, n: int) -> list[int]:
        handles = [
            workflow.start_activity(
                meet,
                i,
                start_to_close_timeout=timedelta(seconds=30),
                retry_policy=RetryPolicy(maximum_attempts=1),
            )
            for i in range(n)
        ]
        return list(await asyncio.gather(*handles))


async def test_sync_activities_run_side_by_side_up_to_max_concurrent_activities(
    client: Client,
) -> None:
    """Regression: sync attempts ran in asyncio's default thread pool (6 threads
    on 2 cores), so those past it waited for a thread while their timeouts ran,
    though the worker had taken them as running."""
    _met.reset()
    async with Worker(client, task_queue=QUEUE, workflows=[SyncFanOut], activities=[meet]):
        result = await client.execute_workflow(
            SyncFanOut, SIDE_BY_SIDE, id=f"fan-{uuid.uuid4().hex[:6]}", task_queue=QUEUE
        )
    assert result == list(range(SIDE_BY_SIDE))


#: What the attempts of ``stops_when_told`` did, in order.
STEPS: list[str] = []


@activity.defn
def stops_when_told() -> str:
    """Works for 4 s, checking ``activity.is_cancelled()`` as it goes."""
    attempt = activity.info().attempt
    STEPS.append(f"start {attempt}")
    for _ in range(40):
        if activity.is_cancelled():
            STEPS.append(f"told {attempt}")
            raise RuntimeError("stopped")
        time.sleep(0.1)
    STEPS.append(f"end {attempt}")
    return f"attempt {attempt}"


@workflow.defn(name="SyncLongWork")
class SyncLongWork:
    @workflow.run
    async def run(self) -> str:
        return await workflow.execute_activity(
            stops_when_told, start_to_close_timeout=timedelta(seconds=60)
        )


async def test_a_stopping_worker_tells_a_sync_activity_and_waits_for_it(client: Client) -> None:
    """Regression: at the end of the grace the worker reported a sync attempt
    given back and another worker retried it at once, while the thread of the
    first never learnt of it (``is_cancelled()`` stayed false) and ran on
    beside the second to its end."""
    STEPS.clear()
    first = Worker(
        client,
        task_queue=QUEUE,
        workflows=[SyncLongWork],
        activities=[stops_when_told],
        graceful_shutdown_timeout=0.5,
    )
    async with first:
        handle = await client.start_workflow(
            SyncLongWork, id=f"long-{uuid.uuid4().hex[:6]}", task_queue=QUEUE
        )
        await eventually(lambda: asyncio.sleep(0, result="start 1" in STEPS), what="attempt 1")
    # The attempt was told, and had returned by the time the worker had drained.
    assert STEPS == ["start 1", "told 1"]
    async with Worker(
        client, task_queue=QUEUE, workflows=[SyncLongWork], activities=[stops_when_told]
    ):
        assert await handle.result(timeout=60) == "attempt 2"
    assert STEPS == ["start 1", "told 1", "start 2", "end 2"]


@activity.defn
def heartbeats_until_told() -> str:
    """Heartbeats (which is how a cancel reaches it) and raises once told."""
    for _ in range(300):
        activity.heartbeat()
        if activity.is_cancelled():
            STEPS.append("told")
            raise RuntimeError("stopped")
        time.sleep(0.1)
    return "finished"


@workflow.defn(name="SyncCancelled")
class SyncCancelled:
    @workflow.run
    async def run(self) -> str:
        handle = workflow.start_activity(
            heartbeats_until_told,
            start_to_close_timeout=timedelta(seconds=60),
            heartbeat_timeout=timedelta(seconds=2),
        )
        await workflow.sleep(1)
        handle.cancel()
        try:
            await handle
        except asyncio.CancelledError:
            return "cancelled"
        return "finished"


async def test_a_sync_activity_that_raises_once_cancelled_logs_no_asyncio_error(
    client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    """Regression: a sync attempt that raised after learning of its cancel left
    its outcome in futures nobody read, and asyncio logged each as ``Future
    exception was never retrieved`` with the user's traceback, at ERROR."""
    STEPS.clear()
    async with Worker(
        client, task_queue=QUEUE, workflows=[SyncCancelled], activities=[heartbeats_until_told]
    ):
        result = await client.execute_workflow(
            SyncCancelled, id=f"sync-cancel-{uuid.uuid4().hex[:6]}", task_queue=QUEUE
        )
        assert result == "cancelled"
        await eventually(lambda: asyncio.sleep(0, result="told" in STEPS), what="the cancel")
    # Leaving the worker waited for the attempt, and so for its thread to return.
    gc.collect()
    await asyncio.sleep(0)
    assert not [r for r in caplog.records if "never retrieved" in r.getMessage()]
