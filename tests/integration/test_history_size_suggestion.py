"""A run that grows by large payloads is told to continue as new, by size as
Temporal tells it, before ``history_bytes_max`` terminates it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ops.pg import PgCluster
from tests.conftest import Region, one_region
from tests.helpers import eventually
from worker import Client, Worker, workflow

pytestmark = pytest.mark.integration
QUEUE = "by-size"
WARN, MAX = 64 * 1024, 256 * 1024
CHUNK = "x" * (16 * 1024)


@workflow.defn(name="Accumulate")
class Accumulate:
    def __init__(self) -> None:
        self.total = 0

    @workflow.run
    async def run(self, total: int, runs: int) -> list[int]:
        self.total += total
        while self.total < 40:
            before = self.total
            await workflow.wait_condition(lambda before=before: self.total > before)
            suggested = workflow.continue_as_new_suggested()
            # Temporal's spelling reads the same (a mismatch fails the task)
            assert workflow.info().is_continue_as_new_suggested() == suggested
            if suggested:
                workflow.continue_as_new(self.total, runs + 1)
        return [self.total, runs]

    @workflow.signal
    def add(self, chunk: str) -> None:
        self.total += 1

    @workflow.query
    def seen(self) -> int:
        return self.total


@pytest.fixture
async def small_histories(pg: PgCluster, template_db: str, tmp_path: Path) -> AsyncIterator[Region]:
    async with one_region(
        pg, template_db, tmp_path, history_bytes_warn=WARN, history_bytes_max=MAX
    ) as r:
        yield r


async def test_a_history_past_the_size_warning_suggests_continue_as_new(
    small_histories: Region,
) -> None:
    async with await Client.connect(small_histories.url) as client:
        await client.create_namespace("default")
        async with Worker(client, task_queue=QUEUE, workflows=[Accumulate]):
            h = await client.start_workflow(Accumulate, 0, 1, id="grows", task_queue=QUEUE)
            for n in range(1, 41):  # 640 KiB of signals, far past MAX for one run
                await h.signal("add", CHUNK)

                async def seen(n: int = n) -> bool:
                    return bool(await h.query("seen") >= n)

                await eventually(seen, what=f"signal {n} taken")
            total, runs = await h.result(timeout=60)
        assert total == 40
        assert runs >= 3  # each run continued as new past WARN, none was terminated
        first = client.get_workflow_handle("grows", run_id=h.run_id)
        assert (await first.describe())["execution"]["status"] == "continued_as_new"
