"""Plain (``def``) activities, which the worker runs on threads: how many run
at once, and how a stopping worker reaches them."""

from __future__ import annotations

import asyncio
import os
import threading
import uuid
from datetime import timedelta

import pytest

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
