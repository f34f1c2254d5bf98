"""Reset re-applies the updates a run accepted after the reset point, as Temporal does."""

from __future__ import annotations

import asyncio

import pytest

from tests.helpers import eventually
from worker import Client, Worker, workflow

pytestmark = pytest.mark.integration
QUEUE = "reset-updates"


@workflow.defn
class Gate:
    """Waits for an update to name who opened it, and returns the names."""

    def __init__(self) -> None:
        self.names: list[str] = []

    @workflow.run
    async def run(self, wanted: int) -> list[str]:
        await workflow.wait_condition(lambda: len(self.names) >= wanted)
        return self.names

    @workflow.update
    def open(self, name: str) -> str:
        self.names.append(name)
        return f"opened by {name}"

    @workflow.update
    async def slow_open(self, name: str, seconds: float = 0.5) -> str:
        await workflow.sleep(seconds)
        self.names.append(name)
        return f"slowly opened by {name}"

    @workflow.signal
    def poke(self) -> None:
        pass


def gate_worker(client: Client) -> Worker:
    return Worker(client, task_queue=QUEUE, workflows=[Gate], max_cached_workflows=0)


async def test_a_reset_reapplies_the_updates_accepted_after_the_point(client: Client) -> None:
    async with gate_worker(client):
        h = await client.start_workflow(Gate, 2, id="gate-1", task_queue=QUEUE)
        assert await h.update(Gate.open, "ann", update_id="u-ann") == "opened by ann"
        assert await h.update(Gate.open, "bob", update_id="u-bob") == "opened by bob"
        assert await h.result(timeout=30) == ["ann", "bob"]
        new_run = await h.reset(to="first-workflow-task", reason="replay the gate")
        reset = client.get_workflow_handle("gate-1", run_id=new_run)
        # the new run takes both updates again, in the order they came, and finishes
        assert await reset.result(timeout=30) == ["ann", "bob"]
    accepted = [
        e["attributes"]["update_id"]
        for e in await reset.history()
        if e["event_type"] == "WorkflowExecutionUpdateAccepted"
    ]
    assert accepted == ["u-ann", "u-bob"]
    # an update retried with its id reaches the reapplied one, not a new one
    assert await reset.update(Gate.open, "x", update_id="u-bob") == "opened by bob"


async def test_a_reset_with_reapply_signals_or_none_leaves_the_updates_out(
    client: Client,
) -> None:
    async with gate_worker(client):
        for reapply in ("signals", "none"):
            h = await client.start_workflow(Gate, 1, id=f"gate-{reapply}", task_queue=QUEUE)
            await h.update(Gate.open, "ann", update_id="u-ann")
            assert await h.result(timeout=30) == ["ann"]
            new_run = await h.reset(to="first-workflow-task", reason="no updates", reapply=reapply)
            reset = client.get_workflow_handle(h.id, run_id=new_run)
            await asyncio.sleep(1.0)
            kinds = [e["event_type"] for e in await reset.history()]
            assert "WorkflowExecutionUpdateAccepted" not in kinds
            assert (await reset.describe())["execution"]["status"] == "running"
            await reset.terminate(reason="done")


async def test_a_caller_waiting_on_an_update_the_reset_reapplies_gets_its_new_outcome(
    client: Client,
) -> None:
    async with gate_worker(client):
        h = await client.start_workflow(Gate, 2, id="gate-6", task_queue=QUEUE)
        waiting = asyncio.create_task(h.update(Gate.slow_open, "ann", update_id="u-slow"))

        async def accepted() -> bool:
            return any(
                e["event_type"] == "WorkflowExecutionUpdateAccepted" for e in await h.history()
            )

        await eventually(accepted, interval=0.05, what="update accepted")
        await h.reset(to="first-workflow-task", reason="mid-update")
        # the caller's wait follows the update into the new run
        assert await asyncio.wait_for(waiting, 30) == "slowly opened by ann"
        await h.update(Gate.open, "bob", update_id="u-bob")
        assert await h.result(timeout=30) == ["ann", "bob"]


async def test_a_caller_waiting_on_an_update_the_kept_history_accepted_gets_its_outcome(
    client: Client,
) -> None:
    async with gate_worker(client):
        h = await client.start_workflow(Gate, 1, id="gate-7", task_queue=QUEUE)
        waiting = asyncio.create_task(h.update(Gate.slow_open, "ann", 3.0, update_id="u-slow"))

        async def kinds() -> list[str]:
            return [e["event_type"] for e in await h.history()]

        async def accepted() -> bool:
            return "WorkflowExecutionUpdateAccepted" in await kinds()

        async def poked() -> bool:
            return (await kinds()).count("WorkflowTaskCompleted") >= 3

        await eventually(accepted, interval=0.05, what="update accepted")
        # a task after the acceptance, while the handler sleeps: the reset keeps it
        await h.signal(Gate.poke)
        await eventually(poked, interval=0.05, what="the signal's task")
        await h.reset(to="last-workflow-task", reason="mid-handler")
        # the new run replays the acceptance and its handler completes the update
        assert await asyncio.wait_for(waiting, 30) == "slowly opened by ann"
        assert await h.result(timeout=30) == ["ann"]
