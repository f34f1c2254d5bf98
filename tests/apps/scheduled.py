"""Workflows that schedules start in the tests: one that finishes, one that
holds until released, one that fails."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from worker import workflow
from worker.errors import ApplicationError


@workflow.defn
class Report:
    """Finishes at once with what it was given and when it was scheduled."""

    @workflow.run
    async def run(self, label: str) -> dict[str, Any]:
        return {"label": label, "scheduled": workflow.search_attributes().get("ScheduledStartTime")}


@workflow.defn
class Hold:
    """Runs until signalled ``release`` (or cancelled)."""

    def __init__(self) -> None:
        self.released = False

    @workflow.run
    async def run(self, label: str) -> str:
        await workflow.wait_condition(lambda: self.released)
        return label

    @workflow.signal
    def release(self) -> None:
        self.released = True


@workflow.defn
class Breaks:
    """Fails its run: a schedule with pause_on_failure pauses."""

    @workflow.run
    async def run(self, label: str) -> str:
        raise ApplicationError(f"{label} broke", non_retryable=True)


@workflow.defn
class QuickWait:
    """Starts a timer and cancels it in the same task, then sleeps two minutes."""

    @workflow.run
    async def run(self) -> str:
        await workflow.wait_condition(lambda: True, timeout=timedelta(seconds=60))
        await workflow.sleep(timedelta(minutes=2))
        return "slept"


WORKFLOWS = [Report, Hold, Breaks]
