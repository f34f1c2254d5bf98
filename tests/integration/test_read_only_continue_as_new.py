"""``workflow.continue_as_new()`` in a query handler or an update validator is
refused like any other command there: the query fails and the update is
rejected at once, and the run goes on. (The query's worker used to drop it,
so the caller waited out its whole timeout for a QUERY_TIMED_OUT.)"""

from __future__ import annotations

import time

import pytest

from worker import Client, Worker, workflow
from worker.errors import QueryFailedError, UpdateRejectedError

pytestmark = pytest.mark.integration
QUEUE = "read-only-can"


@workflow.defn
class Rollover:
    def __init__(self) -> None:
        self.done = False

    @workflow.run
    async def run(self) -> str:
        await workflow.wait_condition(lambda: self.done)
        return "finished in its first run"

    @workflow.signal
    def finish(self) -> None:
        self.done = True

    @workflow.query
    def roll_over(self) -> str:
        workflow.continue_as_new()

    @workflow.update
    def reset(self) -> str:
        return "reset"

    @reset.validator
    def _roll_over_first(self) -> None:
        workflow.continue_as_new()


async def test_continue_as_new_is_refused_where_the_code_only_reads(client: Client) -> None:
    async with Worker(client, task_queue=QUEUE, workflows=[Rollover]):
        handle = await client.start_workflow(Rollover, id="rollover", task_queue=QUEUE)
        began = time.monotonic()
        with pytest.raises(QueryFailedError, match=r"continue_as_new.*query handler"):
            await handle.query("roll_over", timeout=20)
        assert time.monotonic() - began < 10  # answered, not timed out
        with pytest.raises(UpdateRejectedError, match=r"continue_as_new.*update validator"):
            await handle.update("reset", timeout=20)
        await handle.signal("finish")
        assert await handle.result(timeout=20) == "finished in its first run"
    described = await handle.describe()
    assert described["execution"]["continued_to_run_id"] is None
