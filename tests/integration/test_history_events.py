"""``handle.fetch_history_events()``, as Temporal's: a run's events one by
one for ``async for``, read in pages; ``wait_new_event=True`` goes on with
the events written later until the run closes."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from worker import Client, Worker, workflow
from worker.errors import InvalidArgumentError

pytestmark = pytest.mark.integration
QUEUE = "history-events"


@workflow.defn
class Waits:
    def __init__(self) -> None:
        self.go = False

    @workflow.run
    async def run(self) -> str:
        await workflow.wait_condition(lambda: self.go)
        return "done"

    @workflow.signal
    def proceed(self) -> None:
        self.go = True


async def test_events_page_by_page_and_then_as_they_come(client: Client) -> None:
    async with Worker(client, task_queue=QUEUE, workflows=[Waits]):
        h = await client.start_workflow(Waits, id="streamed", task_queue=QUEUE)

        async def follow() -> list[dict[str, Any]]:
            return [e async for e in h.fetch_history_events(wait_new_event=True, page_size=2)]

        following = asyncio.create_task(follow())
        await asyncio.sleep(1.0)
        assert not following.done()  # it waits for the run's next events
        so_far = [e async for e in h.fetch_history_events(page_size=2)]
        assert [e["event_id"] for e in so_far] == list(range(1, len(so_far) + 1))
        assert so_far == await h.history()
        await h.signal(Waits.proceed)
        events = await asyncio.wait_for(following, 30)
    assert [e["event_id"] for e in events] == list(range(1, len(events) + 1))
    assert events[-1]["event_type"] == "WorkflowExecutionCompleted"
    assert events == await h.history()
    with pytest.raises(InvalidArgumentError):
        [e async for e in h.fetch_history_events(run_id=" ")]
