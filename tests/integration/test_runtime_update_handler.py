"""``workflow.set_update_handler`` (as Temporal's): an update handler, with an
optional validator, set while the run runs; it replays, is listed among the
known updates, and removing it makes the name unknown again."""

from __future__ import annotations

from typing import Any

import pytest

from tests.helpers import eventually
from worker import (
    Client,
    Replayer,
    UpdateRejectedError,
    UpdateTimedOutError,
    Worker,
    workflow,
)

pytestmark = pytest.mark.integration
QUEUE = "runtime-updates"


@workflow.defn
class Ledger:
    def __init__(self) -> None:
        self.total = 0
        self.open = False
        self.closed = False

    @workflow.run
    async def run(self) -> int:
        await workflow.wait_condition(lambda: self.open)

        def check(amount: int) -> None:
            if amount <= 0:
                raise ValueError(f"amount must be positive, not {amount}")

        async def add(amount: int) -> int:
            self.total += amount
            return self.total

        workflow.set_update_handler("add", add, validator=check)
        await workflow.wait_condition(lambda: self.total >= 10)
        workflow.set_update_handler("add", None)
        await workflow.wait_condition(lambda: self.closed)
        return self.total

    @workflow.signal
    def open_ledger(self) -> None:
        self.open = True

    @workflow.signal
    def close(self) -> None:
        self.closed = True

    @workflow.query
    def balance(self) -> int:
        return self.total

    @workflow.query
    def is_open(self) -> bool:
        return self.open


async def test_an_update_handler_set_at_run_time(client: Client) -> None:
    # no cache: every task replays the handler's setting from history
    async with Worker(client, task_queue=QUEUE, workflows=[Ledger], max_cached_workflows=0):
        h = await client.start_workflow(Ledger, id="ledger", task_queue=QUEUE)
        with pytest.raises(UpdateRejectedError, match="unknown update 'add'"):
            await h.update("add", 1)
        await h.signal(Ledger.open_ledger)

        async def handler_set() -> bool:
            # the task that ran the signal's handler went on to set the handler
            return bool(await h.query(Ledger.is_open))

        await eventually(handler_set, what="the ledger open")
        assert await h.update("add", 4) == 4
        with pytest.raises(UpdateRejectedError, match="amount must be positive, not -1") as err:
            await h.update("add", -1)
        failure: dict[str, Any] = err.value.details["failure"]
        assert failure["type"] == "ValueError"
        assert await h.update("add", 6) == 10
        # removed once the total reached 10
        with pytest.raises(UpdateRejectedError, match="unknown update 'add'"):
            await h.update("add", 1)
        assert await h.query(Ledger.balance) == 10
        await h.signal(Ledger.close)
        assert await h.result(timeout=30) == 10
    await Replayer(workflows=[Ledger]).replay_workflow(await h.fetch_history())


@workflow.defn
class AsyncValidator:
    @workflow.run
    async def run(self) -> None:
        async def check(amount: int) -> None:
            pass

        workflow.set_update_handler("add", lambda amount: amount, validator=check)
        await workflow.wait_condition(lambda: False)


async def test_an_async_validator_is_refused_as_the_decorator_refuses_it(client: Client) -> None:
    async with Worker(client, task_queue=QUEUE, workflows=[AsyncValidator]):
        h = await client.start_workflow(AsyncValidator, id="async-validator", task_queue=QUEUE)

        async def failed() -> dict[str, Any] | None:
            task = (await h.describe()).get("pending_workflow_task") or {}
            return task.get("last_failure")

        failure = await eventually(failed, what="the workflow task failed")
        assert failure["type"] == "TypeError"
        assert "must not be `async def`" in failure["message"]
        await h.terminate("done")


@workflow.defn
class Tally:
    def __init__(self) -> None:
        self.total = 0
        self.done = False

    @workflow.run
    async def run(self) -> int:
        def add(amount: int) -> int:
            self.total += amount
            return self.total

        workflow.set_update_handler("add", add)
        await workflow.wait_condition(lambda: self.done)
        return self.total

    @workflow.signal
    def finish(self) -> None:
        self.done = True


async def test_an_update_sent_with_the_start_finds_the_handler_the_run_sets(
    client: Client,
) -> None:
    # sent before any worker polls: the update comes in the run's first
    # workflow task, with its start, as in Temporal a run method's first
    # lines set the handlers such an update finds
    h = await client.start_workflow(Tally, id="tally", task_queue="tally-queue")
    unknown = await client.start_workflow(Tally, id="tally-unknown", task_queue="tally-queue")
    # recorded (their waits time out, nobody polls yet), then asked for again by id
    with pytest.raises(UpdateTimedOutError):
        await h.update("add", 5, update_id="add-5", timeout=0.5)
    with pytest.raises(UpdateTimedOutError):
        await unknown.update("subtract", 1, update_id="sub-1", timeout=0.5)
    async with Worker(client, task_queue="tally-queue", workflows=[Tally], max_cached_workflows=0):
        assert await h.update("add", 5, update_id="add-5") == 5
        # a name no handler takes is still refused, naming the ones there are
        refused = r"unknown update 'subtract'.*known updates: add"
        with pytest.raises(UpdateRejectedError, match=refused):
            await unknown.update("subtract", 1, update_id="sub-1")
        assert await h.update("add", 2) == 7
        await h.signal(Tally.finish)
        assert await h.result(timeout=30) == 7
        await unknown.terminate("done")
    kinds = [e["event_type"] for e in await h.history()]
    # taken in the run's first workflow task
    first_task_done = kinds.index("WorkflowTaskCompleted")
    assert kinds.index("WorkflowExecutionUpdateAccepted") == first_task_done + 1
    await Replayer(workflows=[Tally]).replay_workflow(await h.fetch_history())
