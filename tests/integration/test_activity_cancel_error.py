"""What workflow code awaiting an activity sees once the activity is cancelled,
as a Temporal user expects it: an ``ActivityError`` whose cause is a
``CanceledError`` (also an ``asyncio.CancelledError``), when its
``cancellation_type`` says, on real PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest

from tests.helpers import eventually
from worker import (
    ActivityError,
    CanceledError,
    Client,
    Worker,
    WorkflowFailureError,
    WorkflowHandle,
    activity,
    workflow,
)
from worker.workflow import ActivityCancellationType

pytestmark = pytest.mark.integration
QUEUE = "activity-cancel-error"

#: Activities that learned of their cancel, and cleanups that ran.
SEEN: list[str] = []


@activity.defn
async def heartbeats_until_cancelled() -> str:
    try:
        while True:
            activity.heartbeat()
            await asyncio.sleep(0.2)
    except asyncio.CancelledError:
        SEEN.append(f"cancelled {activity.info().workflow_id}")
        raise


@activity.defn
async def stops_slowly() -> str:
    """Takes a while to stop once it learns of its cancel."""
    wf_id = activity.info().workflow_id
    try:
        while True:
            activity.heartbeat()
            await asyncio.sleep(0.2)
    except asyncio.CancelledError:
        await asyncio.sleep(1.0)
        SEEN.append(f"stopped {wf_id}")
        raise


@activity.defn
async def runs_on(seconds: float) -> str:
    await asyncio.sleep(seconds)
    SEEN.append(f"ran on {activity.info().workflow_id}")
    return "done"


@activity.defn
async def clean_up(what: str) -> str:
    SEEN.append(f"cleaned {what}")
    return what


def started(seconds: float = 60) -> dict[str, timedelta]:
    return {
        "start_to_close_timeout": timedelta(seconds=seconds),
        "heartbeat_timeout": timedelta(seconds=2),
    }


def described(err: ActivityError) -> dict[str, object]:
    return {
        "activity_type": err.activity_type,
        "retry_state": err.retry_state,
        "cause": type(err.cause).__name__,
        "is_cancellation": isinstance(err, asyncio.CancelledError),
    }


@workflow.defn
class CatchesActivityError:
    """Cancelled while it waits on its activity, it cleans up and returns (as in Temporal)."""

    @workflow.run
    async def run(self) -> dict[str, object]:
        try:
            await workflow.execute_activity(heartbeats_until_cancelled, **started())
        except ActivityError as err:
            assert isinstance(err.cause, CanceledError)
            await workflow.execute_activity(
                clean_up, workflow.info().workflow_id, start_to_close_timeout=timedelta(seconds=10)
            )
            return described(err)
        return {}


@workflow.defn
class CancelsItsActivity:
    @workflow.run
    async def run(self) -> dict[str, object]:
        handle = workflow.start_activity(heartbeats_until_cancelled, **started())
        await workflow.sleep(0.5)
        handle.cancel()
        try:
            await handle
        except ActivityError as err:
            return described(err)
        return {}


@workflow.defn
class TimesOutItsActivity:
    """``asyncio.timeout()`` around an activity still gives its ``TimeoutError``."""

    @workflow.run
    async def run(self) -> str:
        try:
            async with asyncio.timeout(0.5):
                await workflow.execute_activity(heartbeats_until_cancelled, **started())
        except TimeoutError:
            return "timed out"
        return "finished"


@workflow.defn
class WaitsForTheCancel:
    """Cleans up only once its activity has stopped (WAIT_CANCELLATION_COMPLETED)."""

    @workflow.run
    async def run(self, catch: bool) -> str:
        try:
            await workflow.execute_activity(
                stops_slowly,
                cancellation_type=ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
                **started(),
            )
        except ActivityError as err:
            if not catch:
                raise
            assert isinstance(err.cause, CanceledError)
            await workflow.execute_activity(
                clean_up, workflow.info().workflow_id, start_to_close_timeout=timedelta(seconds=10)
            )
            return err.retry_state
        return "finished"


@workflow.defn
class AbandonsItsActivity:
    @workflow.run
    async def run(self) -> str:
        handle = workflow.start_activity(
            runs_on,
            1.5,
            start_to_close_timeout=timedelta(seconds=30),
            cancellation_type=ActivityCancellationType.ABANDON,
        )
        await workflow.sleep(0.3)
        handle.cancel()
        try:
            await handle
        except ActivityError as err:
            assert isinstance(err.cause, CanceledError)
            return "abandoned"
        return "finished"


@workflow.defn
class WaitsForAnUnstartedCancel:
    """Cancels an activity no worker took (waited for), in its scheduling task or later."""

    @workflow.run
    async def run(self, delay: float) -> str:
        handle = workflow.start_activity(
            clean_up,
            "never",
            task_queue="nobody-polls-this",
            start_to_close_timeout=timedelta(seconds=10),
            cancellation_type=ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
        )
        if delay:
            await workflow.sleep(delay)
        handle.cancel()
        try:
            await handle
        except ActivityError as err:
            return err.retry_state
        return "finished"


def worker(client: Client) -> Worker:
    return Worker(
        client,
        task_queue=QUEUE,
        workflows=[
            CatchesActivityError,
            CancelsItsActivity,
            TimesOutItsActivity,
            WaitsForTheCancel,
            AbandonsItsActivity,
            WaitsForAnUnstartedCancel,
        ],
        activities=[heartbeats_until_cancelled, stops_slowly, runs_on, clean_up],
    )


async def activity_started(handle: WorkflowHandle) -> None:
    async def running() -> bool:
        pending = (await handle.describe())["pending_activities"]
        return bool(pending) and pending[0]["state"] == "started"

    await eventually(running, what="the activity started")


async def test_a_workflow_cancelled_on_an_activity_catches_activity_error(client: Client) -> None:
    SEEN.clear()
    async with worker(client):
        handle = await client.start_workflow(
            CatchesActivityError, id="catches-activity-error", task_queue=QUEUE
        )
        await activity_started(handle)
        await handle.cancel("stop")
        # the code caught it, cleaned up and returned: the run completes, as in Temporal
        assert await handle.result(timeout=30) == {
            "activity_type": "heartbeats_until_cancelled",
            "retry_state": "cancel_requested",
            "cause": "CanceledError",
            "is_cancellation": True,
        }
        await eventually(
            lambda: asyncio.sleep(0, "cancelled catches-activity-error" in SEEN),
            what="the activity learned of its cancel",
        )
    assert "cleaned catches-activity-error" in SEEN


async def test_cancelling_an_activity_handle_raises_activity_error(client: Client) -> None:
    async with worker(client):
        result = await client.execute_workflow(
            CancelsItsActivity, id="cancels-its-activity", task_queue=QUEUE
        )
    assert result == {
        "activity_type": "heartbeats_until_cancelled",
        "retry_state": "cancel_requested",
        "cause": "CanceledError",
        "is_cancellation": True,
    }


async def test_asyncio_timeout_around_an_activity_still_times_out(client: Client) -> None:
    async with worker(client):
        result = await client.execute_workflow(
            TimesOutItsActivity, id="times-out-its-activity", task_queue=QUEUE
        )
    assert result == "timed out"


async def test_wait_cancellation_completed_raises_once_the_activity_stopped(
    client: Client,
) -> None:
    SEEN.clear()
    async with worker(client):
        handle = await client.start_workflow(
            WaitsForTheCancel, True, id="waits-for-the-cancel", task_queue=QUEUE
        )
        await activity_started(handle)
        await handle.cancel()

        async def asked_to_cancel() -> dict[str, Any] | None:
            pending = (await handle.describe())["pending_activities"]
            return pending[0] if pending and pending[0]["cancel_requested"] else None

        # describe tells a running attempt asked to cancel from one that was not
        pending = await eventually(asked_to_cancel, what="the cancel request recorded")
        assert pending["state"] == "started"
        assert await handle.result(timeout=30) == "cancel_requested"
    # the cleanup ran after the activity had stopped, not beside it
    assert SEEN == ["stopped waits-for-the-cancel", "cleaned waits-for-the-cancel"]
    kinds = [e["event_type"] for e in await handle.history()]
    assert kinds.index("ActivityTaskCanceled") < kinds.index("ActivityTaskScheduled", 6)


async def test_a_run_cancelled_on_a_waited_cancel_closes_after_its_activity(
    client: Client,
) -> None:
    SEEN.clear()
    async with worker(client):
        handle = await client.start_workflow(
            WaitsForTheCancel, False, id="waits-then-canceled", task_queue=QUEUE
        )
        await activity_started(handle)
        await handle.cancel()
        with pytest.raises(WorkflowFailureError) as err:
            await handle.result(timeout=30)
    assert err.value.status == "canceled"
    assert SEEN == ["stopped waits-then-canceled"]
    kinds = [e["event_type"] for e in await handle.history()]
    assert kinds.index("ActivityTaskCanceled") < kinds.index("WorkflowExecutionCanceled")


async def test_an_abandoned_activity_is_not_asked_to_cancel(client: Client) -> None:
    SEEN.clear()
    async with worker(client):
        handle = await client.start_workflow(
            AbandonsItsActivity, id="abandons-its-activity", task_queue=QUEUE
        )
        assert await handle.result(timeout=30) == "abandoned"
        await eventually(
            lambda: asyncio.sleep(0, "ran on abandons-its-activity" in SEEN),
            what="the abandoned activity ran on",
        )
    kinds = [e["event_type"] for e in await handle.history()]
    assert "ActivityTaskCancelRequested" not in kinds


@pytest.mark.parametrize("delay", [0.0, 0.3])
async def test_a_waited_cancel_of_an_activity_no_worker_took_completes(
    client: Client, delay: float
) -> None:
    """Regression: the server closed such an activity as canceled in the
    workflow's own completion and scheduled no workflow task to tell it (as
    Temporal does), so code waiting for the cancel waited for ever."""
    async with worker(client):
        result = await client.execute_workflow(
            WaitsForAnUnstartedCancel,
            delay,
            id=f"waits-unstarted-{delay}",
            task_queue=QUEUE,
            run_timeout=timedelta(seconds=20),
        )
    assert result == "cancel_requested"
