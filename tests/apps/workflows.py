"""Workflows and activities the integration and end-to-end tests run."""

from __future__ import annotations

import asyncio
import os
from datetime import timedelta
from typing import Any

from worker import activity, workflow

T10 = timedelta(seconds=10)


def _log(line: str) -> None:
    # Tests read this file to count how often each activity really ran.
    path = os.environ.get("BATON_TEST_ACTIVITY_LOG")
    if path:
        with open(path, "a") as fh:
            fh.write(line + "\n")
            fh.flush()
            os.fsync(fh.fileno())


@activity.defn
async def step(x: int) -> int:
    return x + 1


@activity.defn
async def echo(value: Any) -> Any:
    return value


@activity.defn
async def logged_step(tag: str, x: int, seconds: float) -> int:
    """Logs its start and end; sleeps in between (the window a crash test aims at)."""
    _log(f"start {tag}")
    await asyncio.sleep(seconds)
    _log(f"done {tag}")
    return x + 1


@activity.defn
async def activity_a() -> str:
    return "a"


@activity.defn
async def activity_b() -> str:
    return "b"


@workflow.defn
class ThreeSteps:
    """The benchmark workflow: three no-op activities."""

    @workflow.run
    async def run(self, n: int) -> int:
        x = n
        for _ in range(3):
            x = await workflow.execute_activity(step, x, start_to_close_timeout=T10)
        return x


@workflow.defn
class Pipeline:
    """Three activities, a durable timer and a signal."""

    def __init__(self) -> None:
        self.approved_by: str | None = None
        self.stage = "starting"

    @workflow.run
    async def run(self, n: int) -> dict[str, Any]:
        self.stage = "step-1"
        a = await workflow.execute_activity(step, n, start_to_close_timeout=T10)
        self.stage = "step-2"
        b = await workflow.execute_activity(step, a, start_to_close_timeout=T10)
        self.stage = "sleeping"
        await workflow.sleep(timedelta(seconds=1))
        self.stage = "waiting-for-approval"
        await workflow.wait_condition(lambda: self.approved_by is not None)
        self.stage = "step-3"
        c = await workflow.execute_activity(step, b, start_to_close_timeout=T10)
        self.stage = "done"
        return {"value": c, "approved_by": self.approved_by}

    @workflow.signal
    async def approve(self, who: str) -> None:
        self.approved_by = who

    @workflow.query
    def current_stage(self) -> str:
        return self.stage


@workflow.defn(name="Crashable")
class Crashable:
    """Three logged activities; a test kills the worker during the second."""

    @workflow.run
    async def run(self, seconds: float) -> int:
        x = 0
        for i in range(1, 4):
            x = await workflow.execute_activity(
                logged_step,
                f"step-{i}",
                x,
                seconds,
                start_to_close_timeout=timedelta(seconds=seconds + 3),
            )
        await workflow.sleep(timedelta(seconds=0.5))
        return x


@workflow.defn(name="Buggy")
class BuggyV1:
    """Raises at step 2: a bug, not a failure of the workflow."""

    @workflow.run
    async def run(self, n: int) -> int:
        x = await workflow.execute_activity(step, n, start_to_close_timeout=T10)
        if x > 0:
            raise RuntimeError("bug at step 2: division by zero in the pricing code")
        return x


@workflow.defn(name="Buggy")
class BuggyV2:
    """The same workflow with the bug fixed."""

    @workflow.run
    async def run(self, n: int) -> int:
        x = await workflow.execute_activity(step, n, start_to_close_timeout=T10)
        x = await workflow.execute_activity(step, x, start_to_close_timeout=T10)
        return x


@workflow.defn(name="Ordered")
class OrderedV1:
    def __init__(self) -> None:
        self.go = False

    @workflow.run
    async def run(self) -> str:
        a = await workflow.execute_activity(activity_a, start_to_close_timeout=T10)
        await workflow.wait_condition(lambda: self.go)
        b = await workflow.execute_activity(activity_b, start_to_close_timeout=T10)
        return a + b

    @workflow.signal
    def proceed(self) -> None:
        self.go = True


