"""A timer started and cancelled in one activation issues no command, as in
Temporal: ``wait_condition(..., timeout=)`` whose condition already holds (or
an ``asyncio.timeout()`` around code that did not wait) adds nothing to
history, where each added TimerStarted and TimerCanceled. A run whose history
an earlier release wrote that way replays and goes on as it was written."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from datetime import timedelta

import pytest

from worker import Client, Replayer, Worker, workflow
from worker._workflow_timers import TimerCommands

pytestmark = pytest.mark.integration
QUEUE = "unsent-timers"


@workflow.defn
class Drain:
    def __init__(self) -> None:
        self.queue: list[int] = []
        self.done = False

    @workflow.run
    async def run(self) -> int:
        total = 0
        while not (self.done and not self.queue):
            try:
                await workflow.wait_condition(
                    lambda: bool(self.queue) or self.done, timeout=timedelta(seconds=30)
                )
            except TimeoutError:
                continue
            while self.queue:
                async with asyncio.timeout(60):  # noqa: ASYNC100 (a timer never sent)
                    total += self.queue.pop(0)  # nothing to wait for
        await workflow.sleep(timedelta(milliseconds=1))  # a timer that fires stays
        return total

    @workflow.signal
    def push(self, items: list[int]) -> None:
        self.queue.extend(items)

    @workflow.signal
    def finish(self) -> None:
        self.done = True


def _kinds(events: list[dict[str, object]]) -> list[object]:
    return [e["event_type"] for e in events]


@contextlib.contextmanager
def earlier_release() -> Iterator[None]:
    """Workers that record both commands of such a timer, as releases before did."""
    original = TimerCommands._unsent_start
    TimerCommands._unsent_start = lambda self, timer_id: None  # type: ignore[method-assign,assignment]
    try:
        yield
    finally:
        TimerCommands._unsent_start = original  # type: ignore[method-assign]


async def _drain(client: Client, wid: str, **worker: object) -> list[dict[str, object]]:
    """A run whose first workflow task takes every signal (sent before any
    worker polls), so that what it records does not depend on timing."""
    h = await client.start_workflow(Drain, id=wid, task_queue=QUEUE)
    await h.signal(Drain.push, [1, 2, 3])
    await h.signal(Drain.push, [4])
    await h.signal(Drain.finish)
    async with Worker(client, task_queue=QUEUE, workflows=[Drain], **worker):  # type: ignore[arg-type]
        assert await h.result(timeout=30) == 10
    return await h.history()


async def test_a_wait_whose_condition_holds_adds_no_timer_events(client: Client) -> None:
    kinds = _kinds(await _drain(client, "drain-new", max_cached_workflows=0))
    # the wait that held and the four asyncio.timeout() blocks: nothing; the
    # sleep's timer, which fires, stays
    assert "TimerCanceled" not in kinds
    assert kinds.count("TimerStarted") == kinds.count("TimerFired") == 1
    assert kinds.count("MarkerRecorded") == 1  # the run says once which way it was written
    with earlier_release():
        old = _kinds(await _drain(client, "drain-old"))
    assert old.count("TimerCanceled") == 5 and "MarkerRecorded" not in old
    # the new code replays the run the earlier release wrote, and its own
    for wid in ("drain-old", "drain-new"):
        h = client.get_workflow_handle(wid)
        await Replayer(workflows=[Drain]).replay_workflow(await h.fetch_history())


async def test_a_run_written_the_old_way_goes_on_the_old_way(client: Client) -> None:
    with earlier_release():
        async with Worker(client, task_queue=QUEUE, workflows=[Drain]):
            h = await client.start_workflow(Drain, id="drain-mixed", task_queue=QUEUE)
            await h.signal(Drain.push, [1])

            async def taken() -> bool:
                return _kinds(await h.history()).count("TimerCanceled") > 1

            for _ in range(100):
                if await taken():
                    break
                await asyncio.sleep(0.1)
            assert await taken()
    # today's worker replays it and keeps writing it as it was written
    async with Worker(client, task_queue=QUEUE, workflows=[Drain], max_cached_workflows=0):
        await h.signal(Drain.push, [2, 3])
        await h.signal(Drain.push, [4])
        await h.signal(Drain.finish)
        assert await h.result(timeout=30) == 10
    events = await h.history()
    assert _kinds(events).count("TimerCanceled") >= 6
    assert not [e for e in events if e["event_type"] == "MarkerRecorded"]
    await Replayer(workflows=[Drain]).replay_workflow(await h.fetch_history())
