"""Worker options against a real server: names at their limits."""

from __future__ import annotations

import uuid

import pytest

from tests.conftest import Region
from tests.helpers import eventually
from worker import Client, Worker, workflow

pytestmark = pytest.mark.integration


@workflow.defn(name="TwoTasks")
class TwoTasks:
    @workflow.run
    async def run(self) -> str:
        await workflow.sleep(0.1)  # a second workflow task, sent to the sticky queue
        return "done"


async def test_a_worker_on_the_longest_task_queue_name_runs_its_workflows(client: Client) -> None:
    """Regression: the sticky queue's name was the task queue's plus 40
    characters, so with a name the server takes (up to 1,000) past 960, every
    completion naming it was refused and the workflows never moved."""
    queue = "q" * 1000
    async with Worker(client, task_queue=queue, workflows=[TwoTasks]) as worker:
        assert worker.sticky_task_queue is not None
        assert len(worker.sticky_task_queue) <= 1000
        handle = await client.start_workflow(
            TwoTasks, id=f"long-queue-{uuid.uuid4().hex[:6]}", task_queue=queue
        )
        assert await handle.result(timeout=30) == "done"


@workflow.defn(name="WaitsForPoke")
class WaitsForPoke:
    def __init__(self) -> None:
        self.poked = False

    @workflow.run
    async def run(self) -> str:
        await workflow.wait_condition(lambda: self.poked)
        return "poked"

    @workflow.signal
    def poke(self) -> None:
        self.poked = True


async def test_a_worker_that_caches_no_runs_keeps_no_sticky_queue(
    client: Client, region: Region
) -> None:
    """Regression: a worker with ``max_cached_workflows=0`` still named its
    sticky queue on every completion, though it kept no run to go on from,
    so after it died (SIGKILL) each of its runs' next task waited out
    ``sticky_schedule_to_start`` before another worker could take it. As in
    Temporal, no cache means no sticky queue."""
    workflow_id = f"no-cache-{uuid.uuid4().hex[:6]}"
    async with Worker(
        client, task_queue="no-cache", workflows=[WaitsForPoke], max_cached_workflows=0
    ) as worker:
        assert worker.sticky_task_queue is None
        handle = await client.start_workflow(WaitsForPoke, id=workflow_id, task_queue="no-cache")

        async def first_task_done() -> bool:
            return any(e["event_type"] == "WorkflowTaskCompleted" for e in await handle.history())

        await eventually(first_task_done, what="the first workflow task")
        sticky = await region.store.pool.fetchval(
            "SELECT sticky_queue FROM executions WHERE namespace = 'default' AND workflow_id = $1",
            workflow_id,
        )
        assert sticky is None
        await handle.signal(WaitsForPoke.poke)
        assert await handle.result(timeout=30) == "poked"
