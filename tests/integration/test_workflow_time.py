"""workflow.time() and workflow.time_ns(), as in Temporal: history time, on replay too."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

import pytest

from tests.helpers import eventually
from worker import Client, Worker, workflow

pytestmark = pytest.mark.integration
QUEUE = "workflow-time"


def readings() -> dict[str, Any]:
    return {
        "time": workflow.time(),
        "time_ns": workflow.time_ns(),
        "loop": asyncio.get_running_loop().time(),
        "now": workflow.now().isoformat(),
    }


@workflow.defn
class Clocked:
    def __init__(self) -> None:
        self.go = False
        self.first: dict[str, Any] = {}

    @workflow.run
    async def run(self) -> list[dict[str, Any]]:
        self.first = readings()
        await workflow.wait_condition(lambda: self.go)
        await workflow.sleep(timedelta(milliseconds=100))
        return [self.first, readings()]

    @workflow.signal
    def proceed(self) -> None:
        self.go = True

    @workflow.query
    def first_readings(self) -> dict[str, Any]:
        return self.first


async def test_workflow_time_reads_history_time_the_same_on_every_replay(client: Client) -> None:
    # No cache: each task replays the run from its start, so the first
    # task's readings are taken again from history, and must come out equal.
    async with Worker(client, task_queue=QUEUE, workflows=[Clocked], max_cached_workflows=0):
        handle = await client.start_workflow(Clocked, id="clocked-1", task_queue=QUEUE)

        async def first() -> dict[str, Any]:
            return await handle.query(Clocked.first_readings)  # type: ignore[no-any-return]

        seen = await eventually(first, timeout=20, what="the first task's readings")
        await asyncio.sleep(0.05)  # the next task starts at a later wall-clock time
        await handle.signal(Clocked.proceed)
        before, after = await handle.result(timeout=20)
    assert before == seen
    events = await handle.history()
    started = [e for e in events if e["event_type"] == "WorkflowTaskStarted"]
    for reading, task in ((before, started[0]), (after, started[-1])):
        at = datetime.fromisoformat(task["event_time"])
        assert reading["now"] == at.isoformat()
        assert reading["time"] == at.timestamp() == reading["loop"]
        assert reading["time_ns"] == round(at.timestamp() * 1_000_000) * 1000
    assert after["time_ns"] > before["time_ns"]
