"""An unpause lets pause-after-N-failed-tasks count afresh: a run unpaused while
its bug is still deployed fails N more tasks before it pauses again, not one."""

from __future__ import annotations

from typing import Any

import pytest

from tests.helpers import eventually
from worker import Client, Worker, workflow

pytestmark = pytest.mark.integration
QUEUE = "unpause-afresh"


@workflow.defn(name="StillBroken")
class StillBroken:
    @workflow.run
    async def run(self) -> str:
        raise RuntimeError("the bug is still there")


async def _failed_tasks(client: Client, wid: str) -> int:
    events = await client.get_workflow_handle(wid).history()
    return sum(1 for e in events if e["event_type"] == "WorkflowTaskFailed")


async def test_unpause_while_the_bug_runs_pauses_again_after_n_more_failures(
    client: Client,
) -> None:
    async with Worker(
        client,
        task_queue=QUEUE,
        workflows=[StillBroken],
        pause_after_failed_workflow_tasks=3,
    ):
        h = await client.start_workflow("StillBroken", id="still-broken", task_queue=QUEUE)

        async def paused() -> dict[str, Any] | None:
            d = await h.describe()
            return d if d["execution"]["paused"] else None

        d = await eventually(paused, timeout=60, what="paused after three failed tasks")
        assert "failed 3 times in a row" in d["execution"]["pause"]["reason"]
        assert await _failed_tasks(client, h.id) == 3

        await h.unpause("looked, trying again")
        d = await eventually(paused, timeout=60, what="paused again")
        # three more failures, counted from the unpause, not one
        assert await _failed_tasks(client, h.id) == 6
        assert "failed 3 times in a row" in d["execution"]["pause"]["reason"]
