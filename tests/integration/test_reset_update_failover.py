"""The updates a reset re-applies wait outside history until a workflow task
takes them: a region the namespace moves to before then still has them."""

from __future__ import annotations

import asyncio

import pytest

from replication.failover import graceful_failover
from tests.conftest import RegionPair
from tests.helpers import eventually
from tests.integration.test_reset_updates import QUEUE, Gate
from worker import Client, Worker, workflow
from worker.errors import BatonError

pytestmark = pytest.mark.integration
NS = "reset-moves"


async def test_updates_a_reset_reapplied_survive_a_handover_before_a_task_took_them(
    regions: RegionPair,
) -> None:
    rs = regions
    async with await Client.connect([rs.a.url, rs.b.url], namespace=NS) as client:
        await client.create_namespace(NS, regions=[rs.a.name, rs.b.name], active_region=rs.a.name)
        async with Worker(client, task_queue=QUEUE, workflows=[Gate], max_cached_workflows=0):
            h = await client.start_workflow(Gate, 2, id="gate-moves", task_queue=QUEUE)
            await h.update(Gate.open, "ann", update_id="u-ann")
            await h.update(Gate.open, "bob", update_id="u-bob")
            assert await h.result(timeout=30) == ["ann", "bob"]
        # no worker runs: the new run's first task waits with both updates
        new_run = await h.reset(to="first-workflow-task", reason="replay, then move")

        async def replicated() -> bool:
            async with await Client.connect(rs.b.url, namespace=NS) as in_b:
                try:
                    events = await in_b.get_workflow_handle(h.id, run_id=new_run).history()
                except BatonError:
                    return False
                return any(e["event_type"] == "WorkflowTaskScheduled" for e in events[3:])

        await eventually(replicated, timeout=30, what="the reset run in region-b")
        await graceful_failover(rs.a.config, NS, rs.b.name, timeout_s=60)
        async with Worker(client, task_queue=QUEUE, workflows=[Gate], max_cached_workflows=0):
            reset = client.get_workflow_handle(h.id, run_id=new_run)
            # region-b's run takes both updates again, as region-a's would have
            assert await reset.result(timeout=30) == ["ann", "bob"]


@workflow.defn(name="Gate")
class StrictGate:
    """Gate whose validator refuses bob: a fix deployed after the reset."""

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

    @open.validator
    def check_open(self, name: str) -> None:
        if name == "bob":
            raise ValueError("bob may not open")


async def test_a_reapplied_update_the_reset_run_rejected_stays_rejected_after_a_handover(
    regions: RegionPair,
) -> None:
    rs = regions
    async with await Client.connect([rs.a.url, rs.b.url], namespace=NS) as client:
        await client.create_namespace(NS, regions=[rs.a.name, rs.b.name], active_region=rs.a.name)
        async with Worker(client, task_queue=QUEUE, workflows=[Gate], max_cached_workflows=0):
            h = await client.start_workflow(Gate, 2, id="gate-strict", task_queue=QUEUE)
            await h.update(Gate.open, "ann", update_id="u-ann")
            await h.update(Gate.open, "bob", update_id="u-bob")
            assert await h.result(timeout=30) == ["ann", "bob"]
        new_run = await h.reset(to="first-workflow-task", reason="replay under the fix")
        reset = client.get_workflow_handle(h.id, run_id=new_run)

        async def took_them() -> bool:
            kinds = [e["event_type"] for e in await reset.history()]
            return "WorkflowTaskCompleted" in kinds

        async with Worker(client, task_queue=QUEUE, workflows=[StrictGate], max_cached_workflows=0):
            await eventually(took_them, what="the reset run's first task")

        async def replicated() -> bool:
            async with await Client.connect(rs.b.url, namespace=NS) as in_b:
                events = await in_b.get_workflow_handle(h.id, run_id=new_run).history()
                return len(events) == len(await reset.history())

        await eventually(replicated, timeout=30, what="the reset run in region-b")
        await graceful_failover(rs.a.config, NS, rs.b.name, timeout_s=60)
        # region-b's workers run the old code again: bob, rejected, is not offered again
        async with Worker(client, task_queue=QUEUE, workflows=[Gate], max_cached_workflows=0):
            await reset.signal(Gate.poke)
            await asyncio.sleep(1.0)
            accepted = [
                e["attributes"]["update_id"]
                for e in await reset.history()
                if e["event_type"] == "WorkflowExecutionUpdateAccepted"
            ]
            assert accepted == ["u-ann"]
            await reset.terminate(reason="done")
