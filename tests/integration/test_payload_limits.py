"""Outcomes over the server's payload limit end in a typed failure, never in retries:
a workflow's result fails the run, an update's result fails the update (its
rejection rejects it), an activity's result or failure fails the activity
without another attempt, a query's answer fails the query at once."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from ops.pg import PgCluster
from store import db
from tests.conftest import Region, default_namespace_client, one_region
from worker import (
    ActivityError,
    AesGcmCodec,
    ApplicationError,
    Client,
    DataConverter,
    RetryPolicy,
    Worker,
    WorkflowFailureError,
    activity,
    workflow,
)
from worker.codec import generate_key
from worker.errors import QueryFailedError, UpdateFailedError, UpdateRejectedError

pytestmark = pytest.mark.integration
QUEUE = "payload-limits"
LIMIT = 64 * 1024
#: Over the payload limit but within the body limit: the server's payload walk refuses it.
OVER = 100_000
#: Over the body limit (4 x LIMIT + 1 MiB) too: refused before the body is parsed.
FAR_OVER = 2_000_000

#: Attempts of ``big_result`` run in this process, by workflow id.
ATTEMPTS: list[str] = []


@pytest.fixture
async def small_region(pg: PgCluster, template_db: str, tmp_path: Path) -> AsyncIterator[Region]:
    async with one_region(pg, template_db, tmp_path, max_payload_bytes=LIMIT) as r:
        yield r


@pytest.fixture
async def small_client(small_region: Region) -> AsyncIterator[Client]:
    async with default_namespace_client(small_region) as c:
        yield c


@activity.defn(name="limits_big_result")
async def big_result(size: int) -> str:
    ATTEMPTS.append(activity.info().workflow_id)
    return "x" * size


@workflow.defn(name="LimitsBigResult")
class BigResult:
    @workflow.run
    async def run(self, size: int) -> str:
        return "y" * size

    @workflow.query
    def asked(self) -> str:
        return "answered"


@workflow.defn(name="LimitsBigActivity")
class BigActivity:
    @workflow.run
    async def run(self, size: int) -> dict[str, Any]:
        try:
            await workflow.execute_activity(
                big_result, size, start_to_close_timeout=timedelta(seconds=10)
            )
        except ActivityError as err:
            cause = err.__cause__
            assert isinstance(cause, ApplicationError)
            return {"type": cause.type, "non_retryable": cause.non_retryable, "message": str(cause)}
        return {"type": None}


@activity.defn(name="limits_big_failure")
async def big_failure(size: int, where: str) -> str:
    ATTEMPTS.append(activity.info().workflow_id)
    if where == "message":
        raise ApplicationError("m" * size, type="Big")
    raise ApplicationError("small message", "d" * size, type="Big")


@workflow.defn(name="LimitsBigFailure")
class BigFailure:
    @workflow.run
    async def run(self, size: int, where: str) -> dict[str, Any]:
        try:
            await workflow.execute_activity(
                big_failure, size, where, start_to_close_timeout=timedelta(seconds=30)
            )
        except ActivityError as err:
            cause = err.__cause__
            assert isinstance(cause, ApplicationError)
            return {
                "type": cause.type,
                "non_retryable": cause.non_retryable,
                "message": str(cause),
                "retry_state": err.retry_state,
            }
        return {"type": None}


@activity.defn(name="limits_big_heartbeat")
async def big_heartbeat(size: int) -> str:
    ATTEMPTS.append(activity.info().workflow_id)
    activity.heartbeat("h" * size)
    await asyncio.sleep(30)  # long work, believing its progress saved
    return "worked"


@workflow.defn(name="LimitsBigHeartbeat")
class BigHeartbeat:
    @workflow.run
    async def run(self, size: int) -> dict[str, Any]:
        try:
            await workflow.execute_activity(
                big_heartbeat,
                size,
                start_to_close_timeout=timedelta(seconds=60),
                retry_policy=RetryPolicy(initial_interval=timedelta(milliseconds=100)),
            )
        except ActivityError as err:
            cause = err.__cause__
            assert isinstance(cause, ApplicationError)
            return {
                "type": cause.type,
                "non_retryable": cause.non_retryable,
                "message": str(cause),
                "retry_state": err.retry_state,
            }
        return {"type": None}


@workflow.defn(name="LimitsLongLived")
class LongLived:
    def __init__(self) -> None:
        self.stop = False

    @workflow.run
    async def run(self) -> str:
        await workflow.wait_condition(lambda: self.stop)
        return "finished"

    @workflow.update
    def report(self, size: int) -> str:
        return "u" * size

    @workflow.update
    def checked(self, size: int) -> str:
        return "accepted"

    @checked.validator
    def refuse(self, size: int) -> None:
        if size:
            raise ValueError("r" * size)

    @workflow.query
    def dump(self, size: int) -> str:
        return "q" * size

    @workflow.signal
    def halt(self) -> None:
        self.stop = True


def kinds(events: list[dict[str, Any]]) -> list[str]:
    return [e["event_type"] for e in events]


def says_size_and_limit(message: str, length: int | None = None) -> None:
    """``message`` names the limit, and the size of a JSON string of ``length``."""
    assert f"over the server's payload limit of {LIMIT} bytes" in message
    if length is not None:
        assert f" is {length + 2} bytes" in message  # the string's JSON: its quotes


@pytest.mark.parametrize("size", [OVER, FAR_OVER], ids=["payload-walk", "body-limit"])
async def test_a_workflow_result_over_the_limit_fails_the_run(
    small_client: Client, size: int
) -> None:
    async with Worker(small_client, task_queue=QUEUE, workflows=[BigResult]):
        handle = await small_client.start_workflow(
            BigResult, size, id=f"big-result-{size}", task_queue=QUEUE
        )
        with pytest.raises(WorkflowFailureError) as failed:
            await handle.result(timeout=20)
        # The closed run replays with the failure in place of its result.
        assert await handle.query("asked") == "answered"
    cause = failed.value.__cause__
    assert isinstance(cause, ApplicationError)
    assert cause.type == "PayloadTooLarge" and cause.non_retryable
    says_size_and_limit(cause.message, size)
    assert (await handle.describe())["execution"]["status"] == "failed"
    events = kinds(await handle.history())
    assert "WorkflowTaskFailed" not in events
    assert events[-1] == "WorkflowExecutionFailed"


@pytest.mark.parametrize("speculative", [True, False], ids=["run-ahead", "plain"])
async def test_an_activity_result_over_the_limit_fails_the_activity_for_good(
    small_client: Client, speculative: bool
) -> None:
    workflow_id = f"big-activity-{speculative}"
    async with Worker(
        small_client,
        task_queue=QUEUE,
        workflows=[BigActivity],
        activities=[big_result],
        speculative_workflow_tasks=speculative,
    ):
        # the default retry policy retries without end: only a non-retryable failure stops it
        handle = await small_client.start_workflow(
            BigActivity, OVER, id=workflow_id, task_queue=QUEUE
        )
        outcome = await handle.result(timeout=20)
    assert outcome["type"] == "PayloadTooLarge" and outcome["non_retryable"]
    says_size_and_limit(outcome["message"], OVER)
    assert "not retried" in outcome["message"]
    assert ATTEMPTS.count(workflow_id) == 1


@pytest.mark.parametrize("where", ["message", "details"])
async def test_an_activity_failure_over_the_limit_fails_the_activity_for_good(
    small_client: Client, where: str
) -> None:
    # The refused report left the attempt unreported: it waited out its
    # start-to-close timeout, and so did every retry, which failed alike.
    workflow_id = f"big-failure-{where}"
    async with Worker(
        small_client, task_queue=QUEUE, workflows=[BigFailure], activities=[big_failure]
    ):
        handle = await small_client.start_workflow(
            BigFailure, OVER, where, id=workflow_id, task_queue=QUEUE
        )
        outcome = await handle.result(timeout=20)
    assert outcome["type"] == "PayloadTooLarge" and outcome["non_retryable"]
    assert outcome["retry_state"] == "non_retryable_failure"
    says_size_and_limit(outcome["message"])
    assert "the activity's failure is" in outcome["message"]
    assert ATTEMPTS.count(workflow_id) == 1


async def test_heartbeat_details_over_the_limit_fail_the_activity_for_good(
    small_client: Client,
) -> None:
    # The refused heartbeat failed the attempt as retryable: every attempt
    # sent the same details, and the activity was retried without end.
    workflow_id = "big-heartbeat"
    async with Worker(
        small_client, task_queue=QUEUE, workflows=[BigHeartbeat], activities=[big_heartbeat]
    ):
        handle = await small_client.start_workflow(
            BigHeartbeat, OVER, id=workflow_id, task_queue=QUEUE
        )
        outcome = await handle.result(timeout=20)
    assert outcome["type"] == "PayloadTooLarge" and outcome["non_retryable"]
    assert outcome["retry_state"] == "non_retryable_failure"
    assert "heartbeat details were refused" in outcome["message"]
    says_size_and_limit(outcome["message"])
    assert f"they are {OVER + 2} bytes" in outcome["message"]
    assert ATTEMPTS.count(workflow_id) == 1


async def test_an_update_result_over_the_limit_fails_the_update_and_the_run_goes_on(
    small_client: Client,
) -> None:
    async with Worker(small_client, task_queue=QUEUE, workflows=[LongLived]):
        handle = await small_client.start_workflow(LongLived, id="long-lived", task_queue=QUEUE)
        began = time.monotonic()
        with pytest.raises(UpdateFailedError) as failed:
            await handle.update("report", OVER, timeout=10)
        assert time.monotonic() - began < 5  # the failure, not the timeout
        assert await handle.update("report", 3) == "uuu"
        await handle.signal("halt")
        assert await handle.result(timeout=20) == "finished"
    says_size_and_limit(str(failed.value), OVER)
    cause = failed.value.__cause__
    assert isinstance(cause, ApplicationError) and cause.type == "PayloadTooLarge"
    events = kinds(await handle.history())
    assert "WorkflowTaskFailed" not in events
    assert events.count("WorkflowExecutionUpdateCompleted") == 2


async def test_an_update_rejection_over_the_limit_rejects_the_update_and_the_run_goes_on(
    small_client: Client,
) -> None:
    # The refused completion failed the workflow task, and every retry
    # rejected the update again: the run never moved on.
    async with Worker(small_client, task_queue=QUEUE, workflows=[LongLived]):
        handle = await small_client.start_workflow(LongLived, id="big-reject", task_queue=QUEUE)
        began = time.monotonic()
        with pytest.raises(UpdateRejectedError) as rejected:
            await handle.update("checked", OVER, timeout=10)
        assert time.monotonic() - began < 5  # the rejection, not the timeout
        assert await handle.update("checked", 0) == "accepted"
        await handle.signal("halt")
        assert await handle.result(timeout=20) == "finished"
    says_size_and_limit(str(rejected.value))
    assert "the rejection of update" in str(rejected.value)
    cause = rejected.value.__cause__
    assert isinstance(cause, ApplicationError) and cause.type == "PayloadTooLarge"
    assert "WorkflowTaskFailed" not in kinds(await handle.history())


async def test_a_query_answer_over_the_limit_fails_the_query_at_once(
    small_client: Client,
) -> None:
    async with Worker(small_client, task_queue=QUEUE, workflows=[LongLived]):
        handle = await small_client.start_workflow(LongLived, id="big-answer", task_queue=QUEUE)
        began = time.monotonic()
        with pytest.raises(QueryFailedError) as failed:
            await handle.query("dump", OVER, timeout=10)
        assert time.monotonic() - began < 5  # not the query's whole timeout
        assert await handle.query("dump", 2) == "qq"
        await handle.terminate("done")
    says_size_and_limit(str(failed.value), OVER)
    assert "query 'dump'" in str(failed.value)


async def test_under_a_codec_the_failure_text_is_encoded_and_the_run_replays(
    small_region: Region,
) -> None:
    codec = AesGcmCodec(keys={"k1": generate_key()}, active_key_id="k1")
    async with await Client.connect(
        small_region.url, data_converter=DataConverter(codec=codec)
    ) as client:
        await client.create_namespace("default")
        async with Worker(client, task_queue=QUEUE, workflows=[BigResult]):
            handle = await client.start_workflow(
                BigResult, OVER, id="big-result-codec", task_queue=QUEUE
            )
            with pytest.raises(WorkflowFailureError) as failed:
                await handle.result(timeout=20)
            assert await handle.query("asked") == "answered"
    cause = failed.value.__cause__
    assert isinstance(cause, ApplicationError) and cause.type == "PayloadTooLarge"
    says_size_and_limit(cause.message)  # the encrypted size, over OVER
    conn = await db.connect(small_region.dsn)
    try:
        failure = await conn.fetchval(
            "SELECT attributes->'failure' FROM history_events "
            "WHERE workflow_id = $1 AND event_type = 'WorkflowExecutionFailed'",
            "big-result-codec",
        )
    finally:
        await conn.close()
    assert failure["type"] == "PayloadTooLarge"  # readable: replay matches on it
    assert failure["message"] == "Encoded failure"