@workflow.defn(name="Ordered")
class OrderedV2:
    """The same workflow with its two activities swapped: not replay-safe."""

    def __init__(self) -> None:
        self.go = False

    @workflow.run
    async def run(self) -> str:
        b = await workflow.execute_activity(activity_b, start_to_close_timeout=T10)
        await workflow.wait_condition(lambda: self.go)
        a = await workflow.execute_activity(activity_a, start_to_close_timeout=T10)
        return a + b

    @workflow.signal
    def proceed(self) -> None:
        self.go = True


@workflow.defn(name="Chain")
class Chain:
    """Continues as new until ``i`` reaches ``n``."""

    @workflow.run
    async def run(self, i: int, n: int) -> str:
        x = await workflow.execute_activity(step, i, start_to_close_timeout=T10)
        if i < n:
            workflow.continue_as_new(x, n)
        return f"done after {i} continue-as-new runs"


@workflow.defn(name="Secret")
class Secret:
    """Carries a secret through an activity, a signal and its result."""

    def __init__(self) -> None:
        self.note: str | None = None

    @workflow.run
    async def run(self, secret: str) -> str:
        echoed = await workflow.execute_activity(echo, secret, start_to_close_timeout=T10)
        await workflow.wait_condition(lambda: self.note is not None)
        return f"{echoed}|{self.note}"

    @workflow.signal
    def add_note(self, note: str) -> None:
        self.note = note


@workflow.defn(name="Sleeper")
class Sleeper:
    """Activities around a durable timer: survives a server restart."""

    @workflow.run
    async def run(self, n: int, seconds: float) -> int:
        x = await workflow.execute_activity(step, n, start_to_close_timeout=T10)
        await workflow.sleep(timedelta(seconds=seconds))
        x = await workflow.execute_activity(step, x, start_to_close_timeout=T10)
        return x


@workflow.defn(name="Noted")
class Noted:
    """An activity, a durable timer, an activity; collects `note` signals on the way."""

    def __init__(self) -> None:
        self.notes: list[str] = []

    @workflow.run
    async def run(self, n: int, seconds: float) -> dict[str, Any]:
        x = await workflow.execute_activity(step, n, start_to_close_timeout=T10)
        await workflow.sleep(timedelta(seconds=seconds))
        x = await workflow.execute_activity(step, x, start_to_close_timeout=T10)
        return {"value": x, "notes": self.notes}

    @workflow.signal
    def note(self, text: str) -> None:
        self.notes.append(text)


@workflow.defn(name="Steps")
class Steps:
    """``count`` activities of ``pause`` seconds each, one after another."""

    @workflow.run
    async def run(self, count: int, pause: float) -> int:
        x = 0
        for _ in range(count):
            x = await workflow.execute_activity(
                logged_step, "steps", x, pause, start_to_close_timeout=T10
            )
        return x


@activity.defn
async def patient(rounds: int) -> dict[str, Any]:
    """Heartbeats its progress each round; a new attempt resumes from the last one."""
    info = activity.info()
    resumed_from = int(info.heartbeat_details[0]) if info.heartbeat_details else 0
    for i in range(resumed_from, rounds):
        activity.heartbeat(i + 1)
        await asyncio.sleep(0.2)
    return {"attempt": info.attempt, "resumed_from": resumed_from}


@workflow.defn(name="Patient")
class Patient:
    """One long activity that heartbeats."""

    @workflow.run
    async def run(self, rounds: int) -> dict[str, Any]:
        return dict(
            await workflow.execute_activity(
                patient, rounds, start_to_close_timeout=timedelta(seconds=120)
            )
        )


ALL_WORKFLOWS = [
    ThreeSteps,
    Pipeline,
    Crashable,
    BuggyV2,
    OrderedV1,
    Chain,
    Secret,
    Sleeper,
    Noted,
    Steps,
    Patient,
]
ALL_ACTIVITIES = [step, echo, logged_step, activity_a, activity_b, patient]


