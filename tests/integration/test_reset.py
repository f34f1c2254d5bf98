"""Workflow reset: recover runs a bad deploy wedged, alone and as a batch by query."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from replication.failover import graceful_failover
from tests.apps.deploy import DeployV1, DeployV2Bad, DeployV3Fixed, step
from tests.apps.visibility import Waiter
from tests.conftest import Region, RegionPair
from tests.helpers import eventually
from worker import Client, Worker, WorkflowHandle
from worker._http import ns_path
from worker.errors import InvalidArgumentError, LimitExceededError

pytestmark = pytest.mark.integration
QUEUE = "deploy"


def worker(client: Client, cls: type) -> Worker:
    return Worker(
        client, task_queue=QUEUE, workflows=[cls], activities=[step], max_cached_workflows=0
    )


async def kinds(h: WorkflowHandle) -> list[str]:
    return [e["event_type"] for e in await h.history()]


async def waiting(h: WorkflowHandle) -> bool:
    """Both steps done, the run waits for its signal."""
    return (await kinds(h)).count("ActivityTaskCompleted") == 2


async def wedged(h: WorkflowHandle) -> bool:
    events = await h.history()
    return any(
        e["event_type"] == "WorkflowTaskFailed" and e["attributes"].get("cause") == "NonDeterminism"
        for e in events
    )


async def wedge(client: Client, ids: list[str]) -> list[WorkflowHandle]:
    """Run ``ids`` on the first deploy to their wait, then signal them under the bad one."""
    handles = []
    async with worker(client, DeployV1):
        for wid in ids:
            handles.append(await client.start_workflow(DeployV1, id=wid, task_queue=QUEUE))
        for h in handles:
            await eventually(lambda h=h: waiting(h), timeout=30, what=f"{h.id} waiting")
    async with worker(client, DeployV2Bad):
        for h in handles:
            await h.signal("note", "go", request_id=f"go-{h.id}")
        for h in handles:
            await eventually(lambda h=h: wedged(h), timeout=30, what=f"{h.id} wedged")
    return handles


def completed_of_task_that_took(events: list[dict[str, Any]], activity_id: str) -> int:
    """The WorkflowTaskCompleted event of the task that scheduled ``activity_id``."""
    scheduled = next(
        e
        for e in events
        if e["event_type"] == "ActivityTaskScheduled"
        and e["attributes"]["activity_id"] == activity_id
    )
    return int(scheduled["attributes"]["workflow_task_completed_event_id"])


async def test_a_wedged_workflow_is_reset_and_completes_on_the_fixed_code(client: Client) -> None:
    (h,) = await wedge(client, ["order-1"])
    old_events = await h.history()
    point = completed_of_task_that_took(old_events, "step-two")
    new_run = await h.reset(event_id=point, reason="bad deploy 41", request_id="reset-1")
    # a retried reset is the same reset
    assert await h.reset(event_id=point, reason="bad deploy 41", request_id="reset-1") == new_run
    async with worker(client, DeployV3Fixed):
        # the old run's result follows to the new run
        result = await h.result(timeout=30)
    assert result == {"steps": ["one", "two-v2"], "signals": ["go"]}
    old = await client.get_workflow_handle("order-1", run_id=h.run_id).describe()
    assert old["execution"]["status"] == "terminated"
    assert old["execution"]["continued_to_run_id"] == new_run
    terminated = [
        e
        for e in await h.history(run_id=h.run_id)
        if e["event_type"] == "WorkflowExecutionTerminated"
    ]
    assert f"reset to run {new_run}" in terminated[0]["attributes"]["reason"]
    new_events = await client.get_workflow_handle("order-1", run_id=new_run).history()
    # the history up to the task's start is the old one, event for event, with its times
    kept = [e for e in old_events if e["event_id"] < point]
    assert [(e["event_type"], e["event_time"]) for e in new_events[: len(kept)]] == [
        (e["event_type"], e["event_time"]) for e in kept
    ]
    reset_event = new_events[len(kept)]
    assert (reset_event["event_type"], reset_event["attributes"]["cause"]) == (
        "WorkflowTaskFailed",
        "ResetWorkflow",
    )
    signals = [e for e in new_events if e["event_type"] == "WorkflowExecutionSignaled"]
    assert len(signals) == 1  # the signal after the point, applied once
    scheduled = [
        e["attributes"]["activity_id"]
        for e in new_events
        if e["event_type"] == "ActivityTaskScheduled"
    ]
    assert scheduled[-1] == "step-two-v2" and "step-two" not in scheduled
    assert not [e for e in new_events if e["attributes"].get("cause") == "NonDeterminism"]


async def test_reset_refuses_points_that_are_not_finished_workflow_tasks(client: Client) -> None:
    h = await client.start_workflow(DeployV1, id="pending", task_queue=QUEUE)
    # events 1-2: started, a workflow task scheduled and not finished
    for kw in (
        {"event_id": 2},  # the unfinished task's scheduled event
        {"event_id": 1},  # not a workflow task
        {"event_id": 99},  # not in the history
        {"to": "first-workflow-task"},  # no task has finished yet
        {"to": "last-workflow-task"},
        {"event_id": 2, "to": "first-workflow-task"},
        {},
    ):
        with pytest.raises(InvalidArgumentError):
            await h.reset(reason="try", **kw)
    assert await kinds(h) == ["WorkflowExecutionStarted", "WorkflowTaskScheduled"]
    async with worker(client, DeployV1):
        await eventually(lambda: waiting(h), timeout=30, what="waiting")
        events = await h.history()
        started = max(e["event_id"] for e in events if e["event_type"] == "WorkflowTaskStarted")
        activity_event = next(
            e["event_id"] for e in events if e["event_type"] == "ActivityTaskScheduled"
        )
        with pytest.raises(InvalidArgumentError) as err:
            await h.reset(event_id=activity_event, reason="try")
        assert "ActivityTaskScheduled" in err.value.message
        # the started event of a finished task is a point (that task is re-run)
        assert started > 0
        await h.signal("note", "go")
        assert (await h.result(timeout=30))["signals"] == ["go"]


async def test_a_batch_resets_a_hundred_wedged_workflows_by_query(client: Client) -> None:
    handles = await wedge(client, [f"bulk-{i:03d}" for i in range(100)])
    await client.start_batch(
        "WorkflowType = 'Deploy' AND ExecutionStatus = 'Running'",
        "reset",
        reason="bad deploy 41",
        params={"to": "first-workflow-task", "reapply": "signals"},
        rps=500,
        job_id="reset-bulk",
    )

    async def done() -> dict[str, Any] | None:
        d = await client.describe_batch("reset-bulk")
        return d if d["state"] != "running" else None

    d = await eventually(done, timeout=120, interval=0.5, what="the reset batch")
    assert (d["state"], d["done"], d["failed"]) == ("completed", 100, 0), d
    async with worker(client, DeployV3Fixed):
        for h in handles:
            assert await h.result(timeout=60) == {"steps": ["one", "two-v2"], "signals": ["go"]}
    for h in handles[:10]:
        runs = [e async for e in client.list_workflows(f"WorkflowId = '{h.id}'")]
        assert sorted(r.status for r in runs) == ["completed", "terminated"]


async def test_a_reset_retried_in_another_region_after_a_failover_resets_once(
    regions: RegionPair,
) -> None:
    """A reset's request id was kept only where the reset ran: a client whose
    answer was lost and that retried in the region the namespace moved to got
    a second reset (a third run). The id is in the replicated history now."""
    rs, ns = regions, "resets"
    async with await Client.connect([rs.a.url, rs.b.url], namespace=ns) as client:
        await client.create_namespace(ns, regions=[rs.a.name, rs.b.name], active_region=rs.a.name)
        async with Worker(client, task_queue="waiting", workflows=[Waiter]):
            h = await client.start_workflow(Waiter, id="reset-once", task_queue="waiting")

            async def first_task_done() -> bool:
                return "WorkflowTaskCompleted" in await kinds(h)

            await eventually(first_task_done, timeout=30, what="the first workflow task")
            first = await h.reset_details(
                reason="retry me", to="first-workflow-task", request_id="reset-1"
            )
            assert first["reset"]
            # the same reset again where it ran, and a reset of the reset run
            # (which copies the first reset's task failure into its history)
            again = await h.reset_details(
                reason="retry me", to="first-workflow-task", request_id="reset-1"
            )
            assert again == {**first, "reset": False}
            h = client.get_workflow_handle("reset-once")
            await eventually(first_task_done, timeout=30, what="the reset run's first task")
            second = await h.reset_details(
                reason="again", to="last-workflow-task", request_id="reset-2"
            )
            assert second["reset"] and second["reset_from_run_id"] == first["run_id"]
            await graceful_failover(rs.a.config, ns, rs.b.name, timeout_s=60)
        async with await Client.connect(rs.b.url, namespace=ns) as in_b:
            hb = in_b.get_workflow_handle("reset-once")
            retried = await hb.reset_details(
                reason="retry me", to="first-workflow-task", request_id="reset-1"
            )
            assert retried == {**first, "reset": False}
            retried = await hb.reset_details(
                reason="again", to="last-workflow-task", request_id="reset-2"
            )
            assert retried == {**second, "reset": False}
            current = (await hb.describe())["execution"]
            assert current["run_id"] == second["run_id"]


async def test_a_retried_reset_of_a_reset_run_names_the_run_it_reset(client: Client) -> None:
    """A reset of a run made by a reset copies that run's ResetWorkflow task
    failure into its own history, before its own: the retry's answer named
    the first reset's source run as the run reset."""
    async with Worker(client, task_queue="waiting", workflows=[Waiter]):
        h = await client.start_workflow(Waiter, id="reset-twice", task_queue="waiting")

        async def task_done() -> bool:
            return "WorkflowTaskCompleted" in await kinds(client.get_workflow_handle("reset-twice"))

        await eventually(task_done, timeout=30, what="the first workflow task")
        first = await h.reset_details(reason="one", to="first-workflow-task", request_id="r-1")
        await eventually(task_done, timeout=30, what="the reset run's first task")
        current = client.get_workflow_handle("reset-twice")
        second = await current.reset_details(
            reason="two", to="last-workflow-task", request_id="r-2"
        )
        assert second["reset_from_run_id"] == first["run_id"]
        again = await current.reset_details(reason="two", to="last-workflow-task", request_id="r-2")
        assert again == {**second, "reset": False}


