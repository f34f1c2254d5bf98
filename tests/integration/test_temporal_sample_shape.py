"""Code written for Temporal's Python SDK as its samples write it runs as it
is: activities imported with ``workflow.unsafe.imports_passed_through()``, a
workflow defined with ``sandboxed=False`` and a worker handed an
``activity_executor`` for its plain activities (Baton has no sandbox and runs
plain activities on threads of its own, so they change nothing)."""

from __future__ import annotations

import concurrent.futures
from datetime import timedelta

import pytest

from worker import Client, Worker, activity, workflow

with workflow.unsafe.imports_passed_through():
    import json

pytestmark = pytest.mark.integration
QUEUE = "temporal-shape"


@activity.defn
def compose_greeting(name: str) -> str:
    return json.dumps({"greeting": f"Hello, {name}!"})


@workflow.defn(sandboxed=False)
class GreetingWorkflow:
    @workflow.run
    async def run(self, name: str) -> str:
        with workflow.unsafe.sandbox_unrestricted():
            timeout = timedelta(seconds=10)
        text: str = await workflow.execute_activity(
            compose_greeting, name, start_to_close_timeout=timeout
        )
        return str(json.loads(text)["greeting"])


async def test_a_temporal_sample_runs_as_written(client: Client) -> None:
    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as executor:
        async with Worker(
            client,
            task_queue=QUEUE,
            workflows=[GreetingWorkflow],
            activities=[compose_greeting],
            activity_executor=executor,
        ):
            result = await client.execute_workflow(
                GreetingWorkflow.run, "World", id="temporal-shape", task_queue=QUEUE
            )
    assert result == "Hello, World!"
