"""Async activity completion as Temporal's hello_async_activity_completion
sample writes it: the activity calls ``activity.raise_complete_async()`` and a
client completes it later by task token, or by workflow and activity id."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import timedelta

import pytest

from tests.conftest import Region
from tests.helpers import baton_json, eventually
from worker import (
    ActivityError,
    ApplicationError,
    CanceledError,
    Client,
    InvalidArgumentError,
    RetryPolicy,
    TaskNotFoundError,
    Worker,
    WorkflowFailureError,
    activity,
    workflow,
)

pytestmark = pytest.mark.integration
QUEUE = "async-completion"


@dataclasses.dataclass
class ComposeGreetingInput:
    greeting: str
    name: str


class GreetingComposer:
    def __init__(self, client: Client) -> None:
        self.client = client
        self.tasks: list[asyncio.Task[None]] = []
        self.last_token = b""

    @activity.defn
    async def compose_greeting(self, input: ComposeGreetingInput) -> str:
        token = activity.info().task_token
        assert isinstance(token, bytes) and token
        self.last_token = token
        self.tasks.append(asyncio.create_task(self.complete_greeting(token, input)))
        activity.raise_complete_async()

    async def complete_greeting(self, task_token: bytes, input: ComposeGreetingInput) -> None:
        handle = self.client.get_async_activity_handle(task_token=task_token)
        for _ in range(3):
            await handle.heartbeat("waiting")
            await asyncio.sleep(0.3)
        await handle.complete(f"{input.greeting}, {input.name}!")


@activity.defn
def wait_outside(name: str) -> str:  # a sync activity may leave it too
    activity.raise_complete_async()


@workflow.defn
class GreetingWorkflow:
    @workflow.run
    async def run(self, name: str) -> str:
        result: str = await workflow.execute_activity_method(
            GreetingComposer.compose_greeting,
            ComposeGreetingInput("Hello", name),
            start_to_close_timeout=timedelta(seconds=20),
            heartbeat_timeout=timedelta(seconds=5),
        )
        return result


@workflow.defn
class ByIdWorkflow:
    @workflow.run
    async def run(self, name: str) -> str:
        result: str = await workflow.execute_activity(
            wait_outside,
            name,
            activity_id="outside",
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=RetryPolicy(maximum_attempts=2, initial_interval=timedelta(seconds=0.1)),
        )
        return result


@workflow.defn
class CancelWorkflow:
    @workflow.run
    async def run(self) -> str:
        handle = workflow.start_activity(
            wait_outside,
            "x",
            activity_id="outside",
            start_to_close_timeout=timedelta(seconds=30),
            cancellation_type=workflow.ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
        )
        await workflow.sleep(0.5)
        handle.cancel()
        try:
            await handle
        except ActivityError as err:
            return f"canceled: {type(err.cause).__name__}"
        return "not canceled"


async def started(client: Client, workflow_id: str) -> bool:
    desc = await client.get_workflow_handle(workflow_id).describe()
    return any(a.get("state") == "started" for a in desc.get("pending_activities") or [])


async def test_activity_completed_by_task_token(client: Client) -> None:
    composer = GreetingComposer(client)
    async with Worker(
        client,
        task_queue=QUEUE,
        workflows=[GreetingWorkflow],
        activities=[composer.compose_greeting],
    ):
        handle = await client.start_workflow(
            GreetingWorkflow.run, "World", id="hello-async", task_queue=QUEUE
        )
        # heartbeats from the client keep the 5 s heartbeat timeout from expiring
        assert await handle.result(timeout=60) == "Hello, World!"
    await asyncio.gather(*composer.tasks)
    # the attempt is over: its token names nothing any more
    with pytest.raises(TaskNotFoundError):
        await client.get_async_activity_handle(task_token=composer.last_token).complete("again")


async def test_activity_failed_and_completed_by_ids(client: Client) -> None:
    async with Worker(
        client, task_queue=QUEUE, workflows=[ByIdWorkflow], activities=[wait_outside]
    ):
        handle = await client.start_workflow(ByIdWorkflow.run, "x", id="by-id", task_queue=QUEUE)
        await eventually(lambda: started(client, "by-id"), what="the attempt to start")
        by_id = client.get_async_activity_handle(workflow_id="by-id", activity_id="outside")
        # a retryable failure: the policy retries it (attempt 2), as for a failure of its code
        await by_id.fail(ApplicationError("first try failed"))

        async def second_attempt() -> bool:
            desc = await handle.describe()
            acts = desc.get("pending_activities") or []
            return any(a.get("attempt") == 2 and a.get("state") == "started" for a in acts)

        await eventually(second_attempt, what="the second attempt to start")
        run_id = handle.run_id
        await client.get_async_activity_handle(
            workflow_id="by-id", run_id=run_id, activity_id="outside"
        ).complete("done by id")
        assert await handle.result(timeout=60) == "done by id"

        with pytest.raises(TaskNotFoundError):
            await by_id.complete("too late")

        handle = await client.start_workflow(ByIdWorkflow.run, "x", id="by-id-2", task_queue=QUEUE)
        await eventually(lambda: started(client, "by-id-2"), what="the attempt to start")
        await client.get_async_activity_handle(workflow_id="by-id-2", activity_id="outside").fail(
            ApplicationError("no", type="Refused", non_retryable=True)
        )
        with pytest.raises(WorkflowFailureError) as caught:
            await handle.result(timeout=60)
    cause = caught.value.cause
    assert isinstance(cause, ActivityError) and isinstance(cause.cause, ApplicationError)
    assert cause.cause.type == "Refused"


async def test_cancellation_reported_by_client(client: Client) -> None:
    async with Worker(
        client, task_queue=QUEUE, workflows=[CancelWorkflow], activities=[wait_outside]
    ):
        handle = await client.start_workflow(CancelWorkflow.run, id="cancel", task_queue=QUEUE)
        await eventually(lambda: started(client, "cancel"), what="the attempt to start")
        by_id = client.get_async_activity_handle(workflow_id="cancel", activity_id="outside")

        async def cancel_asked() -> bool:
            desc = await handle.describe()
            return any(a.get("cancel_requested") for a in desc.get("pending_activities") or [])

        await eventually(cancel_asked, what="the workflow to ask for the cancel")
        await by_id.report_cancellation()
        assert await handle.result(timeout=60) == f"canceled: {CanceledError.__name__}"


async def test_bad_handles_are_refused(client: Client) -> None:
    with pytest.raises(InvalidArgumentError):
        client.get_async_activity_handle()
    with pytest.raises(InvalidArgumentError):
        client.get_async_activity_handle(task_token=b"t", workflow_id="w", activity_id="a")
    with pytest.raises(InvalidArgumentError):
        client.get_async_activity_handle(workflow_id="w")
    with pytest.raises(TaskNotFoundError):
        await client.get_async_activity_handle(workflow_id="none", activity_id="a").complete(1)
    with pytest.raises(TaskNotFoundError):
        await client.get_async_activity_handle(task_token=b"garbage").complete(1)
    with pytest.raises(InvalidArgumentError):
        await client.get_async_activity_handle(
            workflow_id="w", run_id="not-a-uuid", activity_id="a"
        ).heartbeat()


async def test_cli_completes_and_fails_an_activity(client: Client, region: Region) -> None:
    async with Worker(
        client, task_queue=QUEUE, workflows=[ByIdWorkflow], activities=[wait_outside]
    ):
        handle = await client.start_workflow(ByIdWorkflow.run, "x", id="cli-1", task_queue=QUEUE)
        await eventually(lambda: started(client, "cli-1"), what="the attempt to start")
        code, out, err = await baton_json(
            region.config_path, "activity", "complete", "cli-1", "outside", "--result", '"by cli"'
        )
        assert code == 0, (out, err)
        assert await handle.result(timeout=60) == "by cli"

        code, out, err = await baton_json(
            region.config_path, "activity", "complete", "cli-1", "outside", "--result", "1"
        )
        assert code != 0 and out["error"]["code"] == "TASK_NOT_FOUND", (out, err)
        code, out, err = await baton_json(
            region.config_path, "activity", "complete", "cli-1", "outside", "--result", "{bad"
        )
        assert code != 0 and "--result" in out["error"]["message"], (out, err)

        handle = await client.start_workflow(ByIdWorkflow.run, "x", id="cli-2", task_queue=QUEUE)
        await eventually(lambda: started(client, "cli-2"), what="the attempt to start")
        code, out, err = await baton_json(
            region.config_path,
            "activity",
            "fail",
            "cli-2",
            "outside",
            "--reason",
            "operator says no",
            "--non-retryable",
        )
        assert code == 0, (out, err)
        with pytest.raises(WorkflowFailureError) as caught:
            await handle.result(timeout=60)
    cause = caught.value.cause
    assert isinstance(cause, ActivityError) and isinstance(cause.cause, ApplicationError)
    assert str(cause.cause) == "operator says no"
