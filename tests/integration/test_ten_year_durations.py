"""A timer or an activity timeout past the server's ten years fails the workflow
task where the code asked for it, saying so (and the run waits for a fix), as
a RetryPolicy past its bounds is refused where it is made: the server's
refusal of the command named only a field of the wire."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest

from tests.helpers import eventually
from worker import Client, Worker, activity, workflow

pytestmark = pytest.mark.integration
QUEUE = "ten-years"
CENTURY = timedelta(days=36525)


@activity.defn
async def archive() -> str:
    return "archived"


@workflow.defn
class Retain:
    @workflow.run
    async def run(self, how: str) -> str:
        if how == "sleep":
            await asyncio.sleep(CENTURY.total_seconds())
        elif how == "wait_condition":
            await workflow.wait_condition(lambda: False, timeout=CENTURY)
        else:
            await workflow.execute_activity(archive, start_to_close_timeout=CENTURY)
        return "done"


async def _task_failure(client: Client, workflow_id: str) -> dict[str, Any]:
    handle = client.get_workflow_handle(workflow_id)

    async def failed() -> dict[str, Any] | None:
        task = (await handle.describe())["pending_workflow_task"]
        return task["last_failure"] if task and task.get("last_failure") else None

    return await eventually(failed, what=f"{workflow_id}'s workflow task to fail")  # type: ignore[no-any-return]


async def test_durations_past_ten_years_fail_the_task_where_they_are_asked(
    client: Client,
) -> None:
    async with Worker(client, task_queue=QUEUE, workflows=[Retain], activities=[archive]):
        for how in ("sleep", "wait_condition", "activity"):
            await client.start_workflow(Retain, how, id=f"retain-{how}", task_queue=QUEUE)
        failures = {
            how: await _task_failure(client, f"retain-{how}")
            for how in ("sleep", "wait_condition", "activity")
        }
    for how, failure in failures.items():
        assert failure["type"] == "ValueError", (how, failure)
        assert "ten years" in failure["message"], (how, failure)
        assert "test_ten_year_durations.py" in failure["stack_trace"], (how, failure)
