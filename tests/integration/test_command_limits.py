"""A workflow task whose commands are over the server's limits ends the run with
a typed failure (or pauses it, if the worker pauses runs on repeated failures),
where the refused completion used to be retried for ever and the run wedged."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from ops.pg import PgCluster
from tests.conftest import default_namespace_client, one_region
from tests.helpers import eventually
from worker import ApplicationError, Client, Worker, WorkflowFailureError, activity, workflow
from worker.errors import UpdateRejectedError

pytestmark = pytest.mark.integration
QUEUE = "command-limits"
LIMIT = 64 * 1024
BODY_LIMIT = 4 * LIMIT + 1024 * 1024
#: Over the payload limit, within the body limit.
OVER = 100_000
#: Within the payload limit: enough of them pass the body limit together.
UNDER = 60_000

RAN: list[str] = []


@pytest.fixture
async def small_client(pg: PgCluster, template_db: str, tmp_path: Path) -> AsyncIterator[Client]:
    async with (
        one_region(pg, template_db, tmp_path, max_payload_bytes=LIMIT) as region,
        default_namespace_client(region) as c,
    ):
        yield c


@activity.defn(name="limits_echo_length")
async def echo_length(text: str) -> int:
    RAN.append(text[:8])
    return len(text)


@workflow.defn(name="LimitsBigCommand")
class BigCommand:
    @workflow.run
    async def run(self, how: str, size: int) -> Any:
        await workflow.sleep(timedelta(milliseconds=1))
        if how == "activity":
            return await workflow.execute_activity(
                echo_length, "a" * size, start_to_close_timeout=timedelta(seconds=10)
            )
        if how == "continue-as-new":
            workflow.continue_as_new("done", "c" * size)
        if how == "many":
            handles = [
                workflow.start_activity(
                    echo_length,
                    f"{i:08}" + "m" * size,
                    start_to_close_timeout=timedelta(seconds=10),
                )
                for i in range(25)
            ]
            return sum([await h for h in handles])
        return how

    @workflow.query
    def asked(self) -> str:
        return "answered"


def kinds(events: list[dict[str, Any]]) -> list[str]:
    return [e["event_type"] for e in events]


@pytest.mark.parametrize(
    ("how", "size", "what"),
    [
        ("activity", OVER, "the input of activity 'limits_echo_length'"),
        ("continue-as-new", OVER, "the input or memo of continue-as-new"),
        ("many", UNDER, "the workflow task's 25 commands are"),
    ],
)
async def test_commands_over_the_limits_fail_the_run_with_a_typed_failure(
    small_client: Client, how: str, size: int, what: str
) -> None:
    async with Worker(
        small_client, task_queue=QUEUE, workflows=[BigCommand], activities=[echo_length]
    ):
        handle = await small_client.start_workflow(
            BigCommand, how, size, id=f"big-command-{how}", task_queue=QUEUE
        )
        with pytest.raises(WorkflowFailureError) as failed:
            await handle.result(timeout=20)
        # The closed run replays: its code's commands are matched by the failure.
        assert await handle.query("asked") == "answered"
    cause = failed.value.__cause__
    assert isinstance(cause, ApplicationError)
    assert cause.type == "PayloadTooLarge" and cause.non_retryable
    assert what in cause.message
    if how == "many":
        assert f"over the server's request body limit of {BODY_LIMIT} bytes" in cause.message
    else:
        assert f" is {size + 2} bytes" in cause.message  # the string's JSON: its quotes
        assert f"over the server's payload limit of {LIMIT} bytes" in cause.message
    assert (await handle.describe())["execution"]["status"] == "failed"
    events = kinds(await handle.history())
    # Nothing of the refused task was recorded, and it was not retried.
    assert "WorkflowTaskFailed" not in events
    assert "ActivityTaskScheduled" not in events
    assert events[-2:] == ["WorkflowTaskCompleted", "WorkflowExecutionFailed"]
    assert not [r for r in RAN if r.startswith("0000")]


async def test_a_worker_that_pauses_on_failures_pauses_the_run_at_once(
    small_client: Client,
) -> None:
    async with Worker(
        small_client,
        task_queue=QUEUE,
        workflows=[BigCommand],
        activities=[echo_length],
        pause_after_failed_workflow_tasks=3,
    ):
        handle = await small_client.start_workflow(
            BigCommand, "activity", OVER, id="big-command-paused", task_queue=QUEUE
        )

        async def paused() -> dict[str, Any] | None:
            d = await handle.describe()
            return d if d["execution"]["paused"] else None

        d = await eventually(paused, timeout=20, what="paused for the oversized command")
        assert await handle.query("asked") == "answered"
    reason = d["execution"]["pause"]["reason"]
    assert "PayloadTooLarge: the input of activity" in reason
    assert d["execution"]["status"] == "running"
    events = kinds(await handle.history())
    assert events.count("WorkflowTaskFailed") == 1
    assert events[-1] == "WorkflowExecutionPaused"
    assert "ActivityTaskScheduled" not in events
    await handle.terminate("done")


@workflow.defn(name="LimitsBigBug")
class BigBug:
    @workflow.run
    async def run(self, size: int) -> str:
        raise RuntimeError("b" * size)


async def test_a_workflow_task_failure_over_the_body_limit_is_cut_and_recorded(
    small_client: Client,
) -> None:
    # The refused report left each task to time out: its failure was never
    # seen, describe said "timed out", and the worker's pause never came.
    async with Worker(
        small_client, task_queue=QUEUE, workflows=[BigBug], pause_after_failed_workflow_tasks=2
    ):
        handle = await small_client.start_workflow(
            BigBug, BODY_LIMIT + 1000, id="big-bug", task_queue=QUEUE
        )

        async def paused() -> dict[str, Any] | None:
            d = await handle.describe()
            return d if d["execution"]["paused"] else None

        d = await eventually(paused, timeout=30, what="paused after two failed tasks")
    failure = d["pending_workflow_task"]["last_failure"]
    assert failure["type"] == "RuntimeError"
    assert failure["message"].startswith("bbbb")
    assert f"cut from {BODY_LIMIT + 1000} characters" in failure["message"]
    assert "raise RuntimeError" in failure["stack_trace"]  # the end, where it was raised
    events = kinds(await handle.history())
    assert events.count("WorkflowTaskFailed") == 2
    assert "WorkflowTaskTimedOut" not in events
    await handle.terminate("done")


@workflow.defn(name="LimitsBigUpdate")
class BigUpdate:
    @workflow.run
    async def run(self) -> str:
        await workflow.wait_condition(lambda: False)
        return "never"

    @workflow.update
    async def work(self, size: int) -> int:
        return await workflow.execute_activity(
            echo_length, "u" * size, start_to_close_timeout=timedelta(seconds=10)
        )

    @workflow.query
    def asked(self) -> str:
        return "answered"


async def test_an_update_whose_handler_issues_a_command_over_the_limit_is_rejected(
    small_client: Client,
) -> None:
    # Failing the run while the update stood unanswered, the server would
    # not close it: it retried the task at once, hundreds of times a second.
    async with Worker(
        small_client, task_queue=QUEUE, workflows=[BigUpdate], activities=[echo_length]
    ):
        handle = await small_client.start_workflow(BigUpdate, id="big-update", task_queue=QUEUE)
        began = time.monotonic()
        with pytest.raises(UpdateRejectedError) as rejected:
            await handle.update("work", OVER, timeout=10)
        assert time.monotonic() - began < 5
        with pytest.raises(WorkflowFailureError) as failed:
            await handle.result(timeout=10)
        # The closed run replays: the rejected update's handler never ran.
        assert await handle.query("asked") == "answered"
    for err in (rejected.value.__cause__, failed.value.__cause__):
        assert isinstance(err, ApplicationError) and err.type == "PayloadTooLarge"
        assert "the input of activity 'limits_echo_length'" in err.message
    events = kinds(await handle.history())
    assert "WorkflowTaskFailed" not in events
    assert events[-2:] == ["WorkflowTaskCompleted", "WorkflowExecutionFailed"]
