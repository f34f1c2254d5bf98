"""Worker options against a real server: names at their limits."""

from __future__ import annotations

import uuid

import pytest

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
