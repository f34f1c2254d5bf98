"""An activity id is taken only while its activity is pending, as in Temporal:
a workflow may give the same id to an activity after the first closed
(completed, failed), where every workflow task failed for ever. What reads a
run by activity id (describe, pause) names the pending one, and replay of such
a history stays deterministic."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import pytest

from tests.helpers import eventually
from worker import ActivityError, Client, RetryPolicy, Worker, activity, workflow
from worker.errors import InvalidArgumentError

pytestmark = pytest.mark.integration

RELEASE = asyncio.Event()
TIMEOUT = timedelta(seconds=30)


@activity.defn(name="ReuseStep")
async def step(n: int) -> int:
    if n < 0:
        raise ValueError("refused")
    if n == 99:
        await RELEASE.wait()
    return n * 10


@workflow.defn(name="ReuseIds")
class ReuseIds:
    @workflow.run
    async def run(self) -> list[str]:
        out = []
        once = RetryPolicy(maximum_attempts=1)
        for n in (1, -1, 2, 99):
            try:
                got = await workflow.execute_activity(
                    step, n, start_to_close_timeout=TIMEOUT, retry_policy=once, activity_id="same"
                )
                out.append(str(got))
            except ActivityError as err:
                out.append(f"failed: {err.activity_id}")
        return out


async def test_an_activity_id_is_free_again_once_its_activity_closed(client: Client) -> None:
    RELEASE.clear()
    queue = f"reuse-{uuid.uuid4().hex[:6]}"
    # no cache and no sticky queue: every workflow task replays the whole history
    async with Worker(
        client,
        task_queue=queue,
        workflows=[ReuseIds],
        activities=[step],
        max_cached_workflows=0,
        sticky_queue=False,
    ):
        handle = await client.start_workflow(ReuseIds, id=f"w-{queue}", task_queue=queue)

        async def last_pending() -> dict[str, object] | None:
            acts = (await handle.describe())["pending_activities"]
            kinds = [e["event_type"] for e in await handle.history()]
            return acts[0] if acts and kinds.count("ActivityTaskScheduled") == 4 else None

        pending = await eventually(last_pending, what="the fourth activity pending")
        events = await handle.history()
        scheduled = [e["event_id"] for e in events if e["event_type"] == "ActivityTaskScheduled"]
        assert pending["activity_id"] == "same"
        assert pending["scheduled_event_id"] == scheduled[-1]
        paused = await handle.pause_activity("same", "look")
        assert paused["scheduled_event_id"] == scheduled[-1]
        await handle.unpause_activity("same")
        RELEASE.set()
        assert await handle.result(timeout=30) == ["10", "failed: same", "20", "990"]
    kinds = [e["event_type"] for e in await handle.history()]
    assert "WorkflowTaskFailed" not in kinds, kinds


async def test_the_id_of_a_pending_activity_is_refused_with_a_typed_error(client: Client) -> None:
    """Regression: a completion giving a pending activity's id again hit the
    table's constraint and was answered INTERNAL."""
    queue = f"raw-{uuid.uuid4().hex[:6]}"
    handle = await client.start_workflow("Anything", id=f"w-{queue}", task_queue=queue)
    base = "/api/v1/namespaces/default/workflow-tasks"
    poll = {"task_queue": queue, "identity": "raw", "wait_s": 10}
    task = (await client.call("POST", f"{base}/poll", poll))["task"]
    schedule = {
        "type": "ScheduleActivity",
        "attributes": {"activity_id": "x", "activity_type": "a", "start_to_close_s": 10},
    }
    before = await handle.history()
    with pytest.raises(InvalidArgumentError) as err:
        body = {"task_token": task["task_token"], "commands": [schedule, schedule]}
        await client.call("POST", f"{base}/complete", body)
    assert "still pending" in err.value.message
    assert await handle.history() == before  # nothing written
