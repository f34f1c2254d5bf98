"""@workflow.defn(failure_exception_types=[...]), as in Temporal: those exceptions fail the run."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.helpers import eventually
from worker import Client, NonDeterminismError, Worker, WorkflowFailureError, activity, workflow
from worker.errors import UpdateFailedError

pytestmark = pytest.mark.integration
QUEUE = "failure-types"


class OutOfStock(Exception):
    pass


@workflow.defn(failure_exception_types=[OutOfStock])
class Reserve:
    def __init__(self) -> None:
        self.bad_signal = False

    @workflow.run
    async def run(self, what: str) -> str:
        if what == "gone":
            raise OutOfStock(f"no {what} left")
        if what == "bug":
            raise KeyError(what)  # not listed: a bug, the task fails and retries
        await workflow.wait_condition(lambda: self.bad_signal)
        return "unreachable"

    @workflow.signal
    def restock(self) -> None:
        raise OutOfStock("restock failed")

    @workflow.update
    async def reserve_more(self, n: int) -> int:
        raise OutOfStock(f"cannot reserve {n} more")


async def test_a_listed_exception_fails_the_run_and_others_fail_the_task(client: Client) -> None:
    async with Worker(client, task_queue=QUEUE, workflows=[Reserve]):
        gone = await client.start_workflow(Reserve, "gone", id="reserve-gone", task_queue=QUEUE)
        with pytest.raises(WorkflowFailureError) as caught:
            await gone.result(timeout=20)
        assert caught.value.status == "failed"
        assert caught.value.cause is not None
        assert caught.value.cause.type == "OutOfStock"
        assert "no gone left" in str(caught.value.cause)

        handled = await client.start_workflow(Reserve, "ok", id="reserve-signal", task_queue=QUEUE)
        # from an update handler it fails the update, as in Temporal; the run goes on
        with pytest.raises(UpdateFailedError, match="cannot reserve 3 more"):
            await handled.execute_update(Reserve.reserve_more, 3)
        assert (await handled.describe())["execution"]["status"] == "running"
        await handled.signal(Reserve.restock)
        with pytest.raises(WorkflowFailureError) as from_handler:
            await handled.result(timeout=20)
        assert from_handler.value.cause is not None
        assert from_handler.value.cause.type == "OutOfStock"

        bug = await client.start_workflow(Reserve, "bug", id="reserve-bug", task_queue=QUEUE)

        async def task_failed() -> bool:
            task = (await bug.describe()).get("pending_workflow_task") or {}
            return bool(task.get("last_failure"))

        await eventually(task_failed, timeout=20, what="the bug's workflow task failing")
        assert (await bug.describe())["execution"]["status"] == "running"


def test_failure_exception_types_must_be_exception_classes() -> None:
    for bad in ("OutOfStock", [OutOfStock, "x"], [int], OutOfStock, 5):
        with pytest.raises(TypeError, match="failure_exception_types"):

            @workflow.defn(name=f"Bad{id(bad)}", failure_exception_types=bad)  # type: ignore[arg-type]
            class Bad:
                @workflow.run
                async def run(self) -> None:
                    pass


@workflow.defn
class Plain:
    @workflow.run
    async def run(self) -> None:
        raise OutOfStock("from a workflow that lists nothing")


async def test_a_worker_lists_failure_types_for_all_its_workflows(client: Client) -> None:
    async with Worker(
        client, task_queue=QUEUE, workflows=[Plain], workflow_failure_exception_types=[OutOfStock]
    ):
        handle = await client.start_workflow(Plain, id="plain-1", task_queue=QUEUE)
        with pytest.raises(WorkflowFailureError) as caught:
            await handle.result(timeout=20)
    assert caught.value.cause is not None
    assert caught.value.cause.type == "OutOfStock"


def test_a_worker_refuses_failure_types_that_are_not_exception_classes(client: Client) -> None:
    for bad in ("OutOfStock", [dict], OutOfStock, 5):
        with pytest.raises(TypeError, match="workflow_failure_exception_types"):
            Worker(
                client,
                task_queue=QUEUE,
                workflows=[Plain],
                workflow_failure_exception_types=bad,  # type: ignore[arg-type]
            )


@activity.defn
async def pick(item: str) -> str:
    return item


class Drifting:
    def __init__(self) -> None:
        self.go = False

    @workflow.signal
    def proceed(self) -> None:
        self.go = True


@workflow.defn(name="Drift")
class DriftV1(Drifting):
    @workflow.run
    async def run(self) -> str:
        got = await workflow.execute_activity(
            pick, "a", start_to_close_timeout=timedelta(seconds=10)
        )
        await workflow.wait_condition(lambda: self.go)
        return got


@workflow.defn(name="Drift", failure_exception_types=[NonDeterminismError])
class DriftV2(Drifting):
    @workflow.run
    async def run(self) -> str:
        # "fixed" code that no longer matches the history of runs already started
        got = await workflow.execute_activity(
            "other", "b", start_to_close_timeout=timedelta(seconds=10)
        )
        await workflow.wait_condition(lambda: self.go)
        return str(got)


async def test_listed_non_determinism_fails_the_run_instead_of_its_task(client: Client) -> None:
    async with Worker(client, task_queue=QUEUE, workflows=[DriftV1], activities=[pick]):
        handle = await client.start_workflow(DriftV1, id="drift-1", task_queue=QUEUE)

        async def picked() -> bool:
            events = await handle.history()
            return any(e["event_type"] == "ActivityTaskCompleted" for e in events)

        await eventually(picked, timeout=20, what="the first activity's result")
    async with Worker(client, task_queue=QUEUE, workflows=[DriftV2], max_cached_workflows=0):
        await handle.signal(DriftV1.proceed)
        with pytest.raises(WorkflowFailureError) as caught:
            await handle.result(timeout=20)
    assert caught.value.status == "failed"
    assert caught.value.cause is not None
    assert caught.value.cause.type == "NonDeterminismError"
    assert "non-determinism" in str(caught.value.cause)
    kinds = [e["event_type"] for e in await handle.history()]
    assert "WorkflowTaskFailed" not in kinds
    assert kinds[-1] == "WorkflowExecutionFailed"
