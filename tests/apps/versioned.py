"""Workflows the worker-versioning tests deploy as builds of one deployment.

Each build is a set of classes registered under the same type names: what
changed between builds is what a blue-green deploy changes.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from worker import activity, workflow

TIMEOUT = timedelta(seconds=10)


@activity.defn
async def step(name: str) -> str:
    return f"did {name}"


@activity.defn
async def other_step(name: str) -> str:
    return f"did other {name}"


@workflow.defn(name="Order", versioning_behavior="pinned")
class OrderV1:
    """One step, waits for ``go``, another step: pinned to where it started."""

    def __init__(self) -> None:
        self.go = False

    @workflow.run
    async def run(self, n: int) -> str:
        await workflow.execute_activity(step, f"{n}-a", start_to_close_timeout=TIMEOUT)
        await workflow.wait_condition(lambda: self.go)
        await workflow.execute_activity(step, f"{n}-b", start_to_close_timeout=TIMEOUT)
        return "v1"

    @workflow.signal
    def proceed(self) -> None:
        self.go = True

    @workflow.query
    def waiting(self) -> bool:
        return not self.go


@workflow.defn(name="Order", versioning_behavior="pinned")
class OrderV2(OrderV1):
    """The new build: a different second step (incompatible with v1's history)."""

    @workflow.run
    async def run(self, n: int) -> str:
        await workflow.execute_activity(step, f"{n}-a", start_to_close_timeout=TIMEOUT)
        await workflow.wait_condition(lambda: self.go)
        await workflow.execute_activity(other_step, f"{n}-b", start_to_close_timeout=TIMEOUT)
        return "v2"


@workflow.defn(name="Flow", versioning_behavior="auto-upgrade")
class FlowV1:
    """Takes ``next`` signals until ``stop``, one activity each: auto-upgrade."""

    #: The activity each item runs (what an incompatible build changes).
    work: Any = step

    def __init__(self) -> None:
        self.pending: list[str] = []
        self.stop = False

    @workflow.run
    async def run(self) -> list[str]:
        done: list[str] = []
        while True:
            await workflow.wait_condition(lambda: bool(self.pending) or self.stop)
            if not self.pending:
                return done
            item = self.pending.pop(0)
            done.append(
                await workflow.execute_activity(
                    type(self).work, item, start_to_close_timeout=TIMEOUT
                )
            )

    @workflow.signal
    def next(self, item: str) -> None:
        self.pending.append(item)

    @workflow.signal
    def finish(self) -> None:
        self.stop = True


@workflow.defn(name="Flow", versioning_behavior="auto-upgrade")
class FlowV2(FlowV1):
    """Compatible with v1: the same commands for the same signals."""


@workflow.defn(name="Flow", versioning_behavior="auto-upgrade")
class FlowV2Bad(FlowV1):
    """Incompatible with v1: another activity for each item."""

    work = other_step


@workflow.defn(name="Long", versioning_behavior="pinned")
class Long:
    """A long-lived pinned workflow: each ``tick`` is a unit of work; it moves to
    its deployment's new build at its next continue-as-new when there is one."""

    def __init__(self) -> None:
        self.ticks = 0
        self.stop = False

    @workflow.run
    async def run(self, generation: int) -> int:
        while True:
            await workflow.wait_condition(lambda: self.ticks > 0 or self.stop)
            if self.stop:
                return generation
            self.ticks -= 1
            await workflow.execute_activity(
                step, f"gen-{generation}", start_to_close_timeout=TIMEOUT
            )
            if workflow.info().target_version_changed:
                workflow.continue_as_new(generation + 1, versioning="auto-upgrade")

    @workflow.signal
    def tick(self) -> None:
        self.ticks += 1

    @workflow.signal
    def finish(self) -> None:
        self.stop = True


V1 = [OrderV1, FlowV1, Long]
V2 = [OrderV2, FlowV2, Long]
V2_BAD = [OrderV2, FlowV2Bad, Long]
ACTIVITIES = [step, other_step]
