"""Workflows the pause tests stop and let go on."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

from tests.apps.versioned import step
from worker import RetryPolicy, activity, workflow

TIMEOUT = timedelta(seconds=10)


@workflow.defn
class Patient:
    """Starts a timer, takes two signals and an update: something to pause mid-flight."""

    def __init__(self) -> None:
        self.signals: list[str] = []
        self.timer_fired = False

    @workflow.run
    async def run(self, seconds: float) -> dict[str, object]:
        await workflow.sleep(timedelta(seconds=seconds))
        self.timer_fired = True
        await workflow.wait_condition(lambda: len(self.signals) >= 2)
        return {"signals": self.signals, "timer_fired": self.timer_fired}

    @workflow.signal
    def note(self, value: str) -> None:
        self.signals.append(value)

    @workflow.update
    def poke(self) -> str:
        return "poked"


@workflow.defn
class SelfPausing:
    """Pauses itself before its activity: the activity runs only after unpause."""

    @workflow.run
    async def run(self) -> str:
        workflow.pause("waiting for a human to check the order")
        return await workflow.execute_activity(
            step, "after the check", start_to_close_timeout=TIMEOUT
        )


@workflow.defn(name="Fragile", versioning_behavior="pinned")
class FragileV1:
    """Its second workflow task always fails: the bug a deploy brought."""

    @workflow.run
    async def run(self) -> str:
        await workflow.execute_activity(step, "one", start_to_close_timeout=TIMEOUT)
        raise RuntimeError("cannot parse the reply: a bug in build 1")


@workflow.defn(name="Fragile", versioning_behavior="pinned")
class FragileV2:
    """The fix, compatible with build 1's history."""

    @workflow.run
    async def run(self) -> str:
        await workflow.execute_activity(step, "one", start_to_close_timeout=TIMEOUT)
        return "fixed"


#: What the activities below saw, attempt by attempt (in-process workers only).
SEEN: list[dict[str, object]] = []
#: Flipped by a test: the downstream the activity calls is fixed.
DOWNSTREAM = {"fixed": False}


@activity.defn
async def long_call(name: str) -> str:
    """Heartbeats its progress; stops when it learns it is paused. An attempt that
    starts with an earlier attempt's progress finishes from there."""
    info = activity.info()
    if info.heartbeat_details:
        SEEN.append({"attempt": info.attempt, "resumed_from": info.heartbeat_details[0]})
        return f"{name} resumed from {info.heartbeat_details[0]}"
    for step_no in range(100):
        activity.heartbeat(f"step {step_no}")
        if info.paused:
            SEEN.append({"attempt": info.attempt, "saw_paused_at": step_no})
            raise RuntimeError("paused: stopping here")
        await asyncio.sleep(0.1)
    raise RuntimeError("never finished")


@activity.defn
async def downstream_call() -> str:
    SEEN.append({"attempt": activity.info().attempt, "fixed": DOWNSTREAM["fixed"]})
    if not DOWNSTREAM["fixed"]:
        raise RuntimeError("downstream is down")
    return "downstream answered"


@workflow.defn
class CallsOut:
    """One activity with the given retry policy."""

    @workflow.run
    async def run(self, which: str) -> str:
        if which == "long":
            return await workflow.execute_activity(
                long_call,
                "report",
                start_to_close_timeout=TIMEOUT * 3,
                heartbeat_timeout=timedelta(seconds=2),
                retry_policy=RetryPolicy(initial_interval=timedelta(milliseconds=200)),
            )
        return await workflow.execute_activity(
            downstream_call,
            start_to_close_timeout=TIMEOUT,
            retry_policy=RetryPolicy(
                initial_interval=timedelta(milliseconds=100),
                maximum_attempts=2,
                on_max_attempts="pause",
            ),
        )


@workflow.defn
class SlowFirstTask:
    """Its first workflow task takes 1.5 s of the worker's time (blocking, as a
    slow computation would), then schedules an activity: a task a pause can
    come in the middle of."""

    @workflow.run
    async def run(self) -> str:
        if not workflow.unsafe.is_replaying():
            time.sleep(1.5)  # noqa: ASYNC251  (the point: the task holds the worker)
        return await workflow.execute_activity(step, "after", start_to_close_timeout=TIMEOUT)


@workflow.defn
class SlowSelfPausing:
    """Its first workflow task takes 1.5 s and ends by pausing the run itself:
    an operator's pause can come before the workflow's own."""

    @workflow.run
    async def run(self) -> str:
        if not workflow.unsafe.is_replaying():
            time.sleep(1.5)  # noqa: ASYNC251  (the point: the task holds the worker)
        workflow.pause("the code's own check")
        return await workflow.execute_activity(step, "after", start_to_close_timeout=TIMEOUT)


@workflow.defn
class SlowLastTask:
    """Its only workflow task takes 1.5 s and completes the run: a pause that
    comes meanwhile waits behind the close."""

    @workflow.run
    async def run(self) -> str:
        if not workflow.unsafe.is_replaying():
            time.sleep(1.5)  # noqa: ASYNC251  (the point: the task holds the worker)
        return "done"


@workflow.defn
class PausesThenContinues:
    """Pauses itself and continues-as-new in the same task: the pause holds the
    next generation, whose code never asked for it."""

    @workflow.run
    async def run(self, generation: int) -> int:
        if generation == 0:
            workflow.pause("check before the next generation")
            workflow.continue_as_new(1)
        return generation
