"""A pause on repeated failure names the error within an operator's reason length."""

from __future__ import annotations

import pytest

from tests.helpers import eventually
from worker import Client, Worker, workflow
from worker.wire import MAX_DESCRIPTION_CHARS

pytestmark = pytest.mark.integration
QUEUE = "long-failure"


@workflow.defn(name="Rambles")
class Rambles:
    @workflow.run
    async def run(self) -> None:
        raise RuntimeError("boom " + "m" * 200_000)


async def test_a_failure_of_a_long_message_pauses_the_run_with_a_reason_of_bounded_length(
    client: Client,
) -> None:
    async with Worker(
        client, task_queue=QUEUE, workflows=[Rambles], pause_after_failed_workflow_tasks=1
    ):
        h = await client.start_workflow(Rambles, id="rambles", task_queue=QUEUE)

        async def paused() -> dict[str, str] | None:
            return (await h.describe())["execution"]["pause"]

        pause = await eventually(paused, what="the pause")
    reason = pause["reason"]
    assert reason.startswith("workflow task failed 1 times in a row: RuntimeError: boom mmm")
    assert len(reason) <= MAX_DESCRIPTION_CHARS
    assert "in run" in reason  # the end of the stack still names where it failed
    # the task's own failure keeps the whole message
    task = (await h.describe())["pending_workflow_task"]
    assert len(task["last_failure"]["message"]) == len("boom ") + 200_000
