"""Reset re-applies the updates a run accepted after the reset point, as Temporal does."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest

from tests.helpers import eventually
from worker import Client, Worker, activity, workflow

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


@workflow.defn
class Relay:
    """Collects notes; its first run continues as new, with them, on ``go``."""

    def __init__(self) -> None:
        self.notes: list[str] = []
        self.go = False
        self.done = False

    @workflow.run
    async def run(self, generation: int, notes: list[str]) -> list[str]:
        self.notes = notes + self.notes
        if generation == 0:
            await workflow.wait_condition(lambda: self.go)
            workflow.continue_as_new(1, self.notes)
        await workflow.wait_condition(lambda: self.done)
        return self.notes

    @workflow.signal
    def note(self, text: str) -> None:
        self.notes.append(text)

    @workflow.signal
    def advance(self) -> None:
        self.go = True

    @workflow.signal
    def finish(self) -> None:
        self.done = True


async def test_a_run_that_continued_as_new_is_reset_and_the_current_run_terminated(
    client: Client,
) -> None:
    async with Worker(client, task_queue=QUEUE, workflows=[Relay], max_cached_workflows=0):
        h = await client.start_workflow(Relay, 0, [], id="relay-1", task_queue=QUEUE)
        first_run = h.run_id
        assert first_run is not None
        await h.signal(Relay.note, "a")
        await h.signal(Relay.advance)

        async def second_run() -> str | None:
            run = (await client.get_workflow_handle("relay-1").describe())["execution"]
            return run["run_id"] if run["run_id"] != first_run else None

        current = await eventually(second_run, what="the continued run")
        await client.get_workflow_handle("relay-1").signal(Relay.note, "b")
        # as in Temporal, the run before the continue-as-new can be reset
        base = client.get_workflow_handle("relay-1", run_id=first_run)
        new_run = await base.reset(to="first-workflow-task", reason="redo the relay")
        terminated = await client.get_workflow_handle("relay-1", run_id=current).describe()
        assert terminated["execution"]["status"] == "terminated"
        assert terminated["execution"]["continued_to_run_id"] == new_run
        # the signals of both runs come again, and the chain goes on from there

        async def continued_again() -> bool:
            run = (await client.get_workflow_handle("relay-1").describe())["execution"]
            return bool(run["continued_from_run_id"] == new_run)

        await eventually(continued_again, what="the reset run's continue-as-new")
        await client.get_workflow_handle("relay-1").signal(Relay.finish)
        assert await client.get_workflow_handle("relay-1").result(timeout=30) == ["a", "b"]
        reset = client.get_workflow_handle("relay-1", run_id=new_run)
        names = [
            e["attributes"]["signal_name"]
            for e in await reset.history()
            if e["event_type"] == "WorkflowExecutionSignaled"
        ]
        assert names == ["note", "advance", "note"]


async def test_a_batch_reset_resets_only_the_current_run_of_a_chain(client: Client) -> None:
    async with Worker(client, task_queue=QUEUE, workflows=[Relay], max_cached_workflows=0):
        h = await client.start_workflow(Relay, 0, [], id="relay-2", task_queue=QUEUE)
        first_run = h.run_id
        await h.signal(Relay.advance)

        async def continued() -> bool:
            run = (await client.get_workflow_handle("relay-2").describe())["execution"]
            return bool(run["run_id"] != first_run)

        await eventually(continued, what="the continued run")
        # the query matches both runs; resetting the first would end the second
        await client.start_batch(
            "WorkflowId = 'relay-2'",
            "reset",
            reason="redo",
            params={"to": "first-workflow-task"},
            job_id="reset-chain",
        )

        async def done() -> dict[str, Any] | None:
            d = await client.describe_batch("reset-chain")
            return d if d["state"] != "running" else None

        d = await eventually(done, timeout=60, interval=0.5, what="the reset batch")
        assert (d["state"], d["done"], d["skipped"], d["failed"]) == ("completed", 1, 1, 0), d
        runs = [e async for e in client.list_workflows("WorkflowId = 'relay-2'")]
        assert sorted(r.status for r in runs) == ["continued_as_new", "running", "terminated"]


@workflow.defn(name="Wedged")
class WedgedV1:
    """Its first task wedges (a bad deploy), so no update is ever taken."""

    @workflow.run
    async def run(self) -> list[str]:
        raise RuntimeError("bad deploy")

    @workflow.update
    def open(self, name: str) -> str:
        return name


@workflow.defn(name="Wedged")
class WedgedV2:
    def __init__(self) -> None:
        self.names: list[str] = []

    @workflow.run
    async def run(self) -> list[str]:
        await workflow.wait_condition(lambda: bool(self.names))
        return self.names

    @workflow.update
    def open(self, name: str) -> str:
        self.names.append(name)
        return f"opened by {name}"


async def test_an_update_a_wedged_run_never_took_goes_on_in_the_reset_run(
    client: Client,
) -> None:
    async with Worker(client, task_queue=QUEUE, workflows=[WedgedV1], max_cached_workflows=0):
        h = await client.start_workflow("Wedged", id="wedged-1", task_queue=QUEUE)

        async def wedged() -> bool:
            return any(e["event_type"] == "WorkflowTaskFailed" for e in await h.history())

        await eventually(wedged, what="the wedged task")
        waiting = asyncio.create_task(h.update("open", "ann", update_id="u-ann", timeout=60))
        await asyncio.sleep(1.0)
        assert not waiting.done()
    # the fixed code is deployed, and the run reset onto it
    await h.reset(to="first-workflow-task", reason="fixed deploy")
    async with Worker(client, task_queue=QUEUE, workflows=[WedgedV2], max_cached_workflows=0):
        assert await asyncio.wait_for(waiting, 30) == "opened by ann"
        assert await client.get_workflow_handle("wedged-1").result(timeout=30) == ["ann"]


@activity.defn
async def echo_id(value: str) -> str:
    return value


@workflow.defn
class DrawsIds:
    """Draws an id, hands it to an activity, and draws another after a signal."""

    def __init__(self) -> None:
        self.go = False
        self.drawn: list[str] = []

    @workflow.run
    async def run(self) -> dict[str, str]:
        first = str(workflow.uuid4())
        self.drawn.append(first)
        echoed = await workflow.execute_activity(
            echo_id, first, start_to_close_timeout=timedelta(seconds=10)
        )
        await workflow.wait_condition(lambda: self.go)
        second = str(workflow.uuid4())
        self.drawn.append(second)
        return {"first": first, "echoed": echoed, "second": second}

    @workflow.signal
    def release(self) -> None:
        self.go = True

    @workflow.query
    def ids(self) -> list[str]:
        return self.drawn


async def test_a_reset_run_replays_the_ids_its_kept_history_drew(client: Client) -> None:
    """The kept events replay with the random seed of the run that wrote them,
    so an id drawn before the point (and handed to an activity) is the same
    id in the new run; after the point the new run draws its own, as
    Temporal reseeds at a reset."""
    async with Worker(
        client,
        task_queue=QUEUE,
        workflows=[DrawsIds],
        activities=[echo_id],
        max_cached_workflows=0,
    ):
        h = await client.start_workflow(DrawsIds, id="draws-1", task_queue=QUEUE)

        async def waiting() -> bool:
            kinds = [e["event_type"] for e in await h.history()]
            return kinds.count("WorkflowTaskCompleted") >= 2

        await eventually(waiting, what="the activity's result taken")
        await h.signal(DrawsIds.release)
        before = await h.result(timeout=30)
        assert before["first"] == before["echoed"]
        # back to the task that took the activity's result, before the signal
        completed = [
            e["event_id"] for e in await h.history() if e["event_type"] == "WorkflowTaskCompleted"
        ]
        new_run = await h.reset(event_id=completed[1], reason="again", reapply="none")
        reset = client.get_workflow_handle("draws-1", run_id=new_run)

        async def reset_waiting() -> list[str] | None:
            ids = await reset.query(DrawsIds.ids)
            return ids if ids else None

        assert await eventually(reset_waiting, what="the reset run") == [before["first"]]
        await reset.signal(DrawsIds.release)
        after = await reset.result(timeout=30)
        # the id the activity was handed is the one the new run's code holds
        assert after["first"] == after["echoed"] == before["first"]
        assert after["second"] != before["second"]
        # and every replay of the new run draws the same
        assert await reset.query(DrawsIds.ids) == [after["first"], after["second"]]
