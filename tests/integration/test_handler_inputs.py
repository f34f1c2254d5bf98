"""Signal and update inputs of the wrong kind: the workflow is not held up by them."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import pytest

from worker import Client, Worker, workflow
from worker.errors import UpdateRejectedError

pytestmark = pytest.mark.integration
QUEUE = "handler-inputs"


@dataclass
class Item:
    qty: int


@workflow.defn(name="Tally")
class Tally:
    def __init__(self) -> None:
        self.total = 0
        self.done = False

    @workflow.run
    async def run(self) -> int:
        await workflow.wait_condition(lambda: self.done)
        return self.total

    @workflow.signal
    def add(self, n: int) -> None:
        self.total += n

    @workflow.signal
    def add_item(self, item: Item) -> None:
        self.total += item.qty

    @workflow.signal
    def finish(self) -> None:
        self.done = True

    @workflow.update
    def set_total(self, n: int) -> int:
        self.total = n
        return n


async def test_a_signal_of_the_wrong_kind_is_dropped_not_retried_forever(client: Client) -> None:
    """Regression: a string sent for an ``int`` reached the handler, whose
    TypeError failed the workflow task on every retry: one bad signal held the
    workflow up for good, where one that cannot be decoded is dropped."""
    async with Worker(client, task_queue=QUEUE, workflows=[Tally]):
        handle = await client.start_workflow(
            Tally, id=f"tally-{uuid.uuid4().hex[:6]}", task_queue=QUEUE
        )
        await handle.signal("add", 1)
        await handle.signal("add", "2")
        await handle.signal("add_item", {"qty": "3"})
        await handle.signal("add_item", {"qty": 4})
        await handle.signal("finish")
        assert await handle.result(timeout=30) == 5
    failed = [e for e in await handle.history() if e["event_type"] == "WorkflowTaskFailed"]
    assert failed == []


async def test_an_update_of_the_wrong_kind_is_rejected_saying_which_argument(
    client: Client,
) -> None:
    async with Worker(client, task_queue=QUEUE, workflows=[Tally]):
        handle = await client.start_workflow(
            Tally, id=f"tally-{uuid.uuid4().hex[:6]}", task_queue=QUEUE
        )
        with pytest.raises(UpdateRejectedError, match="argument 1 should be int, got str"):
            await handle.update("set_total", "7")
        assert await handle.update("set_total", 7) == 7
        await handle.signal("finish")
        assert await handle.result(timeout=30) == 7
