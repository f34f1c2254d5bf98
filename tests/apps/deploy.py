"""Three deploys of one workflow type: the original, a bad one, and the fix.

The bad deploy changes the second step without a patch, so every run that
already took the original second step fails replay with a non-determinism
error (the run is wedged: its workflow task fails again and again). The fix
keeps the new second step; runs are reset to before the task that took the
old one and finish on the fixed code.
"""

from __future__ import annotations

from typing import Any

from worker import activity, workflow


@activity.defn
async def step(name: str) -> str:
    return name


class _Deploy:
    second = "two"

    def __init__(self) -> None:
        self.signals: list[str] = []

    @workflow.run
    async def run(self) -> dict[str, Any]:
        a = await workflow.execute_activity(step, "one", start_to_close_timeout=10)
        b = await workflow.execute_activity(
            step, self.second, start_to_close_timeout=10, activity_id=f"step-{self.second}"
        )
        await workflow.wait_condition(lambda: "go" in self.signals)
        return {"steps": [a, b], "signals": self.signals}

    @workflow.signal
    def note(self, value: str) -> None:
        self.signals.append(value)


@workflow.defn(name="Deploy")
class DeployV1(_Deploy):
    second = "two"


@workflow.defn(name="Deploy")
class DeployV2Bad(_Deploy):
    second = "two-v2"  # no patch: runs that took "two" cannot replay


@workflow.defn(name="Deploy")
class DeployV3Fixed(_Deploy):
    second = "two-v2"
