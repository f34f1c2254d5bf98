"""A signal dropped for its input is logged once, when it arrives: not again at
each replay of the history that holds it (a worker without a cache replays
the whole history at every task), as Temporal's logging stays quiet on replay."""

from __future__ import annotations

import logging

import pytest

from tests.helpers import eventually
from worker import Client, Worker, workflow

pytestmark = pytest.mark.integration
QUEUE = "dropped-signal"


@workflow.defn
class Tally:
    def __init__(self) -> None:
        self.sum = 0
        self.closed = False

    @workflow.run
    async def run(self) -> int:
        await workflow.wait_condition(lambda: self.closed)
        return self.sum

    @workflow.signal
    def add(self, amount: int) -> None:
        self.sum += amount

    @workflow.signal
    def close(self) -> None:
        self.closed = True

    @workflow.query
    def total(self) -> int:
        return self.sum


async def test_a_dropped_signal_is_logged_once(
    client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    async with Worker(client, task_queue=QUEUE, workflows=[Tally], max_cached_workflows=0):
        handle = await client.start_workflow(Tally, id="tally", task_queue=QUEUE)
        await handle.signal("add", "ten")  # not an int: dropped
        expected = 0
        for amount in (1, 2, 3):  # a task each, each replaying the dropped signal
            await handle.signal("add", amount)
            expected += amount

            async def applied(want: int = expected) -> bool:
                return bool(await handle.query("total") == want)

            await eventually(applied, what=f"total {expected}")
        await handle.signal("close")
        assert await handle.result(timeout=20) == 6
    dropped = [r for r in caplog.records if "dropping signal" in r.getMessage()]
    assert len(dropped) == 1, [r.getMessage() for r in dropped]
