"""An activity whose own code raises ``KeyboardInterrupt`` or ``SystemExit`` fails
its attempt (retried by its policy), where asyncio carried the exception out of
the event loop and stopped the whole worker process."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from worker import ActivityError, ApplicationError, Client, RetryPolicy, Worker, activity, workflow
from worker.errors import WorkflowFailureError

pytestmark = pytest.mark.integration

QUEUE = "activity-exits"
ATTEMPTS: list[str] = []


@activity.defn
async def exits() -> str:
    ATTEMPTS.append("exits")
    raise SystemExit(3)


@activity.defn
def interrupted() -> str:
    ATTEMPTS.append("interrupted")
    raise KeyboardInterrupt("pressed")


@activity.defn
async def answers() -> str:
    return "still here"


@workflow.defn
class RunsOne:
    @workflow.run
    async def run(self, name: str) -> str:
        result: str = await workflow.execute_activity(
            name,
            start_to_close_timeout=timedelta(seconds=10),
            retry_policy=RetryPolicy(
                initial_interval=timedelta(milliseconds=100), maximum_attempts=2
            ),
        )
        return result


@pytest.mark.parametrize(
    ("name", "type_name"), [("exits", "SystemExit"), ("interrupted", "KeyboardInterrupt")]
)
async def test_an_activity_that_raises_an_exit_fails_its_attempts(
    client: Client, name: str, type_name: str
) -> None:
    ATTEMPTS.clear()
    async with Worker(
        client, task_queue=QUEUE, workflows=[RunsOne], activities=[exits, interrupted, answers]
    ):
        handle = await client.start_workflow(
            RunsOne, name, id=f"exit-{uuid.uuid4().hex[:8]}", task_queue=QUEUE
        )
        with pytest.raises(WorkflowFailureError) as caught:
            await handle.result(timeout=30)
        err = caught.value.__cause__
        assert isinstance(err, ActivityError)
        assert err.retry_state == "maximum_attempts_reached"
        assert isinstance(err.__cause__, ApplicationError)
        assert err.__cause__.type == type_name
        assert [name, name] == ATTEMPTS
        # the worker goes on running workflows and activities
        other = await client.start_workflow(
            RunsOne, "answers", id=f"after-{uuid.uuid4().hex[:8]}", task_queue=QUEUE
        )
        assert await other.result(timeout=30) == "still here"
