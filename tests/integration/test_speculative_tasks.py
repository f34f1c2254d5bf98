"""Workflow tasks a worker runs ahead and sends with an activity's result
(store/speculation.py), on a real server and PostgreSQL.

The server records the result, the task and its commands in one write when the
run is as the worker assumed, and otherwise the result alone: these tests
drive both sides, through the SDK and by hand on the HTTP API.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ops.bench_measure import ensure_statement_stats
from tests.apps.workflows import ALL_ACTIVITIES, T10, Chain, ThreeSteps, step
from tests.conftest import Region
from tests.helpers import eventually
from tests.integration.test_run_cache import _calls
from worker import Client, Worker, workflow
from worker._http import ns_path
from worker.errors import InvalidArgumentError

pytestmark = pytest.mark.integration
QUEUE = "speculation"


@workflow.defn(name="Clocked")
class Clocked:
    """Records, at each step, the time and history length its code saw."""

    def __init__(self) -> None:
        self.seen: list[list[Any]] = []

    @workflow.run
    async def run(self, steps: int) -> list[list[Any]]:
        x = 0
        for _ in range(steps):
            info = workflow.info()
            self.seen.append([workflow.now().isoformat(), info.history_length, x])
            x = await workflow.execute_activity(step, x, start_to_close_timeout=T10)
            if workflow.now().microsecond % 2:  # code that branches on its time
                await workflow.sleep(0)
        self.seen.append([workflow.now().isoformat(), workflow.info().history_length, x])
        return self.seen

    @workflow.query
    def state(self) -> list[list[Any]]:
        return self.seen


def a_worker(client: Client, **options: Any) -> Worker:
    return Worker(
        client,
        task_queue=QUEUE,
        workflows=[ThreeSteps, Chain, Clocked],
        activities=ALL_ACTIVITIES,
        **options,
    )


#: The run write's statement (store/sql/queries.sql), as pg_stat_statements keeps it.
RUN_WRITE = "-- A run's write"


# --------------------------------------------------------------------------- through the SDK


async def test_each_activity_result_and_the_task_it_schedules_are_one_write(
    region: Region, client: Client
) -> None:
    """Three activities: a start, the first task, three result-and-task writes
    (eight writes without speculation)."""
    assert await ensure_statement_stats(region.dsn), "the test cluster preloads pg_stat_statements"
    counts: dict[bool, int] = {}
    for on in (True, False):
        async with a_worker(client, speculative_workflow_tasks=on) as worker:
            await client.execute_workflow(ThreeSteps, 0, id=f"warm-{on}", task_queue=QUEUE)
            before = await _calls(region, RUN_WRITE)
            for i in range(5):
                got = await client.execute_workflow(
                    ThreeSteps, i, id=f"three-{on}-{i}", task_queue=QUEUE
                )
                assert got == i + 3
            counts[on] = await _calls(region, RUN_WRITE) - before
            assert worker.speculation_stats() == {"accepted": 3 * 6 if on else 0, "refused": 0}
    assert counts == {True: 5 * 5, False: 5 * 8}
    assert region.store.speculation["accepted"] == 3 * 6
    assert sum(region.store.speculation.values()) == 3 * 6  # nothing refused

    # The task's events share its write's time, the time its code saw.
    events = await client.get_workflow_handle("three-True-4").history()
    kinds = [e["event_type"] for e in events]
    at = kinds.index("ActivityTaskCompleted")
    assert kinds[at - 1 : at + 5] == [
        "ActivityTaskStarted",
        "ActivityTaskCompleted",
        "WorkflowTaskScheduled",
        "WorkflowTaskStarted",
        "WorkflowTaskCompleted",
        "ActivityTaskScheduled",
    ]
    assert len({e["event_time"] for e in events[at - 1 : at + 5]}) == 1


async def test_a_history_written_ahead_replays_as_the_code_ran_it(client: Client) -> None:
    """What the code saw (its time, the history length) in tasks run ahead is
    what history says, so a worker with nothing cached replays it exactly."""
    async with a_worker(client):
        seen = await client.execute_workflow(Clocked, 6, id="clocked", task_queue=QUEUE)
    handle = client.get_workflow_handle("clocked")
    events = await handle.history()
    started = {e["event_id"]: e for e in events if e["event_type"] == "WorkflowTaskStarted"}
    for at, length, _x in seen:
        event = started[length]  # history_length counts the task's started event
        assert datetime.fromisoformat(event["event_time"]) == datetime.fromisoformat(at)
    assert [x for _, _, x in seen] == list(range(7))
    # a fresh worker (empty cache) replays the whole history to answer
    async with a_worker(client, max_cached_workflows=1):
        assert await handle.query("state") == seen


@workflow.defn(name="FanOut")
class FanOut:
    """Twenty activities at once, then three one after another."""

    @workflow.run
    async def run(self, n: int) -> int:
        xs = await asyncio.gather(
            *[workflow.execute_activity(step, i, start_to_close_timeout=T10) for i in range(n)]
        )
        y = 0
        for _ in range(3):
            y = await workflow.execute_activity(step, y, start_to_close_timeout=T10)
        return sum(xs) + y


async def test_a_fan_out_lands_its_results_alone_and_the_steps_after_run_ahead(
    region: Region, client: Client
) -> None:
    """Results of activities running side by side would race each other's
    task run ahead (each refusal costing a replay): they are reported alone,
    and their tasks take several at once; the steps after run ahead."""
    async with Worker(
        client, task_queue=QUEUE, workflows=[FanOut], activities=ALL_ACTIVITIES
    ) as worker:
        for i in range(5):
            got = await client.execute_workflow(FanOut, 20, id=f"fan-{i}", task_queue=QUEUE)
            assert got == sum(range(1, 21)) + 3
        assert worker._cache.misses == 0  # no task needed a replay
    assert dict(region.store.speculation) == {"accepted": 5 * 3}


BROKEN = {"after_first_step": True}


@workflow.defn(name="BuggyAfterAStep")
class BuggyAfterAStep:
    @workflow.run
    async def run(self) -> int:
        x = await workflow.execute_activity(step, 1, start_to_close_timeout=T10)
        if BROKEN["after_first_step"]:
            raise RuntimeError("a bug in the code after the first step")
        return await workflow.execute_activity(step, x, start_to_close_timeout=T10)


async def test_a_bug_in_a_task_run_ahead_fails_the_real_task_and_a_fix_finishes_the_run(
    client: Client,
) -> None:
    """The code raises in the task run ahead: the result is reported alone, the
    real task fails as it would have (retried, not lost); fixed code finishes."""
    BROKEN["after_first_step"] = True
    handle = await client.start_workflow(BuggyAfterAStep, id="buggy", task_queue=QUEUE)
    async with Worker(
        client, task_queue=QUEUE, workflows=[BuggyAfterAStep], activities=ALL_ACTIVITIES
    ):

        async def failed_task() -> bool | None:
            kinds = [e["event_type"] for e in await handle.history()]
            return True if "WorkflowTaskFailed" in kinds else None

        await eventually(failed_task, timeout=20, what="the buggy task to fail")
    BROKEN["after_first_step"] = False
    async with Worker(
        client, task_queue=QUEUE, workflows=[BuggyAfterAStep], activities=ALL_ACTIVITIES
    ):
        assert await handle.result(timeout=30) == 3
    events = await handle.history()
    assert [e["event_type"] for e in events].count("ActivityTaskCompleted") == 2


async def test_continue_as_new_after_an_activity_is_recorded_ahead(client: Client) -> None:
    """A command beside the run (a new run) takes the locked write, still one."""
    async with a_worker(client):
        got = await client.execute_workflow(Chain, 0, 3, id="chain", task_queue=QUEUE)
    assert got == "done after 3 continue-as-new runs"


async def test_a_signal_while_an_activity_runs_is_seen_and_nothing_is_lost(
    client: Client,
) -> None:
    """Signals land between the tasks run ahead; every one is delivered once."""

    @workflow.defn(name="Collects")
    class Collects:
        def __init__(self) -> None:
            self.got: list[int] = []

        @workflow.signal
        def add(self, n: int) -> None:
            self.got.append(n)

        @workflow.run
        async def run(self, n: int) -> list[int]:
            x = 0
            while len(self.got) < n:
                x = await workflow.execute_activity(step, x, start_to_close_timeout=T10)
            return sorted(self.got)

    async with Worker(client, task_queue=QUEUE, workflows=[Collects], activities=ALL_ACTIVITIES):
        handle = await client.start_workflow(Collects, 30, id="collects", task_queue=QUEUE)
        for i in range(30):
            await handle.signal("add", i)
        assert await handle.result() == list(range(30))


async def test_a_worker_whose_clock_is_refused_stops_running_tasks_ahead(
    clock_region: Region, clock_client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    """The server's clock an hour ahead of the worker's: the first task run
    ahead is refused for its time, and the worker stops trying (each refusal
    costs it a replay) instead of being refused at every step."""
    await clock_client.advance_test_clock(3600)
    async with a_worker(clock_client):
        for i in range(3):
            got = await clock_client.execute_workflow(
                ThreeSteps, i, id=f"skewed-{i}", task_queue=QUEUE
            )
            assert got == i + 3
    assert dict(clock_region.store.speculation) == {"clock": 1}
    assert any("is this host's clock synced" in r.getMessage() for r in caplog.records)


# --------------------------------------------------------------------------- by hand


class ByHand:
    """A run driven on the HTTP API: its first task completed with one
    activity handed back eagerly."""

    def __init__(self, client: Client, workflow_id: str) -> None:
        self.client = client
        self.workflow_id = workflow_id
        self.activity: dict[str, Any] = {}
        self.tail: dict[str, Any] = {}
        self.queue = ""

    def path(self, route: str) -> str:
        return ns_path(self.client.namespace, route)

    async def open(self) -> ByHand:
        self.queue = queue = f"by-hand-{uuid.uuid4().hex[:8]}"
        await self.client.start_workflow("ThreeSteps", 1, id=self.workflow_id, task_queue=queue)
        poll = {"task_queue": queue, "identity": "hand", "wait_s": 5}
        task = (await self.client.call("POST", self.path("/workflow-tasks/poll"), poll))["task"]
        done = await self.client.call(
            "POST",
            self.path("/workflow-tasks/complete"),
            {
                "task_token": task["task_token"],
                "identity": "hand",
                "eager_activities": 1,
                "return_history_tail": True,
                "commands": [schedule("1", queue)],
            },
        )
        [self.activity] = done["activity_tasks"]
        self.tail = done["history_tail"]
        return self

    async def complete(
        self, spec: dict[str, Any] | None = None, *, ahead: bool = True, **params: Any
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "task_token": self.activity["task_token"],
            "result": {"data": "Mg==", "metadata": {"encoding": "json/plain"}},
            "identity": "hand",
        }
        if ahead:
            body["workflow_task"] = {
                "next_event_id": self.tail["next_event_id"],
                "version": self.tail["events"][-1]["version"],
                "started_time": datetime.now(UTC).isoformat(),
                "commands": [schedule("2", None)],
                **(spec or {}),
            }
        got: dict[str, Any] = await self.client.call(
            "POST",
            self.path("/activity-tasks/complete"),
            body,
            params={"return_new_workflow_task": "true", **params},
            retry=False,
        )
        return got

    async def kinds(self) -> list[str]:
        events = await self.client.get_workflow_handle(self.workflow_id).history()
        return [e["event_type"] for e in events]


def schedule(activity_id: str, queue: str | None) -> dict[str, Any]:
    return {
        "type": "ScheduleActivity",
        "attributes": {
            "activity_id": activity_id,
            "activity_type": "step",
            "task_queue": queue,
            "input": [{"data": "MQ==", "metadata": {"encoding": "json/plain"}}],
            "start_to_close_s": 10,
        },
    }


NEGATIVE_TIMER = {"type": "StartTimer", "attributes": {"timer_id": "t", "duration_s": -1}}

RESULT_ALONE = [
    "ActivityTaskStarted",
    "ActivityTaskCompleted",
    "WorkflowTaskScheduled",
    "WorkflowTaskStarted",
]


async def test_a_task_that_fits_is_recorded_with_the_result(client: Client) -> None:
    run = await ByHand(client, "fits").open()
    assert run.tail["events"][0]["event_type"] == "WorkflowTaskCompleted"
    assert run.tail["events"][-1]["event_type"] == "ActivityTaskScheduled"
    before = await run.kinds()
    assert len(before) + 1 == run.tail["next_event_id"]
    got = await run.complete()
    assert got["speculation"] == "accepted"
    assert got["workflow_task"] is None
    after = await run.kinds()
    assert after[len(before) :] == [*RESULT_ALONE, "WorkflowTaskCompleted", "ActivityTaskScheduled"]
    # the next tail starts after the task run ahead
    assert got["history_tail"]["next_event_id"] == len(after) + 1
    assert [e["event_id"] for e in got["history_tail"]["events"]] == [
        len(after) - 1,
        len(after),
    ]


@pytest.mark.parametrize(
    ("spec", "reason"),
    [
        ({"next_event_id": -1}, "history moved on"),
        ({"version": 99}, "history moved on"),
        (
            {"started_time": (datetime.now(UTC) - timedelta(hours=1)).isoformat()},
            "behind the server's clock",
        ),
        (
            {
                "commands": [
                    {"type": "StartTimer", "attributes": {"timer_id": "t", "duration_s": -1}}
                ]
            },
            "commands are invalid",
        ),
    ],
    ids=["stale-event-id", "stale-version", "clock", "invalid-commands"],
)
async def test_a_task_that_does_not_fit_leaves_the_result_recorded_alone(
    region: Region, client: Client, spec: dict[str, Any], reason: str
) -> None:
    run = await ByHand(client, f"refused-{uuid.uuid4().hex[:6]}").open()
    if spec.get("next_event_id") == -1:
        spec = {"next_event_id": run.tail["next_event_id"] + 1}
    before = await run.kinds()
    got = await run.complete(spec)
    assert got["speculation"] == "refused"
    assert reason in got["speculation_refused"]
    # the result and the real task it schedules, handed back; nothing of the other
    assert await run.kinds() == [*before, *RESULT_ALONE]
    task = got["workflow_task"]
    assert task["previous_started_event_id"] == 3
    assert [e["event_type"] for e in task["events"]][-4:] == RESULT_ALONE
    assert sum(n for k, n in region.store.speculation.items() if k != "accepted") == 1


async def test_a_signal_since_the_tail_refuses_the_task_and_is_delivered(client: Client) -> None:
    run = await ByHand(client, "signaled").open()
    await client.get_workflow_handle("signaled").signal("poke", 7)
    got = await run.complete()
    assert got["speculation"] == "refused"
    assert "history moved on" in got["speculation_refused"]
    assert got["workflow_task"] is None  # the signal's task was on the queue already
    poll = {"task_queue": run.queue, "identity": "hand", "wait_s": 5}
    task = (await client.call("POST", run.path("/workflow-tasks/poll"), poll))["task"]
    kinds = [e["event_type"] for e in task["events"]]
    assert kinds == [
        "WorkflowTaskCompleted",
        "ActivityTaskScheduled",
        "WorkflowExecutionSignaled",
        "WorkflowTaskScheduled",
        "ActivityTaskStarted",
        "ActivityTaskCompleted",
        "WorkflowTaskStarted",
    ]


async def test_bad_speculative_input_is_refused_with_a_typed_error_and_changes_nothing(
    client: Client,
) -> None:
    run = await ByHand(client, "bad-input").open()
    before = await run.kinds()
    with pytest.raises(InvalidArgumentError, match="ISO 8601"):
        await run.complete({"started_time": "yesterday"})
    with pytest.raises(InvalidArgumentError, match="return_new_workflow_task"):
        await run.complete(return_new_workflow_task="false")
    assert await run.kinds() == before
    # the activity is still open: its result is taken as usual
    assert (await run.complete())["speculation"] == "accepted"
