"""A standby describes a running workflow as its active region does: the
pending timers and activities (attempt, heartbeat details, pause) come from
what replicated, since a standby holds no timer or activity rows. It showed
none, so an operator reading the standby, with the active region down, saw
workflows that waited on nothing."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
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


@workflow.defn(name="Buggy")
class Buggy:
    @workflow.run
    async def run(self) -> None:
        raise RuntimeError("a bug: the workflow task fails and is retried")


async def test_a_standby_says_when_a_failing_workflow_task_is_retried(
    regions: RegionPair,
) -> None:
    """Regression: a standby's describe of a run whose workflow task waits out
    its retry backoff gave `retry_at` null (it holds no timer rows), where the
    active region gave the time."""
    rs = regions
    ns = "described-retry"
    async with await Client.connect([rs.a.url, rs.b.url], namespace=ns) as client:
        await client.create_namespace(ns, regions=[rs.a.name, rs.b.name], active_region=rs.a.name)
        async with (
            await Client.connect(rs.a.url, namespace=ns, follow_failover=False) as in_a,
            await Client.connect(rs.b.url, namespace=ns, follow_failover=False) as in_b,
        ):
            async with Worker(client, task_queue=QUEUE, workflows=[Buggy]):
                h = await client.start_workflow(Buggy, id="buggy", task_queue=QUEUE)

                async def backing_off() -> dict[str, Any] | None:
                    d = await in_a.get_workflow_handle("buggy").describe()
                    wt = d["pending_workflow_task"]
                    return wt if wt and wt["attempt"] >= 5 and wt.get("retry_at") else None

                await eventually(backing_off, timeout=30, what="a retry in backoff")
            # the worker is gone: the retry waits out its timer (4 s or more)
            there = (await in_a.get_workflow_handle("buggy").describe())["pending_workflow_task"]
            assert there["retry_at"] is not None, there

            async def standby_alike() -> dict[str, Any] | None:
                wt = (await in_b.get_workflow_handle("buggy").describe())["pending_workflow_task"]
                return wt if wt and wt["attempt"] == there["attempt"] else None

            here = await eventually(standby_alike, timeout=30, what="the standby's describe")
            assert here["retry_at"] is not None, here
            due_there = datetime.fromisoformat(there["retry_at"])
            due_here = datetime.fromisoformat(here["retry_at"])
            assert abs((due_here - due_there).total_seconds()) < 0.01, (here, there)
            assert here["last_failure"]["type"] == "RuntimeError", here
            await h.terminate("seen")
