"""Temporal's activity calls, as Temporal code writes them: ``activity.client()``
is the worker's client, ``is_worker_shutdown()`` and
``wait_for_worker_shutdown()`` tell an attempt its worker began to stop (it
has the grace to finish), and ``wait_for_cancelled_sync()`` blocks a plain
activity's thread until a cancel or its timeout."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from tests.helpers import eventually
from worker import Client, Worker, activity, workflow

pytestmark = pytest.mark.integration
QUEUE = "temporal-activity-names"


@activity.defn
async def look_at_own_run() -> str:
    info = activity.info()
    d = await activity.client().get_workflow_handle(info.workflow_id).describe()
    return f"{d.status} {activity.is_worker_shutdown()}"


@activity.defn
def wait_a_little() -> bool:
    activity.wait_for_cancelled_sync(timeout=timedelta(seconds=0.2))
    return activity.is_cancelled()


@activity.defn
async def until_shutdown() -> str:
    await activity.wait_for_worker_shutdown()
    return f"worker stopping: {activity.is_worker_shutdown()}"


@workflow.defn
class Names:
    @workflow.run
    async def run(self) -> list[object]:
        opts = {"start_to_close_timeout": timedelta(seconds=30)}
        own = await workflow.execute_activity(look_at_own_run, **opts)
        waited = await workflow.execute_activity(wait_a_little, **opts)
        stopped = await workflow.execute_activity(until_shutdown, activity_id="stop", **opts)
        return [own, waited, stopped]


async def test_activity_client_shutdown_and_sync_cancel_wait(client: Client) -> None:
    acts = [look_at_own_run, wait_a_little, until_shutdown]
    first = Worker(client, task_queue=QUEUE, workflows=[Names], activities=acts)
    async with first:
        handle = await client.start_workflow(Names.run, id="temporal-activity", task_queue=QUEUE)

        async def waiting_for_shutdown() -> bool:
            d = await handle.describe()
            return any(
                a["activity_id"] == "stop" and a["state"] == "started"
                for a in d["pending_activities"]
            )

        await eventually(waiting_for_shutdown, timeout=30, what="the attempt that waits")
    # leaving `async with` began the shutdown: the attempt saw it and completed
    # within the grace, so another worker only runs the workflow's last task
    async with Worker(client, task_queue=QUEUE, workflows=[Names], activities=acts):
        result = await asyncio.wait_for(handle.result(), 30)
    assert result == ["running False", False, "worker stopping: True"]
