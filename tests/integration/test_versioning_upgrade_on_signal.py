"""A pinned run learns of its deployment's new build at the first workflow task
after the deploy that is not its first: the task a signal brings, say.

The usual pattern (as in Temporal) is a pinned workflow that waits for work
and, on each wake-up, checks ``workflow.info().target_version_changed`` and
continues as new with ``versioning="auto-upgrade"``. The flag was offered only
from a run's third workflow task on, so a run that woke once, on a signal,
after ``set-current`` never saw it and finished on the old build.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.helpers import eventually
from tests.versioning_helpers import registered
from worker import Client, Worker, workflow

pytestmark = pytest.mark.integration
QUEUE = "movers"


@workflow.defn(name="Mover", versioning_behavior="pinned")
class Mover:
    """Waits for a nudge; then moves to its deployment's new build if there is one."""

    def __init__(self) -> None:
        self.nudged = False

    @workflow.run
    async def run(self, generation: int) -> int:
        await workflow.wait_condition(lambda: self.nudged)
        if workflow.info().target_version_changed:
            workflow.continue_as_new(generation + 1, versioning="auto-upgrade")
        return generation

    @workflow.signal
    def nudge(self) -> None:
        self.nudged = True


def build(client: Client, build_id: str) -> Worker:
    return Worker(client, task_queue=QUEUE, workflows=[Mover], deployment=("shop", build_id))


async def describe(client: Client, wid: str) -> dict[str, Any]:
    return await client.get_workflow_handle(wid).describe()


async def test_a_pinned_run_woken_by_a_signal_after_a_deploy_sees_the_new_target(
    client: Client,
) -> None:
    async with build(client, "1"), build(client, "2"):
        await registered(client, "1", "2")
        await client.set_current_version("shop", "1")
        h = await client.start_workflow("Mover", 0, id="mover", task_queue=QUEUE)

        async def first_task_done() -> bool:
            d = await describe(client, "mover")
            return d["execution"]["build_id"] == "1" and not d["pending_workflow_task"]

        await eventually(first_task_done, timeout=20, what="the run's first task")
        await client.set_current_version("shop", "2")
        assert (await describe(client, "mover"))["versioning"]["target_version_changed"] is True
        await h.signal("nudge")

        async def continued() -> dict[str, Any] | None:
            d = await describe(client, "mover")
            if d["execution"]["status"] != "running" or d["execution"]["run_id"] == h.run_id:
                return d if d["execution"]["status"] != "running" else None
            return d if d["execution"]["build_id"] else None

        d = await eventually(continued, timeout=20, what="the run to move or close")
        assert d["execution"]["continued_from_run_id"] == h.run_id, d["execution"]
        assert (d["execution"]["build_id"], d["execution"]["versioning_behavior"]) == (
            "2",
            "pinned",
        )
        await client.get_workflow_handle("mover").signal("nudge")
        assert await client.get_workflow_handle("mover").result(timeout=20) == 1
