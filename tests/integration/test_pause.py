"""Pause and unpause on a real store: exact edges, timeouts, self-pause, pause
after failed workflow tasks with a fix deployed, and pause by query."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.apps.pausing import (
    DOWNSTREAM,
    SEEN,
    CallsOut,
    FragileV1,
    FragileV2,
    Patient,
    PausesThenContinues,
    SelfPausing,
    downstream_call,
    long_call,
)
from tests.apps.versioned import ACTIVITIES
from tests.apps.visibility import Waiter
from tests.conftest import Region
from tests.helpers import Proc, baton_json, eventually
from worker import Client, Worker
from worker._http import ns_path
from worker.errors import DeploymentNotFoundError, InvalidArgumentError, WorkflowPausedError

pytestmark = pytest.mark.integration
QUEUE = "pausing"
#: Events that only a workflow task writes: none may follow a pause until unpause.
TASK_EVENTS = {
    "WorkflowTaskScheduled",
    "WorkflowTaskStarted",
    "WorkflowTaskCompleted",
    "ActivityTaskScheduled",
    "TimerStarted",
    "MarkerRecorded",
}


def worker(client: Client, workflows: list[type], **kw: Any) -> Worker:
    kw.setdefault("activities", ACTIVITIES)
    return Worker(client, task_queue=QUEUE, workflows=workflows, **kw)


async def kinds(client: Client, wid: str) -> list[str]:
    return [e["event_type"] for e in await client.get_workflow_handle(wid).history()]


async def test_pause_mid_flight_records_inputs_dispatches_nothing_and_unpause_delivers_them(
    client: Client,
) -> None:
    async with worker(client, [Patient]):
        h = await client.start_workflow(Patient, 2.0, id="patient", task_queue=QUEUE)

        async def timer_started() -> bool:
            return "TimerStarted" in await kinds(client, h.id)

        await eventually(timer_started, timeout=20, what="the timer started")
        paused = await h.pause("incident downstream", request_id="pause-1")
        assert paused["changed"] and paused["pause"]["reason"] == "incident downstream"
        # the same request again, and another pause: nothing changes
        assert not (await h.pause("incident downstream", request_id="pause-1"))["changed"]
        assert not (await h.pause("again"))["changed"]
        await h.signal("note", "one")
        await h.signal("note", "two")
        with pytest.raises(WorkflowPausedError, match="incident downstream"):
            await h.update("poke")
        await asyncio.sleep(10)  # the timer comes due meanwhile
        events = await kinds(client, h.id)
        after = events[events.index("WorkflowExecutionPaused") + 1 :]
        assert after == ["WorkflowExecutionSignaled", "WorkflowExecutionSignaled", "TimerFired"]
        d = await h.describe()
        assert d["execution"]["paused"] and d["execution"]["pause"]["identity"]
        n = await client.count_workflows("Paused = true")
        assert int(n["count"]) == 1
        assert (await h.unpause("all clear"))["changed"]
        assert await h.result(timeout=30) == {"signals": ["one", "two"], "timer_fired": True}
        events = await kinds(client, h.id)
        assert events.count("WorkflowExecutionPaused") == 1
        assert events.count("WorkflowExecutionUnpaused") == 1
        assert not (await h.describe())["execution"]["paused"]


async def test_a_run_timeout_during_a_pause_ends_the_run(client: Client) -> None:
    async with worker(client, [Waiter]):
        h = await client.start_workflow(Waiter, id="short", task_queue=QUEUE, run_timeout=3)

        async def waiting() -> bool:
            return "WorkflowTaskCompleted" in await kinds(client, h.id)

        await eventually(waiting, timeout=20, what="the first task")
        await h.pause("look at it")

        async def timed_out() -> bool:
            return (await h.describe())["execution"]["status"] == "timed_out"

        await eventually(timed_out, timeout=20, what="the run timed out while paused")
        assert (await kinds(client, h.id))[-1] == "WorkflowExecutionTimedOut"


async def test_a_workflow_pauses_itself_and_replays_its_pause(client: Client) -> None:
    async with worker(client, [SelfPausing], max_cached_workflows=0):
        h = await client.start_workflow(SelfPausing, id="self", task_queue=QUEUE)

        async def paused() -> dict[str, Any] | None:
            d = await h.describe()
            return d if d["execution"]["paused"] else None

        d = await eventually(paused, timeout=20, what="the workflow paused itself")
        assert d["execution"]["pause"]["source"] == "workflow"
        assert d["execution"]["pause"]["reason"] == "waiting for a human to check the order"
        await asyncio.sleep(1.0)
        events = await kinds(client, h.id)
        # the pause and the activity are the task's commands, in the code's order;
        # the activity is never dispatched
        assert events[-3:] == [
            "WorkflowTaskCompleted",
            "WorkflowExecutionPaused",
            "ActivityTaskScheduled",
        ]
        assert (await h.describe())["pending_activities"][0]["state"] == "scheduled"
        await h.unpause("checked")
        # replayed from the start (no cache): the pause command matches its event
        assert await h.result(timeout=30) == "did after the check"
        failed = [k for k in await kinds(client, h.id) if k == "WorkflowTaskFailed"]
        assert failed == []


async def test_a_pause_of_the_code_carried_by_continue_as_new_replays_in_the_new_run(
    client: Client,
) -> None:
    async with worker(client, [PausesThenContinues]):
        h = await client.start_workflow(PausesThenContinues, 0, id="generations", task_queue=QUEUE)
        current = client.get_workflow_handle(h.id)

        async def next_run_paused() -> dict[str, Any] | None:
            d = (await current.describe())["execution"]
            return d if d["continued_from_run_id"] and d["paused"] else None

        d = await eventually(next_run_paused, timeout=20, what="the next run paused")
        assert d["pause"]["source"] == "workflow"
        await current.unpause("checked")
        assert await current.result(timeout=30) == 1
        assert "WorkflowTaskFailed" not in await kinds(client, h.id)


async def test_failing_tasks_pause_the_workflow_and_unpause_onto_the_fix_completes_it(
    client: Client,
) -> None:
    v1 = Worker(
        client,
        task_queue=QUEUE,
        workflows=[FragileV1],
        activities=ACTIVITIES,
        deployment=("fragile", "1"),
        pause_after_failed_workflow_tasks={"Fragile": 3},
    )
    async with v1:

        async def polled() -> bool:
            try:
                return len((await client.describe_deployment("fragile"))["versions"]) == 1
            except Exception:
                return False

        await eventually(polled, timeout=20, what="build 1 polls")
        await client.set_current_version("fragile", "1")
        h = await client.start_workflow("Fragile", id="fragile", task_queue=QUEUE)

        async def paused() -> dict[str, Any] | None:
            d = await h.describe()
            return d if d["execution"]["paused"] else None

        d = await eventually(paused, timeout=60, what="paused after three failed tasks")
        reason = d["execution"]["pause"]["reason"]
        assert "failed 3 times in a row" in reason and "RuntimeError" in reason
        assert "a bug in build 1" in reason and "raise RuntimeError" in reason  # the stack
        assert d["execution"]["pause"]["source"] == "failure"
        events = await kinds(client, h.id)
        assert events.count("WorkflowTaskFailed") == 3
        assert events[-1] == "WorkflowExecutionPaused"
        async with Worker(
            client,
            task_queue=QUEUE,
            workflows=[FragileV2],
            activities=ACTIVITIES,
            deployment=("fragile", "2"),
        ):

            async def both() -> bool:
                return len((await client.describe_deployment("fragile"))["versions"]) == 2

            await eventually(both, timeout=20, what="build 2 polls")
            await client.set_current_version("fragile", "2")
            await h.unpause("fix deployed", to_current=True)
            assert await h.result(timeout=30) == "fixed"
        history = await h.history()
        ran = [
            e["attributes"].get("worker_version")
            for e in history
            if e["event_type"] == "WorkflowTaskCompleted"
        ]
        assert ran[0] == "fragile:1" and ran[-1] == "fragile:2"


async def test_unpause_onto_a_build_the_deployment_lacks_is_refused_and_changes_nothing(
    client: Client,
) -> None:
    async with worker(
        client, [Waiter], deployment=("holding", "1"), default_versioning_behavior="pinned"
    ):

        async def polled() -> bool:
            try:
                return len((await client.describe_deployment("holding"))["versions"]) == 1
            except DeploymentNotFoundError:
                return False

        await eventually(polled, timeout=20, what="build 1 polls")
        await client.set_current_version("holding", "1")
        h = await client.start_workflow(Waiter, id="held", task_queue=QUEUE)

        async def first_task() -> bool:
            return "WorkflowTaskCompleted" in await kinds(client, h.id)

        await eventually(first_task, timeout=20, what="the first task")
        await h.pause("look first")
        before = await kinds(client, h.id)
        # a build no worker of the deployment polled, and a name none could declare
        with pytest.raises(DeploymentNotFoundError, match="no version '9'"):
            await h.unpause("onto the fix", build_id="9")
        with pytest.raises(InvalidArgumentError, match="not valid"):
            await h.unpause("onto the fix", build_id="bad:name")
        d = await h.describe()
        assert d["execution"]["paused"] and d["versioning"]["override"] is None
        assert await kinds(client, h.id) == before
        assert (await h.unpause("onto build 1", build_id="1"))["changed"]
        assert (await h.describe())["versioning"]["next_task_version"] == "holding:1"
        # a run that is not paused: the build is still checked, not waved through
        # as "changed: false"; neither call records anything (the workflow task
        # the unpause dispatched may still add its own events meanwhile)
        operator = {
            "WorkflowExecutionPaused",
            "WorkflowExecutionUnpaused",
            "WorkflowExecutionOptionsUpdated",
        }
        after = [k for k in await kinds(client, h.id) if k in operator]
        with pytest.raises(DeploymentNotFoundError, match="no version '9'"):
            await h.unpause("onto the fix", build_id="9")
        assert not (await h.unpause("onto build 1 again", build_id="1"))["changed"]
        assert [k for k in await kinds(client, h.id) if k in operator] == after


async def test_pause_and_unpause_a_hundred_workflows_by_query(client: Client) -> None:
    async with worker(client, [Waiter]):
        for i in range(100):
            await client.start_workflow(Waiter, id=f"w-{i:03}", task_queue=QUEUE)
        query = "WorkflowType = 'Waiter' AND ExecutionStatus = 'Running'"

        async def run_batch(op: str, **params: Any) -> dict[str, Any]:
            job = await client.start_batch(query, op, reason=f"{op} them", params=params, rps=500)

            async def ended() -> dict[str, Any] | None:
                d = await client.describe_batch(job["job_id"])
                return d if d["state"] != "running" else None

            return await eventually(ended, timeout=120, what=f"the {op} batch")

        paused = await run_batch("pause")
        assert (paused["state"], paused["done"], paused["skipped"]) == ("completed", 100, 0)
        assert int((await client.count_workflows("Paused = true"))["count"]) == 100
        again = await run_batch("pause")
        assert (again["done"], again["skipped"]) == (0, 100)  # nothing changed
        for i in range(100):
            await client.get_workflow_handle(f"w-{i:03}").signal("note", "stop")
        await asyncio.sleep(0.5)
        assert int((await client.count_workflows(query))["count"]) == 100  # still waiting
        unpaused = await run_batch("unpause")
        assert (unpaused["done"], unpaused["skipped"]) == (100, 0)
        for i in range(100):
            assert await client.get_workflow_handle(f"w-{i:03}").result(timeout=60) == ["stop"]
        assert int((await client.count_workflows("Paused = true"))["count"]) == 0


async def pending(h: Any) -> dict[str, Any] | None:
    acts = (await h.describe())["pending_activities"]
    return acts[0] if acts else None


async def test_a_paused_activity_is_not_retried_its_attempt_sees_it_and_reset_resumes_it(
    client: Client,
) -> None:
    SEEN.clear()
    async with worker(client, [CallsOut], activities=[long_call, downstream_call]):
        h = await client.start_workflow(CallsOut, "long", id="calls-long", task_queue=QUEUE)

        async def running() -> bool:
            a = await pending(h)
            return bool(a and a["state"] == "started" and a["heartbeat_details"])

        await eventually(running, timeout=20, what="the first attempt heartbeating")
        paused = await h.pause_activity("1", "the report service is overloaded")
        assert paused["changed"] and paused["paused"]

        async def held() -> dict[str, Any] | None:
            a = await pending(h)
            return a if a and a["state"] == "scheduled" else None

        a = await eventually(held, timeout=20, what="the attempt stopped, no retry")
        assert SEEN[0]["attempt"] == 1 and "saw_paused_at" in SEEN[0]
        assert a["paused"] and a["control"]["pause"]["reason"] == "the report service is overloaded"
        await asyncio.sleep(1.5)  # retries every 200 ms were it not paused
        assert len(SEEN) == 1 and (await pending(h))["state"] == "scheduled"
        await h.reset_activity("1", "try again from the start")
        result = await h.result(timeout=30)
        assert result.startswith("report resumed from step ")
        assert SEEN[1]["attempt"] == 1  # attempts start again from 1
        assert SEEN[1]["resumed_from"] == result.removeprefix("report resumed from ")
        events = await kinds(client, h.id)
        assert events.count("ActivityTaskPaused") == 1 and events.count("ActivityTaskReset") == 1


async def test_a_retry_policy_can_pause_at_max_attempts_and_a_reset_after_the_fix_completes(
    client: Client,
) -> None:
    SEEN.clear()
    DOWNSTREAM["fixed"] = False
    async with worker(client, [CallsOut], activities=[long_call, downstream_call]):
        h = await client.start_workflow(CallsOut, "down", id="calls-down", task_queue=QUEUE)

        async def paused() -> dict[str, Any] | None:
            a = await pending(h)
            return a if a and a["paused"] else None

        a = await eventually(paused, timeout=20, what="paused after its two attempts")
        assert a["control"]["pause"]["source"] == "retries"
        assert "downstream is down" in a["control"]["pause"]["reason"]
        assert [s["attempt"] for s in SEEN] == [1, 2]
        assert (await h.describe())["execution"]["status"] == "running"
        DOWNSTREAM["fixed"] = True
        await h.reset_activity("1", "downstream fixed")
        assert await h.result(timeout=30) == "downstream answered"
        assert [s["attempt"] for s in SEEN] == [1, 2, 1]


async def test_a_pause_during_a_running_task_comes_after_its_commands(
    client: Client, region: Region, tmp_path: Path
) -> None:
    proc = Proc(
        [
            *(sys.executable, "-m", "tests.apps.worker_app", "--url", region.url),
            *("--code", "pausing", "--task-queue", QUEUE),
        ],
        tmp_path / "worker.log",
    ).start()
    try:
        h = await client.start_workflow("SlowFirstTask", id="slow", task_queue=QUEUE)

        async def task_started() -> bool:
            return "WorkflowTaskStarted" in await kinds(client, h.id)

        await eventually(task_started, timeout=30, what="the slow task started")
        await h.pause("in the middle of a task")

        async def task_done() -> bool:
            return "WorkflowTaskCompleted" in await kinds(client, h.id)

        await eventually(task_done, timeout=30, what="the slow task completed")
        events = await kinds(client, h.id)
        assert events[-3:] == [
            "WorkflowTaskCompleted",
            "ActivityTaskScheduled",
            "WorkflowExecutionPaused",
        ]
        await asyncio.sleep(1.0)
        assert (await h.describe())["pending_activities"][0]["state"] == "scheduled"
        assert (await kinds(client, h.id))[-1] == "WorkflowExecutionPaused"
        await h.unpause()
        assert await h.result(timeout=30) == "did after"
    finally:
        proc.stop()


async def test_an_operator_pause_before_the_workflows_own_keeps_its_reason(
    client: Client, region: Region, tmp_path: Path
) -> None:
    """The operator's pause comes while the task that pauses the run itself
    runs: the run is paused once, as the operator said; the history has both."""
    proc = Proc(
        [
            *(sys.executable, "-m", "tests.apps.worker_app", "--url", region.url),
            *("--code", "pausing", "--task-queue", QUEUE),
        ],
        tmp_path / "worker.log",
    ).start()
    try:
        h = await client.start_workflow("SlowSelfPausing", id="both", task_queue=QUEUE)

        async def task_started() -> bool:
            return "WorkflowTaskStarted" in await kinds(client, h.id)

        await eventually(task_started, timeout=30, what="the slow task started")
        await h.pause("incident downstream")

        async def task_done() -> bool:
            return "WorkflowTaskCompleted" in await kinds(client, h.id)

        await eventually(task_done, timeout=30, what="the slow task completed")
        events = await h.history()
        paused = [e["attributes"] for e in events if e["event_type"] == "WorkflowExecutionPaused"]
        assert [p["source"] for p in paused] == ["workflow", "operator"]
        d = (await h.describe())["execution"]
        assert d["paused"] is True
        assert (d["pause"]["reason"], d["pause"]["source"]) == ("incident downstream", "operator")
        await h.unpause()
        assert await h.result(timeout=30) == "did after"
    finally:
        proc.stop()


async def test_a_run_that_closes_is_no_longer_paused(
    client: Client, region: Region, tmp_path: Path
) -> None:
    """`Paused = true` finds the runs waiting for an unpause: neither one
    terminated while paused nor one whose closing task a pause came behind."""
    proc = Proc(
        [
            *(sys.executable, "-m", "tests.apps.worker_app", "--url", region.url),
            *("--code", "pausing", "--task-queue", QUEUE),
        ],
        tmp_path / "worker.log",
    ).start()
    try:
        closing = await client.start_workflow("SlowLastTask", id="closing", task_queue=QUEUE)

        async def task_started() -> bool:
            return "WorkflowTaskStarted" in await kinds(client, closing.id)

        await eventually(task_started, timeout=30, what="the slow task started")
        assert (await closing.pause("too late"))["changed"]
        assert await closing.result(timeout=30) == "done"
    finally:
        proc.stop()
    # no worker: the pause is recorded at once, then the terminate
    ended = await client.start_workflow("SlowLastTask", id="ended", task_queue=QUEUE)
    await ended.pause("look first")
    await ended.terminate("not wanted")
    for h in (closing, ended):
        d = (await h.describe())["execution"]
        assert (d["paused"], d["pause"]) == (False, None), d
    assert int((await client.count_workflows("Paused = true"))["count"]) == 0
    # the history keeps what happened
    assert (await kinds(client, ended.id))[-2:] == [
        "WorkflowExecutionPaused",
        "WorkflowExecutionTerminated",
    ]


async def test_while_paused_queries_answer_cancel_waits_for_unpause_and_terminate_acts(
    client: Client,
) -> None:
    async with worker(client, [Waiter]):
        cancelled = await client.start_workflow(Waiter, id="to-cancel", task_queue=QUEUE)
        ended = await client.start_workflow(Waiter, id="to-terminate", task_queue=QUEUE)
        for h in (cancelled, ended):

            async def first_task(h: Any = h) -> bool:
                return "WorkflowTaskCompleted" in await kinds(client, h.id)

            await eventually(first_task, timeout=20, what="the first task")
            await h.signal("note", "before")

            # A query answers from the last completed workflow task, so wait
            # until the signal's task ran before pausing.
            async def noted(h: Any = h) -> bool:
                return await h.query("noted") == ["before"]  # type: ignore[no-any-return]

            await eventually(noted, timeout=20, what="the signal applied")
            await h.pause("look first")
        # Recorded while paused, but no workflow task runs to apply it.
        await cancelled.signal("note", "while paused")
        assert (await kinds(client, cancelled.id))[-1] == "WorkflowExecutionSignaled"
        assert await cancelled.query("noted") == ["before"]  # a worker replays it
        await cancelled.cancel("not needed")
        await asyncio.sleep(1.0)
        assert (await cancelled.describe())["execution"]["status"] == "running"
        assert (await kinds(client, cancelled.id))[-1] == "WorkflowExecutionCancelRequested"
        await ended.terminate("wrong order")
        assert (await ended.describe())["execution"]["status"] == "terminated"
        await cancelled.unpause()

        async def canceled() -> bool:
            return (await cancelled.describe())["execution"]["status"] == "canceled"

        await eventually(canceled, timeout=20, what="the cancel acted on at unpause")


async def test_the_cli_pauses_workflows_and_activities(client: Client, region: Region) -> None:
    async def baton(*args: str) -> Any:
        code, out, err = await baton_json(region.config_path, *args)
        assert code == 0, err
        return out

    SEEN.clear()
    async with worker(client, [CallsOut], activities=[long_call, downstream_call]):
        h = await client.start_workflow(CallsOut, "long", id="calls-cli", task_queue=QUEUE)

        async def running() -> bool:
            a = await pending(h)
            return bool(a and a["state"] == "started" and a["heartbeat_details"])

        await eventually(running, timeout=20, what="the attempt heartbeating")
        out = await baton("activity", "pause", h.id, "1", "--reason", "from the cli")
        assert out["changed"] and out["paused"]
        # the answer names the run, as a workflow pause's does
        assert (out["workflow_id"], out["run_id"]) == (h.id, h.run_id), out
        out = await baton("workflow", "pause", h.id, "--reason", "look")
        assert out["paused"] and out["pause"]["reason"] == "look"
        assert (await baton("workflow", "unpause", h.id))["changed"]
        out = await baton("activity", "reset", h.id, "1", "--keep-paused", "--run-id", h.run_id)
        assert out["changed"] and out["paused"]
        assert (out["workflow_id"], out["run_id"]) == (h.id, h.run_id), out
        assert (await pending(h))["paused"]
        assert (await baton("activity", "unpause", h.id, "1"))["changed"]
        assert (await h.result(timeout=30)).startswith("report resumed from step ")


async def test_a_retried_pause_or_unpause_answers_as_the_first_did(client: Client) -> None:
    """A client that lost the answer and sends the same request id again gets
    the same answer (only ``changed`` says it was a retry), not a shorter one
    without ``paused`` and ``pause``."""
    h = await client.start_workflow("Idle", id="retried-pause", task_queue="nobody-polls")
    first = await h.pause("look at it", request_id="p-1")
    again = await h.pause("look at it", request_id="p-1")
    assert first["changed"] and not again["changed"]
    assert {**again, "changed": True} == first
    assert again["paused"] and again["pause"]["request_id"] == "p-1"
    first = await h.unpause("go on", request_id="u-1")
    again = await h.unpause("go on", request_id="u-1")
    assert first["changed"] and not again["changed"]
    assert {**again, "changed": True} == first
    assert again["paused"] is False and again["pause"] is None
    events = await kinds(client, "retried-pause")
    assert events.count("WorkflowExecutionPaused") == 1
    assert events.count("WorkflowExecutionUnpaused") == 1


async def test_a_retried_activity_pause_answers_as_the_first_did(client: Client) -> None:
    """The same request id again answered only ``{activity_id, changed}``:
    no ``paused``, no ``scheduled_event_id``."""
    h = await client.start_workflow("Manual", id="retried-activity", task_queue="by-hand")
    base = ns_path(client.namespace)
    poll = {"task_queue": "by-hand", "wait_s": 10}
    task = (await client.call("POST", f"{base}/workflow-tasks/poll", poll))["task"]
    schedule = {
        "activity_id": "a1",
        "activity_type": "Slow",
        "task_queue": "nobody-polls",
        "start_to_close_s": 60,
    }
    await client.call(
        "POST",
        f"{base}/workflow-tasks/complete",
        {
            "task_token": task["task_token"],
            "commands": [{"type": "ScheduleActivity", "attributes": schedule}],
        },
    )
    for action in ("pause", "unpause", "reset"):
        call = getattr(h, f"{action}_activity")
        first = await call("a1", "why", request_id=f"{action}-1")
        again = await call("a1", "why", request_id=f"{action}-1")
        assert first["changed"] and not again["changed"], action
        assert {**again, "changed": True} == first, action
