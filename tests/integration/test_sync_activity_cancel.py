"""A plain (``def``) activity that never checks ``activity.is_cancelled()``, as
Temporal's hello_cancellation sample writes it, still stops when the workflow
cancels it: ``asyncio.CancelledError`` is raised in its thread (as Temporal's
SDK raises its CancelledError there), its cleanup runs, and the thread is free
for the next attempt."""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import timedelta
from typing import NoReturn

import pytest

from tests.helpers import eventually
from worker import Client, Worker, WorkflowFailureError, activity, workflow

pytestmark = pytest.mark.integration
QUEUE = "sync-activity-cancel"
seen: list[str] = []
stopped = threading.Event()


@activity.defn
def never_complete_activity() -> NoReturn:
    try:
        while True:
            activity.heartbeat()
            time.sleep(0.2)
    except asyncio.CancelledError:
        seen.append("cancelled")
        raise
    finally:
        stopped.set()


@activity.defn
def cleanup_activity() -> str:
    seen.append("cleanup")
    return "clean"


@workflow.defn
class CancellationWorkflow:
    @workflow.run
    async def run(self) -> None:
        try:
            await workflow.execute_activity(
                never_complete_activity,
                start_to_close_timeout=timedelta(seconds=1000),
                heartbeat_timeout=timedelta(seconds=2),
            )
        finally:
            await workflow.execute_activity(
                cleanup_activity, start_to_close_timeout=timedelta(seconds=5)
            )


@workflow.defn
class CleanupOnly:
    @workflow.run
    async def run(self) -> str:
        result: str = await workflow.execute_activity(
            cleanup_activity, start_to_close_timeout=timedelta(seconds=5)
        )
        return result


async def test_cancelled_sync_activity_stops_its_thread(client: Client) -> None:
    async with Worker(
        client,
        task_queue=QUEUE,
        workflows=[CancellationWorkflow, CleanupOnly],
        activities=[never_complete_activity, cleanup_activity],
        max_concurrent_activities=2,
    ):
        handle = await client.start_workflow(
            CancellationWorkflow.run, id="cancel-sync", task_queue=QUEUE
        )

        async def running() -> bool:
            desc = await handle.describe()
            return any(a.get("state") == "started" for a in desc.get("pending_activities") or [])

        await eventually(running, what="the activity to start")
        await handle.cancel()
        with pytest.raises(WorkflowFailureError):
            await handle.result(timeout=30)
        assert await asyncio.to_thread(stopped.wait, 10), "the activity's thread is still running"
        assert "cancelled" in seen
        # both threads are free again: two more attempts run side by side
        results = await asyncio.gather(
            *(
                client.execute_workflow(CleanupOnly.run, id=f"after-{i}", task_queue=QUEUE)
                for i in range(2)
            )
        )
        assert results == ["clean", "clean"]
