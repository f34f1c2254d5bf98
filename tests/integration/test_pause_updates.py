"""An update that reached a run before a pause and waits for it: its time-out
says the pause holds it (it goes on at the unpause, under the same update id),
where it read as if the workflow were slow or stuck."""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.helpers import eventually
from worker import Client, Worker, workflow
from worker.errors import UpdateTimedOutError

pytestmark = pytest.mark.integration
QUEUE = "pause-updates"


@workflow.defn(name="Counter")
class Counter:
    def __init__(self) -> None:
        self.n = 0

    @workflow.run
    async def run(self) -> int:
        await workflow.wait_condition(lambda: self.n >= 2)
        return self.n

    @workflow.signal
    def slow(self) -> None:
        time.sleep(1.5)  # holds the workflow task: the update waits behind it

    @workflow.update
    def bump(self) -> int:
        self.n += 1
        return self.n


async def test_an_update_a_later_pause_holds_times_out_saying_so(client: Client) -> None:
    async with Worker(client, task_queue=QUEUE, workflows=[Counter]):
        h = await client.start_workflow(Counter, id="held-update", task_queue=QUEUE)

        async def first_task() -> bool:
            events = await h.history()
            return any(e["event_type"] == "WorkflowTaskCompleted" for e in events)

        await eventually(first_task, timeout=20, what="the first task")
        await h.signal("slow")
        await asyncio.sleep(0.3)  # the signal's task is running
        update = asyncio.create_task(h.update("bump", update_id="u1", timeout=4))
        await asyncio.sleep(0.3)
        await h.pause("incident")
        with pytest.raises(UpdateTimedOutError, match="paused meanwhile: incident"):
            await update
        await h.unpause()
        assert await h.update("bump", update_id="u1") == 1
        assert await h.update("bump", update_id="u2") == 2
        assert await h.result(timeout=10) == 2
