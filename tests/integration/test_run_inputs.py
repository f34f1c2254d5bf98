"""A workflow's or an activity's input that is plainly not of its annotated kinds
(a string for an ``int``) fails its workflow task or activity attempt with a
``TypeError`` naming the argument, where the code ran on the string and the
mistake surfaced, if at all, as a wrong result."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from tests.helpers import eventually
from worker import ActivityError, ApplicationError, Client, RetryPolicy, Worker, activity, workflow
from worker.errors import InvalidArgumentError, WorkflowFailureError, WorkflowNotFoundError

pytestmark = pytest.mark.integration

QUEUE = "run-inputs"


@activity.defn
async def add(a: int, b: int) -> int:
    return a + b


@workflow.defn
class Adds:
    @workflow.run
    async def run(self, a: int, b: int) -> int:
        result: int = await workflow.execute_activity(
            "add", a, b, start_to_close_timeout=timedelta(seconds=10)
        )
        return result


@workflow.defn
class AddsByName:
    @workflow.run
    async def run(self, a: object, b: object) -> int:
        result: int = await workflow.execute_activity(
            "add",
            a,
            b,
            start_to_close_timeout=timedelta(seconds=10),
            retry_policy=RetryPolicy(maximum_attempts=1),
        )
        return result


def new_id() -> str:
    return f"inputs-{uuid.uuid4().hex[:8]}"


async def test_a_mistyped_workflow_input_fails_its_workflow_task(client: Client) -> None:
    async with Worker(client, task_queue=QUEUE, workflows=[Adds], activities=[add]):
        handle = await client.start_workflow("Adds", "1", 2, id=new_id(), task_queue=QUEUE)

        async def failed() -> dict[str, object] | None:
            task = (await handle.describe())["pending_workflow_task"]
            return task.get("last_failure") if task else None

        failure = await eventually(failed, timeout=20, what="a failed workflow task")
        assert failure["type"] == "TypeError"
        assert "workflow Adds input: argument 1 should be int, got str '1'" in str(
            failure["message"]
        )
        history = await handle.history()
        assert not [e for e in history if e["event_type"] == "ActivityTaskScheduled"]
        # the run is intact: a well-typed start of the same code finishes
        good = await client.start_workflow(Adds, 1, 2, id=new_id(), task_queue=QUEUE)
        assert await good.result(timeout=30) == 3


async def test_a_mistyped_activity_input_fails_its_attempt(client: Client) -> None:
    async with Worker(client, task_queue=QUEUE, workflows=[AddsByName], activities=[add]):
        handle = await client.start_workflow(AddsByName, "1", 2, id=new_id(), task_queue=QUEUE)
        with pytest.raises(WorkflowFailureError) as caught:
            await handle.result(timeout=30)
        err = caught.value.__cause__
        assert isinstance(err, ActivityError)
        assert isinstance(err.__cause__, ApplicationError)
        assert err.__cause__.type == "TypeError"
        assert "activity add input: argument 1 should be int, got str '1'" in str(err.__cause__)


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("1", 2), "argument 1 should be int, got str '1'"),
        ((1,), "cannot take 1 argument(s)"),
        ((1, 2, 3), "cannot take 3 argument(s)"),
    ],
)
async def test_a_start_by_class_refuses_input_its_run_method_cannot_take(
    client: Client, args: tuple[object, ...], says: str
) -> None:
    workflow_id = new_id()
    with pytest.raises(InvalidArgumentError) as caught:
        await client.start_workflow(Adds, *args, id=workflow_id, task_queue=QUEUE)
    assert says in str(caught.value)
    with pytest.raises(WorkflowNotFoundError):
        await client.get_workflow_handle(workflow_id).describe()
