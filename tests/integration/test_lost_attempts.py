"""An activity attempt running in the old region when the namespace moves is
lost with it and counts under the retry policy; when the policy allows no
other attempt the workflow's ActivityError says why (``retry_state``), as it
does for an attempt that timed out in one region. It said nothing."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from replication.failover import graceful_failover
from tests.conftest import RegionPair
from tests.helpers import eventually
from worker import ActivityError, Client, RetryPolicy, Worker, activity, workflow

pytestmark = pytest.mark.integration
NS, QUEUE = "lost-attempts", "lost-attempts"
RAN: list[int] = []


@activity.defn
async def charge_once() -> str:
    RAN.append(activity.info().attempt)
    await asyncio.sleep(3)  # no heartbeat: the move reaches it only by its end
    return "charged"


@workflow.defn(name="ChargeOnce")
class ChargeOnce:
    @workflow.run
    async def run(self) -> list[str]:
        try:
            await workflow.execute_activity(
                charge_once,
                start_to_close_timeout=timedelta(seconds=30),
                retry_policy=RetryPolicy(maximum_attempts=1),
            )
        except ActivityError as err:
            return [err.retry_state, type(err.__cause__).__name__]
        return ["charged"]


async def test_a_lost_last_attempt_says_the_attempts_ran_out(regions: RegionPair) -> None:
    rs = regions
    async with await Client.connect([rs.a.url, rs.b.url], namespace=NS) as client:
        await client.create_namespace(NS, regions=[rs.a.name, rs.b.name], active_region=rs.a.name)
        async with Worker(
            client, task_queue=QUEUE, workflows=[ChargeOnce], activities=[charge_once]
        ):
            h = await client.start_workflow(ChargeOnce, id="charge", task_queue=QUEUE)

            async def running() -> bool:
                return bool(RAN)

            await eventually(running, timeout=30, what="the attempt running in region-a")
            await asyncio.sleep(0.5)  # its start reaches region-b
            await graceful_failover(rs.a.config, NS, rs.b.name, timeout_s=30)
            assert await h.result(timeout=30) == ["maximum_attempts_reached", "TimeoutError_"]
            assert RAN == [1]  # not run again in region-b
