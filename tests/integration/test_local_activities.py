"""Temporal's local activities, as its hello_local_activity sample writes them:
``workflow.execute_local_activity`` and friends, run as ordinary (recorded)
activities on the workflow's task queue, with the same results and errors."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest

from tests.helpers import eventually
from worker import (
    ActivityError,
    ApplicationError,
    Client,
    Replayer,
    RetryPolicy,
    Worker,
    WorkflowFailureError,
    activity,
    workflow,
)

pytestmark = pytest.mark.integration
QUEUE = "local-activities"


@dataclasses.dataclass
class ComposeGreetingInput:
    greeting: str
    name: str


@activity.defn
async def compose_greeting(input: ComposeGreetingInput) -> str:
    return f"{input.greeting}, {input.name}!"


class Flaky:
    def __init__(self) -> None:
        self.calls = 0

    @activity.defn
    def shout(self, word: str) -> str:
        self.calls += 1
        if self.calls < 3:
            raise RuntimeError(f"not yet ({self.calls})")
        return word.upper()


@activity.defn
async def refuse(word: str) -> str:
    raise ApplicationError(f"no {word}", type="Refused", non_retryable=True)


@workflow.defn
class GreetingWorkflow:
    @workflow.run
    async def run(self, name: str) -> list[str]:
        hello = await workflow.execute_local_activity(
            compose_greeting,
            ComposeGreetingInput("Hello", name),
            start_to_close_timeout=timedelta(seconds=10),
        )
        handle = workflow.start_local_activity_method(
            Flaky.shout,
            name,
            schedule_to_close_timeout=timedelta(seconds=30),
            retry_policy=RetryPolicy(initial_interval=timedelta(milliseconds=100)),
            local_retry_threshold=timedelta(seconds=5),
        )
        loud = await handle
        later = await workflow.execute_local_activity_method(
            Flaky.shout, args=["bye"], start_to_close_timeout=timedelta(seconds=10)
        )
        return [hello, loud, later]


@workflow.defn
class RefusingWorkflow:
    @workflow.run
    async def run(self) -> str:
        result: str = await workflow.execute_local_activity(
            refuse, "thanks", start_to_close_timeout=timedelta(seconds=10)
        )
        return result


async def test_local_activities_run_retry_and_replay(client: Client) -> None:
    flaky = Flaky()
    async with Worker(
        client,
        task_queue=QUEUE,
        workflows=[GreetingWorkflow, RefusingWorkflow],
        activities=[compose_greeting, flaky.shout, refuse],
    ):
        handle = await client.start_workflow(
            GreetingWorkflow.run, "World", id="hello-local", task_queue=QUEUE
        )
        assert await handle.result(timeout=60) == ["Hello, World!", "WORLD", "BYE"]
        assert flaky.calls == 4  # two failed attempts, retried by the policy

        with pytest.raises(WorkflowFailureError) as caught:
            await client.execute_workflow(RefusingWorkflow.run, id="refuse-local", task_queue=QUEUE)
    cause = caught.value.cause
    assert isinstance(cause, ActivityError)
    assert isinstance(cause.cause, ApplicationError)
    assert cause.cause.type == "Refused"

    # recorded like any activity, so the run replays without a worker
    history = await handle.fetch_history()
    await Replayer(workflows=[GreetingWorkflow]).replay_workflow(history)


async def test_local_activity_options_are_checked(client: Client) -> None:
    @workflow.defn(name="NoTimeout")
    class NoTimeout:
        @workflow.run
        async def run(self) -> str:
            result: str = await workflow.execute_local_activity(compose_greeting, "x")
            return result

    async with Worker(client, task_queue=QUEUE, workflows=[NoTimeout], activities=[]):
        handle = await client.start_workflow(NoTimeout.run, id="no-timeout", task_queue=QUEUE)

        async def failed_task() -> bool:
            return "start_to_close_timeout" in str(await handle.describe())

        await eventually(failed_task, what="the workflow task to fail naming the option")