async def test_a_reset_reapplies_a_signal_that_waited_behind_the_running_task(
    client: Client,
) -> None:
    """A signal that came while the run's workflow task ran waits in its buffer,
    not yet in its history: the reset read only the history and lost it."""
    h = await client.start_workflow("ByHand", id="reset-buffered", task_queue="by-hand")
    base = ns_path(client.namespace)
    poll = {"task_queue": "by-hand", "identity": "t", "wait_s": 10}
    task = (await client.call("POST", f"{base}/workflow-tasks/poll", poll))["task"]
    done = {"task_token": task["task_token"], "identity": "t", "commands": []}
    await client.call("POST", f"{base}/workflow-tasks/complete", done)
    await h.signal("note", "one")
    # the second task is running when the second signal comes: it waits
    assert (await client.call("POST", f"{base}/workflow-tasks/poll", poll))["task"]
    await h.signal("note", "two")
    new_run = await h.reset(reason="redo", to="first-workflow-task")
    events = await client.get_workflow_handle("reset-buffered", run_id=new_run).history()
    signals = [e for e in events if e["event_type"] == "WorkflowExecutionSignaled"]
    assert [await client.decode_one(e["attributes"]["input"][0]) for e in signals] == [
        "one",
        "two",
    ]


async def test_a_reset_run_counts_the_signals_it_keeps_against_the_limit(
    client: Client, region: Region
) -> None:
    """The new run started its signal count at zero, so a run at the limit
    took as many signals again after a reset (and describe's warning went)."""
    region.store.config = dataclasses.replace(region.store.config, signals_per_run_max=3)
    h = await client.start_workflow("ByHand", id="reset-signal-limit", task_queue="by-hand")
    base = ns_path(client.namespace)
    poll = {"task_queue": "by-hand", "identity": "t", "wait_s": 10}
    for i in range(3):
        await h.signal("note", i)
    task = (await client.call("POST", f"{base}/workflow-tasks/poll", poll))["task"]
    done = {"task_token": task["task_token"], "identity": "t", "commands": []}
    await client.call("POST", f"{base}/workflow-tasks/complete", done)
    await h.reset(reason="redo", to="last-workflow-task")
    current = client.get_workflow_handle("reset-signal-limit")
    with pytest.raises(LimitExceededError):
        await current.signal("note", 99)
    assert any("signals" in w for w in (await current.describe())["warnings"])


async def test_a_reset_of_a_paused_run_lets_the_new_run_go_on(client: Client) -> None:
    """The reset is the operator's decision to run the workflow again from the
    point: the new run is not paused, as the pause after the point is not
    carried over (the old run's history keeps it)."""
    (h,) = await wedge(client, ["order-paused"])
    assert (await h.pause("look before the reset", request_id="p-1"))["changed"]
    point = completed_of_task_that_took(await h.history(), "step-two")
    new_run = await h.reset(event_id=point, reason="bad deploy 41")
    new = client.get_workflow_handle("order-paused", run_id=new_run)
    assert not (await new.describe())["execution"]["paused"]
    async with worker(client, DeployV3Fixed):
        assert await h.result(timeout=30) == {"steps": ["one", "two-v2"], "signals": ["go"]}
    assert "WorkflowExecutionPaused" not in await kinds(new)
    assert "WorkflowExecutionPaused" in [e["event_type"] for e in await h.history(run_id=h.run_id)]
