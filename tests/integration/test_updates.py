"""Updates whose run closes before they complete, on real PostgreSQL."""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.helpers import eventually
from worker import Client, Worker, workflow
from worker.errors import UpdateFailedError, UpdateRejectedError

pytestmark = pytest.mark.integration
QUEUE = "updates"


@workflow.defn
class Waits:
    """Takes updates that sleep on a durable timer, and runs until told."""

    def __init__(self) -> None:
        self.done = False

    @workflow.run
    async def run(self) -> None:
        await workflow.wait_condition(lambda: self.done)

    @workflow.update
    async def sleep(self, seconds: float) -> str:
        await workflow.sleep(seconds)
        return "slept"

    @workflow.signal
    def finish(self) -> None:
        self.done = True


@workflow.defn
class Renews:
    """Counts updates; a signal makes its first run continue as new."""

    def __init__(self) -> None:
        self.renew = False
        self.count = 0

    @workflow.run
    async def run(self, generation: int) -> None:
        await workflow.wait_condition(lambda: self.renew or generation > 0)
        if generation == 0:
            workflow.continue_as_new(1)
        await workflow.wait_condition(lambda: False)

    @workflow.update
    def bump(self) -> str:
        self.count += 1
        return f"{workflow.info().run_id}/{self.count}"

    @workflow.signal
    def renew_now(self) -> None:
        self.renew = True


def worker_for(client: Client) -> Worker:
    return Worker(client, task_queue=QUEUE, workflows=[Waits, Renews])


async def accepted(client: Client, workflow_id: str, update_id: str) -> None:
    """Wait until the update's acceptance is in the run's history."""
    handle = client.get_workflow_handle(workflow_id)
    for _ in range(100):
        for e in await handle.history():
            if (
                e["event_type"] == "WorkflowExecutionUpdateAccepted"
                and e["attributes"]["update_id"] == update_id
            ):
                return
        await asyncio.sleep(0.1)
    raise AssertionError(f"update {update_id} never accepted")


async def test_a_terminated_run_answers_its_waiting_update_at_once(client: Client) -> None:
    async with worker_for(client):
        handle = await client.start_workflow(Waits, id="upd-term", task_queue=QUEUE)
        waiting = asyncio.create_task(handle.update("sleep", 600.0, update_id="u1", timeout=30))
        await accepted(client, "upd-term", "u1")
        started = time.monotonic()
        await handle.terminate("enough")
        # before: the update was rejected in the terminate's write, but its
        # caller was told only when its own 30 s ran out
        with pytest.raises(UpdateFailedError, match="terminated"):
            await asyncio.wait_for(waiting, 10)
        assert time.monotonic() - started < 5


async def test_a_run_that_times_out_answers_its_waiting_update(client: Client) -> None:
    async with worker_for(client):
        handle = await client.start_workflow(Waits, id="upd-rto", task_queue=QUEUE, run_timeout=3)
        started = time.monotonic()
        # before: the run timed out with the update still accepted, and each
        # call, however often repeated, ran out as UpdateTimedOutError
        with pytest.raises(UpdateFailedError, match="timed_out"):
            await handle.update("sleep", 600.0, update_id="u1", timeout=20)
        assert time.monotonic() - started < 10
        with pytest.raises(UpdateFailedError, match="timed_out"):
            await handle.update("sleep", 600.0, update_id="u1", timeout=5)


async def test_an_accepted_update_its_run_left_unfinished_failed_one_never_taken_was_rejected(
    client: Client,
) -> None:
    handle = await client.start_workflow(Waits, id="upd-kinds", task_queue=QUEUE)
    # no worker yet: this one is requested, never taken
    never = asyncio.create_task(handle.update("sleep", 600.0, update_id="never", timeout=30))
    await asyncio.sleep(0.5)
    async with worker_for(client):
        taken = asyncio.create_task(handle.update("sleep", 600.0, update_id="taken", timeout=30))
        await accepted(client, "upd-kinds", "taken")
        await accepted(client, "upd-kinds", "never")
    # the worker is gone: "late" waits, requested, for a task nobody runs
    third = asyncio.create_task(handle.update("sleep", 600.0, update_id="late", timeout=30))
    await asyncio.sleep(0.5)
    await handle.terminate("enough")
    # before: all three were UpdateRejectedError, "nothing was recorded",
    # though the first two were accepted in history and their handlers ran
    with pytest.raises(UpdateFailedError, match="terminated"):
        await asyncio.wait_for(taken, 10)
    with pytest.raises(UpdateFailedError, match="terminated"):
        await asyncio.wait_for(never, 10)
    with pytest.raises(UpdateRejectedError, match="terminated"):
        await asyncio.wait_for(third, 10)


async def test_an_update_id_an_earlier_run_completed_runs_again_after_continue_as_new(
    client: Client,
) -> None:
    async with worker_for(client):
        handle = await client.start_workflow(Renews, 0, id="upd-can", task_queue=QUEUE)
        first_run = handle.run_id
        assert await handle.update("bump", update_id="u1") == f"{first_run}/1"
        # a retry in the same run is the same update
        assert await handle.update("bump", update_id="u1") == f"{first_run}/1"
        await handle.signal("renew_now")
        current = client.get_workflow_handle("upd-can")
        for _ in range(100):
            execution = (await current.describe())["execution"]
            if execution["run_id"] != first_run:
                break
            await asyncio.sleep(0.1)
        second_run = execution["run_id"]
        assert second_run != first_run
        # before: the id matched the first run's update and its result came
        # back; Temporal dedupes update ids per run, so the new run takes it
        assert await handle.update("bump", update_id="u1") == f"{second_run}/1"
        assert await handle.update("bump", update_id="u1") == f"{second_run}/1"
        # the first run still answers its own update by that id
        old = client.get_workflow_handle("upd-can", run_id=first_run)
        assert await old.update("bump", update_id="u1") == f"{first_run}/1"
        await handle.terminate("done")


@workflow.defn
class Drains:
    """Returns once told to, but not before its update handlers have returned."""

    def __init__(self) -> None:
        self.done = False
        self.total = 0

    @workflow.run
    async def run(self) -> int:
        await workflow.wait_condition(lambda: self.done and workflow.all_handlers_finished())
        return self.total

    @workflow.update
    async def add(self, k: int) -> int:
        await workflow.sleep(1)
        self.total += k
        return self.total

    @workflow.signal
    def finish(self) -> None:
        self.done = True


async def test_a_run_waits_for_its_update_handlers_with_all_handlers_finished(
    client: Client,
) -> None:
    """As in Temporal, ``workflow.all_handlers_finished()`` says whether an
    update (or async signal) handler is still running, so a run can let one
    in flight finish before it returns."""
    async with Worker(client, task_queue=QUEUE, workflows=[Drains], max_cached_workflows=0):
        h = await client.start_workflow(Drains, id="drains", task_queue=QUEUE)
        update = asyncio.create_task(h.update(Drains.add, 5, update_id="add-5"))

        async def accepted() -> bool:
            return any(
                e["event_type"] == "WorkflowExecutionUpdateAccepted" for e in await h.history()
            )

        await eventually(accepted, what="the update accepted")
        await h.signal(Drains.finish)
        assert await h.result(timeout=30) == 5
        assert await update == 5
