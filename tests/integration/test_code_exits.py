"""User code that raises ``KeyboardInterrupt`` or ``SystemExit`` fails what it ran
for (an activity attempt, retried by its policy; a workflow task, retried until
fixed code runs it; a query), where asyncio carried the exception out of the
event loop and stopped the whole worker process."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from tests.helpers import eventually
from worker import (
    ActivityError,
    ApplicationError,
    Client,
    RetryPolicy,
    Worker,
    WorkflowHandle,
    activity,
    workflow,
)
from worker.errors import QueryFailedError, WorkflowFailureError

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


BROKEN = {"on": True}


@workflow.defn
class Exits:
    def __init__(self) -> None:
        self.go = False

    @workflow.run
    async def run(self) -> str:
        await workflow.wait_condition(lambda: self.go)
        if BROKEN["on"]:
            raise SystemExit(2)
        return "finished"

    @workflow.signal
    def proceed(self) -> None:
        self.go = True

    @workflow.query
    def state(self) -> bool:
        raise KeyboardInterrupt("in a query")


def workflow_task_failures(events: list[dict[str, object]]) -> list[object]:
    return [e["attributes"] for e in events if e["event_type"] == "WorkflowTaskFailed"]


async def test_workflow_code_that_raises_an_exit_fails_its_task_until_fixed(
    client: Client,
) -> None:
    BROKEN["on"] = True
    async with Worker(client, task_queue=QUEUE, workflows=[Exits]):
        handle = await client.start_workflow(
            Exits, id=f"wf-exit-{uuid.uuid4().hex[:8]}", task_queue=QUEUE
        )
        # a query's exit fails the query alone
        with pytest.raises(QueryFailedError, match="KeyboardInterrupt"):
            await handle.query(Exits.state, timeout=10)
        await handle.signal(Exits.proceed)
        await eventually(
            lambda: _failed_twice(handle), timeout=20, what="two failed workflow tasks"
        )
        task = (await handle.describe())["pending_workflow_task"]
        assert task["last_failure"]["type"] == "SystemExit"
        BROKEN["on"] = False
    async with Worker(client, task_queue=QUEUE, workflows=[Exits]):
        assert await handle.result(timeout=30) == "finished"


async def _failed_twice(handle: WorkflowHandle) -> bool:
    return len(workflow_task_failures(await handle.history())) >= 2
