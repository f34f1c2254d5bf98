"""Workflows the pause tests stop and let go on."""

from __future__ import annotations

from datetime import timedelta

from tests.apps.versioned import step
from worker import workflow

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
