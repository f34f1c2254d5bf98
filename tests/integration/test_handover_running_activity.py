"""A graceful handover costs a running activity no attempt.

The attempt running in the old region is lost with the move (its worker's
completion is refused in the new region, under the old failover version);
after a planned handover the new region runs it again at once as the same
attempt, where it counted as a failed attempt and an activity allowed one
attempt failed its workflow. A forced failover still counts it."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from replication.failover import graceful_failover
from tests.conftest import RegionPair
from tests.helpers import eventually
from worker import Client, RetryPolicy, Worker, activity, workflow

pytestmark = pytest.mark.integration
QUEUE = "handover-activity"
CALLS: list[int] = []


@activity.defn(name="slow_once")
async def slow_once(text: str) -> str:
    CALLS.append(activity.info().attempt)
    if len(CALLS) == 1:
        await asyncio.sleep(4)  # the namespace moves meanwhile
    return text.upper()


@workflow.defn(name="OneAttempt")
class OneAttempt:
    @workflow.run
    async def run(self, text: str) -> str:
        return await workflow.execute_activity(
            slow_once,
            text,
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=RetryPolicy(maximum_attempts=1),
        )


async def test_an_activity_running_in_a_graceful_handover_runs_again_as_the_same_attempt(
    regions: RegionPair,
) -> None:
    rs, ns = regions, "handover-attempts"
    CALLS.clear()
    async with await Client.connect([rs.a.url, rs.b.url], namespace=ns) as client:
        await client.create_namespace(ns, regions=[rs.a.name, rs.b.name], active_region=rs.a.name)
        async with Worker(client, task_queue=QUEUE, workflows=[OneAttempt], activities=[slow_once]):
            h = await client.start_workflow(OneAttempt.run, "moved", id="moves", task_queue=QUEUE)

            async def running() -> bool:
                return bool(CALLS)

            await eventually(running, timeout=30, what="the activity's first attempt")

            async def replicated() -> bool:
                async with await Client.connect(rs.b.url, namespace=ns) as in_b:
                    try:
                        events = await in_b.get_workflow_handle("moves").history()
                    except Exception:
                        return False
                    return any(e["event_type"] == "ActivityTaskScheduled" for e in events)

            await eventually(replicated, timeout=30, what="the scheduled activity in region-b")
            await graceful_failover(rs.a.config, ns, rs.b.name, timeout_s=60)
            assert await h.result(timeout=60) == "MOVED"
        events = await h.history()
    assert CALLS == [1, 1]  # run again here as attempt 1, not counted as a failure
    started = [e for e in events if e["event_type"] == "ActivityTaskStarted"]
    assert [e["attributes"]["attempt"] for e in started] == [1]
    assert started[0]["version"] % 100 == 2  # the attempt that completed ran in region-b
