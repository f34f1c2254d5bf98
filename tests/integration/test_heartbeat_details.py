"""Heartbeat details the worker cannot send: the attempt fails with the reason."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import pytest

from worker import (
    ActivityError,
    Client,
    RetryPolicy,
    Worker,
    WorkflowFailureError,
    activity,
    workflow,
)
from worker.errors import TimeoutError_

pytestmark = pytest.mark.integration
QUEUE = "heartbeat-details"


@activity.defn
async def saves_progress(kind: str) -> str:
    info = activity.info()
    if info.attempt == 1:
        activity.heartbeat(object() if kind == "object" else float("nan"))
        await asyncio.sleep(60)  # long work, believing its progress saved
    return f"attempt {info.attempt}"


@workflow.defn(name="SavesProgress")
class SavesProgress:
    @workflow.run
    async def run(self, kind: str) -> str:
        return await workflow.execute_activity(
            saves_progress,
            kind,
            start_to_close_timeout=timedelta(seconds=90),
            retry_policy=RetryPolicy(initial_interval=timedelta(milliseconds=100)),
        )


@pytest.mark.parametrize("kind", ["object", "nan"])
async def test_an_attempt_whose_heartbeat_details_cannot_be_sent_fails_saying_why(
    client: Client, kind: str
) -> None:
    """Regression: the heartbeat was dropped with a log warning and the attempt
    worked on, its progress saved nowhere, until its timeout ended it with no
    word of the reason. Temporal's SDK fails such an attempt with the error."""
    async with Worker(
        client, task_queue=QUEUE, workflows=[SavesProgress], activities=[saves_progress]
    ):
        handle = await client.start_workflow(
            SavesProgress, kind, id=f"hb-{kind}-{uuid.uuid4().hex[:6]}", task_queue=QUEUE
        )
        assert await handle.result(timeout=30) == "attempt 2"
    started = [e for e in await handle.history() if e["event_type"] == "ActivityTaskStarted"]
    failure = started[-1]["attributes"]["last_failure"]
    assert failure["type"] == "InvalidArgumentError"
    assert "heartbeat details were refused" in failure["message"]


@activity.defn
async def heartbeats_then_hangs() -> str:
    activity.heartbeat("page", 7)
    await asyncio.sleep(60)
    return "finished"


@workflow.defn(name="LetsTheTimeoutOut")
class LetsTheTimeoutOut:
    @workflow.run
    async def run(self) -> str:
        return await workflow.execute_activity(
            heartbeats_then_hangs,
            start_to_close_timeout=timedelta(seconds=60),
            heartbeat_timeout=timedelta(seconds=1),
            retry_policy=RetryPolicy(maximum_attempts=1),
        )


async def test_a_heartbeat_timeout_the_workflow_fails_with_keeps_its_details(
    client: Client,
) -> None:
    """Regression: the workflow's code saw the last heartbeat's details on the
    ``TimeoutError_``, but the failure it closed with dropped them, so the
    client (and `baton workflow describe`) had none to resume from; Temporal's
    failure converter keeps them."""
    async with Worker(
        client,
        task_queue=QUEUE,
        workflows=[LetsTheTimeoutOut],
        activities=[heartbeats_then_hangs],
    ):
        handle = await client.start_workflow(
            LetsTheTimeoutOut, id=f"hb-timeout-{uuid.uuid4().hex[:6]}", task_queue=QUEUE
        )
        with pytest.raises(WorkflowFailureError) as err:
            await handle.result(timeout=30)
    activity_error = err.value.cause
    assert isinstance(activity_error, ActivityError)
    timeout = activity_error.cause
    assert isinstance(timeout, TimeoutError_)
    assert timeout.timeout_type == "heartbeat"
    assert timeout.last_heartbeat_details == ("page", 7)
    described = (await handle.describe())["failure"]["cause"]
    assert [p["data"] for p in described["last_heartbeat_details"]] == ["InBhZ2Ui", "Nw=="]
