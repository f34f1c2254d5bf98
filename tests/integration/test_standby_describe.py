"""A standby describes a running workflow as its active region does: the
pending timers and activities (attempt, heartbeat details, pause) come from
what replicated, since a standby holds no timer or activity rows. It showed
none, so an operator reading the standby, with the active region down, saw
workflows that waited on nothing."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest

from tests.conftest import RegionPair
from tests.helpers import eventually
from worker import Client, RetryPolicy, Worker, activity, workflow

pytestmark = pytest.mark.integration
NS, QUEUE = "described", "described"


@activity.defn
async def holds(label: str) -> str:
    activity.heartbeat(label, 7)
    await asyncio.sleep(300)
    return label


@activity.defn
async def fails(label: str) -> str:
    raise RuntimeError(f"{label} fails")


@workflow.defn(name="Waits")
class Waits:
    @workflow.run
    async def run(self) -> None:
        timeout = timedelta(seconds=600)
        await asyncio.gather(
            workflow.sleep(timedelta(hours=1)),
            workflow.execute_activity(
                holds, "h", start_to_close_timeout=timeout, heartbeat_timeout=timeout
            ),
            workflow.execute_activity(
                fails,
                "f",
                start_to_close_timeout=timeout,
                retry_policy=RetryPolicy(initial_interval=timedelta(seconds=0.2)),
            ),
        )


def pending(d: dict[str, Any]) -> dict[str, Any]:
    keys = ("activity_id", "activity_type", "state", "attempt", "heartbeat_details", "paused")
    return {
        "timers": d["pending_timers"],
        "activities": [{k: a[k] for k in keys} for a in d["pending_activities"]],
    }


async def test_a_standby_describes_the_pending_timers_and_activities(
    regions: RegionPair,
) -> None:
    rs = regions
    async with await Client.connect([rs.a.url, rs.b.url], namespace=NS) as client:
        await client.create_namespace(NS, regions=[rs.a.name, rs.b.name], active_region=rs.a.name)
        async with (
            Worker(client, task_queue=QUEUE, workflows=[Waits], activities=[holds, fails]),
            await Client.connect(rs.a.url, namespace=NS, follow_failover=False) as in_a,
            await Client.connect(rs.b.url, namespace=NS, follow_failover=False) as in_b,
        ):
            h = await client.start_workflow(Waits, id="waits", task_queue=QUEUE)

            async def retried() -> bool:
                acts = (await h.describe())["pending_activities"]
                return any(a["attempt"] >= 3 for a in acts)

            await eventually(retried, timeout=30, what="the failing activity retried")
            await h.pause_activity("2", "hold it still")  # its attempts stop changing
            await asyncio.sleep(0.5)  # an attempt that ran on meanwhile has ended

            async def described_alike() -> dict[str, Any] | None:
                there = pending(await in_a.get_workflow_handle("waits").describe())
                here = pending(await in_b.get_workflow_handle("waits").describe())
                return here if here == there else None

            here = await eventually(described_alike, timeout=30, what="the standby's describe")
            assert len(here["timers"]) == 1
            assert [a["activity_type"] for a in here["activities"]] == ["holds", "fails"]
            hb = here["activities"][0]
            assert hb["state"] == "started" and hb["heartbeat_details"]
            assert here["activities"][1]["paused"] and here["activities"][1]["attempt"] >= 3
            await h.terminate("seen")