@activity.defn
async def flaky(fail_times: int) -> dict[str, Any]:
    """Fails its first attempts; heartbeats its attempt so the next one sees it."""
    info = activity.info()
    activity.heartbeat(f"attempt-{info.attempt}")
    await asyncio.sleep(0.3)  # let the heartbeat reach the server
    if info.attempt <= fail_times:
        raise RuntimeError(f"flaky failure on attempt {info.attempt}")
    return {"attempt": info.attempt, "previous": list(info.heartbeat_details)}


@activity.defn
async def always_bad() -> None:
    from worker import ApplicationError

    raise ApplicationError("card declined", type="CardDeclined")


@workflow.defn(name="Retrying")
class Retrying:
    @workflow.run
    async def run(self, fail_times: int) -> dict[str, Any]:
        from worker import RetryPolicy

        return await workflow.execute_activity(  # type: ignore[no-any-return]
            flaky,
            fail_times,
            start_to_close_timeout=T10,
            heartbeat_timeout=T10,
            retry_policy=RetryPolicy(
                initial_interval=timedelta(milliseconds=100), maximum_attempts=5
            ),
        )


@workflow.defn(name="NonRetryable")
class NonRetryable:
    @workflow.run
    async def run(self) -> str:
        from worker import ActivityError, RetryPolicy

        try:
            await workflow.execute_activity(
                always_bad,
                start_to_close_timeout=T10,
                retry_policy=RetryPolicy(non_retryable_error_types=["CardDeclined"]),
            )
        except ActivityError as err:
            return f"gave up: {err.__cause__}"
        return "unexpected"


@workflow.defn(name="Counter")
class Counter:
    """Takes updates (validated) and stops on a signal."""

    def __init__(self) -> None:
        self.value = 0
        self.done = False

    @workflow.run
    async def run(self) -> int:
        await workflow.wait_condition(lambda: self.done)
        return self.value

    @workflow.update
    async def add(self, by: int) -> int:
        self.value += by
        return self.value

    @add.validator
    def _check_add(self, by: int) -> None:
        if by < 0:
            raise ValueError("only positive increments")

    @workflow.signal
    def finish(self) -> None:
        self.done = True

    @workflow.query
    def current(self) -> int:
        return self.value


ALL_WORKFLOWS += [Retrying, NonRetryable, Counter]
ALL_ACTIVITIES += [flaky, always_bad]


@activity.defn
async def stalls_once() -> dict[str, Any]:
    """Heartbeats, then hangs on its first attempt; a later attempt finishes."""
    info = activity.info()
    if info.attempt == 1:
        activity.heartbeat("progress-1")
        await asyncio.sleep(0.2)
        activity.heartbeat("progress-2")
        await asyncio.sleep(30)  # stops heartbeating: the heartbeat timeout fires
    return {"attempt": info.attempt, "resumed_from": list(info.heartbeat_details)}


@activity.defn
async def never_finishes() -> None:
    await asyncio.sleep(60)


@workflow.defn(name="Timeouts")
class Timeouts:
    @workflow.run
    async def run(self) -> dict[str, Any]:
        from worker import ActivityError

        resumed = await workflow.execute_activity(
            stalls_once,
            start_to_close_timeout=timedelta(seconds=20),
            heartbeat_timeout=timedelta(seconds=1),
        )
        try:
            await workflow.execute_activity(
                never_finishes,
                schedule_to_close_timeout=timedelta(seconds=2),
                start_to_close_timeout=timedelta(seconds=10),
            )
            budget = "finished"
        except ActivityError as err:
            budget = f"{type(err.__cause__).__name__}: {err.__cause__}"
        try:
            await workflow.execute_activity(
                never_finishes,
                task_queue="nobody-polls-this",
                start_to_close_timeout=timedelta(seconds=5),
                schedule_to_start_timeout=timedelta(seconds=1),
                retry_policy=None,
            )
            queue = "finished"
        except ActivityError as err:
            queue = f"{type(err.__cause__).__name__}: {err.__cause__}"
        return {"resumed": resumed, "budget": budget, "queue": queue}


ALL_WORKFLOWS += [Timeouts]
ALL_ACTIVITIES += [stalls_once, never_finishes]
