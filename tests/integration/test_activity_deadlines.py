"""An attempt the server timed out is stopped by its worker, so its retry
does not run beside it: start-to-close, schedule-to-close and heartbeat
timeouts, async and sync activities, on real PostgreSQL."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

import pytest

from tests.helpers import eventually
from worker import ActivityError, Client, RetryPolicy, Worker, activity, workflow

pytestmark = pytest.mark.integration
QUEUE = "deadlines"

#: What each workflow id's attempts did, in order (one worker process).
LOG: dict[str, list[str]] = {}


def note(what: str) -> None:
    info = activity.info()
    LOG.setdefault(info.workflow_id, []).append(f"{what} {info.attempt}")


@activity.defn
async def overruns(heartbeat_once: bool) -> str:
    """The first attempt runs past its timeouts without heartbeating; the second returns."""
    note("start")
    if activity.info().attempt > 1:
        return "second attempt"
    if heartbeat_once:
        activity.heartbeat("once")
    try:
        await asyncio.sleep(3)
    except asyncio.CancelledError:
        note("stopped")
        raise
    note("finished")  # beside the second attempt, which the server started already
    return "first attempt"


@activity.defn
def overruns_sync(heartbeat_once: bool) -> str:
    """As :func:`overruns`, on a thread: it can only look at ``is_cancelled()``."""
    note("start")
    if activity.info().attempt > 1:
        return "second attempt"
    if heartbeat_once:
        activity.heartbeat("once")
    end = time.monotonic() + 3
    while time.monotonic() < end:
        if activity.is_cancelled():
            note("stopped")
            return "stopped"
        time.sleep(0.05)
    note("finished")
    return "first attempt"


@workflow.defn
class Overrun:
    @workflow.run
    async def run(self, sync: bool, timeout: str) -> str:
        options: dict[str, timedelta] = {
            "start_to_close": {"start_to_close_timeout": timedelta(seconds=1)},
            "schedule_to_close": {"schedule_to_close_timeout": timedelta(seconds=1)},
            "heartbeat": {
                "start_to_close_timeout": timedelta(seconds=30),
                "heartbeat_timeout": timedelta(seconds=1),
            },
        }[timeout]
        try:
            result: str = await workflow.execute_activity(
                overruns_sync if sync else overruns,
                timeout == "heartbeat",
                retry_policy=RetryPolicy(initial_interval=timedelta(milliseconds=100)),
                **options,  # type: ignore[arg-type]
            )
        except ActivityError as err:
            return f"timed out ({err.retry_state})"
        return result


@pytest.mark.parametrize("sync", [False, True], ids=["async", "sync"])
@pytest.mark.parametrize("timeout", ["start_to_close", "schedule_to_close", "heartbeat"])
async def test_an_attempt_past_its_timeout_is_stopped_before_its_retry_runs_beside_it(
    client: Client, sync: bool, timeout: str
) -> None:
    # The server times the first attempt out after a second and starts the
    # second at once (or, past schedule-to-close, ends the activity); a worker
    # that let the first run on would do its work twice at the same time, or
    # for nobody (and a sync activity would never be told).
    wf_id = f"overrun-{timeout}-{'sync' if sync else 'async'}"
    async with Worker(
        client,
        task_queue=QUEUE,
        workflows=[Overrun],
        activities=[overruns, overruns_sync],
        graceful_shutdown_timeout=timedelta(seconds=10),
    ):
        handle = await client.start_workflow(Overrun, sync, timeout, id=wf_id, task_queue=QUEUE)
        expected = "timed out (timeout)" if timeout == "schedule_to_close" else "second attempt"
        assert await handle.result(timeout=30) == expected
        # past the first attempt's own end, had it run on
        await asyncio.sleep(3)
    log = LOG[wf_id]
    assert "finished 1" not in log, log
    assert "stopped 1" in log, log


#: When each attempt of ``late_attempt`` started and was stopped (monotonic).
TIMES: dict[str, float] = {}


@activity.defn
async def late_attempt() -> str:
    """The first attempt fails after 3 s; the second would run long past the deadline."""
    attempt = activity.info().attempt
    TIMES[f"start {attempt}"] = time.monotonic()
    if attempt == 1:
        await asyncio.sleep(3)
        raise RuntimeError("first attempt failed")
    try:
        await asyncio.sleep(8)
    except asyncio.CancelledError:
        TIMES["stopped 2"] = time.monotonic()
        raise
    return "second attempt"


@workflow.defn
class LateAttempt:
    @workflow.run
    async def run(self) -> str:
        try:
            result: str = await workflow.execute_activity(
                late_attempt,
                schedule_to_close_timeout=timedelta(seconds=5),
                retry_policy=RetryPolicy(initial_interval=timedelta(milliseconds=100)),
            )
        except ActivityError as err:
            return f"timed out ({err.retry_state})"
        return result


async def test_a_later_attempt_is_stopped_at_the_activitys_schedule_to_close_deadline(
    client: Client,
) -> None:
    # The deadline runs from the first schedule: the second attempt starts
    # with under two seconds of it left, not with the whole five.
    async with Worker(client, task_queue=QUEUE, workflows=[LateAttempt], activities=[late_attempt]):
        handle = await client.start_workflow(LateAttempt, id="late-attempt", task_queue=QUEUE)
        assert await handle.result(timeout=30) == "timed out (timeout)"

        async def stopped() -> bool:
            return "stopped 2" in TIMES

        await eventually(stopped, timeout=10, what="the second attempt stopped")
    assert TIMES["stopped 2"] - TIMES["start 2"] < 3.5, TIMES


#: ``activity.info()`` of each attempt of ``fails_once``.
INFOS: dict[int, activity.ActivityInfo] = {}


@activity.defn
async def fails_once() -> str:
    info = activity.info()
    INFOS[info.attempt] = info
    if info.attempt == 1:
        raise RuntimeError("first attempt failed")
    return "second attempt"


@workflow.defn
class FailsOnce:
    @workflow.run
    async def run(self) -> str:
        result: str = await workflow.execute_activity(
            fails_once,
            start_to_close_timeout=timedelta(seconds=20),
            schedule_to_close_timeout=timedelta(seconds=60),
            retry_policy=RetryPolicy(initial_interval=timedelta(milliseconds=500)),
        )
        return result


async def test_a_later_attempts_info_tells_the_first_schedule_and_its_own(
    client: Client,
) -> None:
    # As Temporal's activity info: scheduled_time is the first schedule (the
    # schedule-to-close deadline runs from it), current_attempt_scheduled_time
    # the attempt's own, and the timeouts are the configured ones.
    async with Worker(client, task_queue=QUEUE, workflows=[FailsOnce], activities=[fails_once]):
        handle = await client.start_workflow(FailsOnce, id="fails-once", task_queue=QUEUE)
        assert await handle.result(timeout=30) == "second attempt"
    first, second = INFOS[1], INFOS[2]
    assert first.scheduled_time == first.current_attempt_scheduled_time
    assert second.scheduled_time == first.scheduled_time, (first, second)
    backoff = second.current_attempt_scheduled_time - first.current_attempt_scheduled_time
    assert backoff >= timedelta(milliseconds=400), (first, second)
    assert second.started_time >= second.current_attempt_scheduled_time
    assert second.start_to_close_timeout == timedelta(seconds=20)
    assert second.schedule_to_close_timeout == timedelta(seconds=60)
