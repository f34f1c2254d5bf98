"""The workflow lifecycle as the SDK promises it: cancellation, retries and
timeouts of activities and runs, on real PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta

import pytest

from tests.helpers import eventually
from worker import (
    ActivityError,
    ApplicationError,
    Client,
    RetryPolicy,
    Worker,
    WorkflowFailureError,
    activity,
    workflow,
)

pytestmark = pytest.mark.integration
QUEUE = "lifecycle"

#: Attempts the activities below started, per workflow id (one worker process).
ATTEMPTS: dict[str, list[int]] = {}


@activity.defn
async def ends_badly(how: str) -> str:
    """Runs past its cancel without heartbeating, then fails or overruns its time."""
    info = activity.info()
    ATTEMPTS.setdefault(info.workflow_id, []).append(info.attempt)
    await asyncio.sleep(1.0 if how == "fails" else 3.0)
    if how == "fails":
        raise RuntimeError("failed after the workflow canceled it")
    return "finished late"


@workflow.defn
class CancelsItsActivity:
    """Cancels a running activity, then goes on for a while before it returns."""

    @workflow.run
    async def run(self, how: str) -> str:
        handle = workflow.start_activity(
            ends_badly,
            how,
            start_to_close_timeout=timedelta(seconds=2),
            retry_policy=RetryPolicy(initial_interval=timedelta(milliseconds=100)),
        )
        await workflow.sleep(0.3)
        handle.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await handle
        await workflow.sleep(5)
        return "moved on"


@pytest.mark.parametrize(
    ("how", "closed_as"), [("fails", "ActivityTaskFailed"), ("overruns", "ActivityTaskTimedOut")]
)
async def test_an_activity_the_workflow_canceled_is_not_retried(
    client: Client, how: str, closed_as: str
) -> None:
    # The attempt ends (failed, or past its start-to-close) after the cancel
    # request: retrying it would run its side effects again for a workflow
    # that no longer waits for it (Temporal's CANCEL_REQUESTED retry state).
    wf_id = f"cancel-activity-{how}"
    async with Worker(
        client, task_queue=QUEUE, workflows=[CancelsItsActivity], activities=[ends_badly]
    ):
        handle = await client.start_workflow(CancelsItsActivity, how, id=wf_id, task_queue=QUEUE)
        assert await handle.result(timeout=30) == "moved on"
    assert ATTEMPTS[wf_id] == [1]
    events = await handle.history()
    closed = [e for e in events if e["event_type"] == closed_as]
    assert [e["attributes"]["retry_state"] for e in closed] == ["cancel_requested"]


@activity.defn
async def calls_a_slow_upstream() -> str:
    async with asyncio.timeout(0.05):  # the activity's own deadline on its call
        await asyncio.sleep(5)
    return "answered"


@workflow.defn
class CallsUpstream:
    @workflow.run
    async def run(self) -> str:
        return await workflow.execute_activity(  # type: ignore[no-any-return]
            calls_a_slow_upstream,
            start_to_close_timeout=timedelta(seconds=5),
            retry_policy=RetryPolicy(maximum_attempts=1),
        )


async def test_an_activity_s_own_timeout_error_reaches_the_caller_as_its_error(
    client: Client,
) -> None:
    # Python's TimeoutError raised by the activity's code is the attempt's own
    # error (an ApplicationError of that type), not a timeout of Baton's.
    async with Worker(
        client, task_queue=QUEUE, workflows=[CallsUpstream], activities=[calls_a_slow_upstream]
    ):
        with pytest.raises(WorkflowFailureError) as err:
            await client.execute_workflow(CallsUpstream, id="own-timeout", task_queue=QUEUE)
    activity_error = err.value.__cause__
    assert isinstance(activity_error, ActivityError)
    assert activity_error.retry_state == "maximum_attempts_reached"
    cause = activity_error.__cause__
    assert type(cause) is ApplicationError and cause.type == "TimeoutError"


@activity.defn
async def times_out(how: str) -> str:
    info = activity.info()
    ATTEMPTS.setdefault(info.workflow_id, []).append(info.attempt)
    if how == "own":
        raise TimeoutError("the upstream call took too long")
    await asyncio.sleep(3)  # past its start-to-close: the server times it out
    return "late"


@workflow.defn
class NoRetryOnTimeoutError:
    @workflow.run
    async def run(self, how: str) -> str:
        return await workflow.execute_activity(  # type: ignore[no-any-return]
            times_out,
            how,
            start_to_close_timeout=timedelta(seconds=1),
            retry_policy=RetryPolicy(
                initial_interval=timedelta(milliseconds=100),
                maximum_attempts=2,
                non_retryable_error_types=["TimeoutError"],
            ),
        )


@pytest.mark.parametrize(
    ("how", "attempts", "retry_state"),
    [("own", [1], "non_retryable_failure"), ("server", [1, 2], "maximum_attempts_reached")],
)
async def test_non_retryable_types_name_the_code_s_errors_not_the_server_s_timeouts(
    client: Client, how: str, attempts: list[int], retry_state: str
) -> None:
    # "TimeoutError" stops retries of the code's own TimeoutError; a
    # start-to-close timeout (how a crashed worker's attempt ends) is retried.
    wf_id = f"no-retry-on-timeout-error-{how}"
    async with Worker(
        client, task_queue=QUEUE, workflows=[NoRetryOnTimeoutError], activities=[times_out]
    ):
        with pytest.raises(WorkflowFailureError) as err:
            await client.execute_workflow(NoRetryOnTimeoutError, how, id=wf_id, task_queue=QUEUE)
    assert ATTEMPTS[wf_id] == attempts
    activity_error = err.value.__cause__
    assert isinstance(activity_error, ActivityError)
    assert activity_error.retry_state == retry_state


@workflow.defn
class Renews:
    """Reports its own timeouts; its first run continues with new ones."""

    @workflow.run
    async def run(self, gen: int) -> list[float | None]:
        info = workflow.info()
        if gen == 0:
            workflow.continue_as_new(
                1, run_timeout=timedelta(minutes=5), task_timeout=timedelta(seconds=20)
            )
        run = info.run_timeout.total_seconds() if info.run_timeout else None
        return [run, info.task_timeout.total_seconds()]


@workflow.defn
class RenewsBadly:
    @workflow.run
    async def run(self) -> None:
        workflow.continue_as_new(task_timeout=timedelta(hours=2))


async def test_continue_as_new_sets_the_new_runs_timeouts_and_info_reads_them(
    client: Client,
) -> None:
    async with Worker(client, task_queue=QUEUE, workflows=[Renews, RenewsBadly]):
        h = await client.start_workflow(
            Renews, 0, id="renews", task_queue=QUEUE, run_timeout=timedelta(minutes=1)
        )
        assert await h.result(timeout=20) == [300.0, 20.0]
        plain = await client.execute_workflow(Renews, 1, id="renews-plain", task_queue=QUEUE)
        assert plain == [None, 10.0]
        # past the server's bound: the task fails at the call, with the reason
        bad = await client.start_workflow(RenewsBadly, id="renews-bad", task_queue=QUEUE)

        async def failed_task() -> str | None:
            for e in await bad.history():
                if e["event_type"] == "WorkflowTaskFailed":
                    return str(e["attributes"]["failure"]["message"])
            return None

        message = await eventually(failed_task, timeout=20, what="the task to fail")
        assert "task_timeout must be at most an hour" in message
        await bad.terminate("done")


@activity.defn
async def hands_in() -> str:
    return "in"


@workflow.defn
class Batches:
    """Gathers signals; after its activity it continues as new carrying them."""

    def __init__(self) -> None:
        self.got: list[int] = []

    @workflow.run
    async def run(self, activity_queue: str, carried: list[int] | None = None) -> list[int]:
        if carried is None:
            await workflow.execute_activity(
                hands_in, task_queue=activity_queue, start_to_close_timeout=timedelta(seconds=10)
            )
            # a copy: what the run had when it continued, not what came after
            workflow.continue_as_new(activity_queue, list(self.got))
        return (carried or []) + self.got

    @workflow.signal
    def add(self, value: int) -> None:
        self.got.append(value)


async def test_continue_as_new_after_an_activity_carries_signals_of_the_same_task(
    client: Client,
) -> None:
    activities = f"{QUEUE}-activities"
    async with Worker(client, task_queue=QUEUE, workflows=[Batches]):
        handle = await client.start_workflow(Batches, activities, id="batches", task_queue=QUEUE)

        async def scheduled() -> bool:
            return any(e["event_type"] == "ActivityTaskScheduled" for e in await handle.history())

        await eventually(scheduled)
    # The activity completes and the signals arrive while no worker runs the
    # workflow, so one task brings the result and the signals together.
    async with Worker(client, task_queue=activities, activities=[hands_in]):

        async def completed() -> bool:
            return any(e["event_type"] == "ActivityTaskCompleted" for e in await handle.history())

        await eventually(completed)
    for value in (1, 2, 3):
        await handle.signal("add", value)
    async with Worker(client, task_queue=QUEUE, workflows=[Batches]):
        # before: the run resumed with the result before the handlers ran,
        # and continued as new without the three signals it had acknowledged
        assert await handle.result(timeout=30) == [1, 2, 3]


@workflow.defn
class Charge:
    """Charges, then ships; a cancel after the charge must know it charged."""

    def __init__(self) -> None:
        self.log: list[str] = []

    @workflow.run
    async def run(self, activity_queue: str) -> list[str]:
        limit = timedelta(seconds=10)
        try:
            got = await workflow.execute_activity(
                hands_in, task_queue=activity_queue, start_to_close_timeout=limit
            )
            self.log.append(got)
            await workflow.execute_activity(
                hands_in, task_queue=activity_queue, start_to_close_timeout=limit
            )
        except asyncio.CancelledError:
            self.log.append("canceled")
        return self.log


async def test_a_cancel_that_follows_a_result_in_one_task_lets_the_code_take_the_result(
    client: Client,
) -> None:
    activities = f"{QUEUE}-charges"
    async with Worker(client, task_queue=QUEUE, workflows=[Charge]):
        handle = await client.start_workflow(Charge, activities, id="charge", task_queue=QUEUE)

        async def scheduled() -> bool:
            return any(e["event_type"] == "ActivityTaskScheduled" for e in await handle.history())

        await eventually(scheduled)
    async with Worker(client, task_queue=activities, activities=[hands_in]):

        async def completed() -> bool:
            return any(e["event_type"] == "ActivityTaskCompleted" for e in await handle.history())

        await eventually(completed)
    await handle.cancel()
    async with Worker(client, task_queue=QUEUE, workflows=[Charge]):
        # before: the cancel landed at the first await, and the code never
        # learnt that the activity it was waiting on had completed
        assert await handle.result(timeout=30) == ["in", "canceled"]
