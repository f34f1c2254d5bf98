"""The deterministic workflow runtime against an in-test history simulator.

``Sim`` plays the server: it keeps a history, wraps each activation in
WorkflowTaskScheduled/Started/Completed, turns the returned commands into
command events, and lets a test inject activity outcomes, timer firings,
signals and cancel requests. Replay tests feed the recorded history to fresh
instances of the same or of changed workflow code.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from worker import activity, workflow
from worker._workflow_instance import StaleInstanceError, WorkflowInstance, WorkflowTaskError
from worker.common import RetryPolicy
from worker.converter import PayloadConverter
from worker.errors import (
    ActivityError,
    ApplicationError,
    CanceledError,
    NonDeterminismError,
    QueryFailedError,
    TimeoutError_,
)
from worker.wire import Command, CommandType, EventType, Failure, HistoryEvent, Payload

CONV = PayloadConverter()
T0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
TIMEOUT = timedelta(seconds=10)


def enc(value: Any) -> dict[str, Any]:
    return CONV.to_payload(value).model_dump()


def dec(payload: Any) -> Any:
    return CONV.from_payload(Payload.model_validate(payload))


def dump(commands: Sequence[Command]) -> list[dict[str, Any]]:
    return [c.model_dump(mode="json") for c in commands]


def types(commands: Sequence[Command]) -> list[CommandType]:
    return [c.type for c in commands]


class Sim:
    """A tiny stand-in for the server's history keeping (no network, no database)."""

    def __init__(
        self,
        cls: type,
        *args: Any,
        run_id: str = "run-1",
        workflow_id: str = "wf-1",
        converter: PayloadConverter = CONV,
    ) -> None:
        self.cls = cls
        self.converter = converter
        self.run_id = run_id
        self.workflow_id = workflow_id
        self.events: list[HistoryEvent] = []
        self.clock = T0
        self.scheduled: dict[str, int] = {}  # activity id -> ActivityTaskScheduled event id
        self.timers: dict[str, int] = {}  # timer id -> TimerStarted event id
        self.tasks: list[tuple[int, list[Command]]] = []  # (started event id, commands)
        self.task_scheduled: HistoryEvent | None = None
        self.instance = self.new_instance(cls)
        self.add(
            EventType.WORKFLOW_EXECUTION_STARTED,
            workflow_type=workflow.WorkflowDefinition.from_class(cls).name,
            task_queue="q",
            input=[enc(a) for a in args],
            first_run_id=run_id,
            continued_from_run_id=None,
            attempt=1,
            memo={"team": "payments"},
        )
        self.schedule_task()

    def new_instance(self, cls: type | None = None) -> WorkflowInstance:
        return WorkflowInstance(
            definition=workflow.WorkflowDefinition.from_class(cls or self.cls),
            namespace="default",
            workflow_id=self.workflow_id,
            run_id=self.run_id,
            converter=self.converter,
        )

    # ---------------------------------------------------------------- history

    def add(self, event_type: EventType, **attributes: Any) -> HistoryEvent:
        event = HistoryEvent(
            event_id=len(self.events) + 1,
            event_type=event_type,
            event_time=self.clock.isoformat(),
            version=1,
            attributes=attributes,
        )
        self.events.append(event)
        return event

    def advance(self, seconds: float) -> None:
        self.clock += timedelta(seconds=seconds)

    def schedule_task(self) -> None:
        if self.task_scheduled is None:
            self.task_scheduled = self.add(
                EventType.WORKFLOW_TASK_SCHEDULED, task_queue="q", attempt=1
            )

    def _start_task(self, suggest_continue_as_new: bool) -> HistoryEvent:
        assert self.task_scheduled is not None, "no workflow task is scheduled"
        started = self.add(
            EventType.WORKFLOW_TASK_STARTED,
            scheduled_event_id=self.task_scheduled.event_id,
            identity="test",
            history_length=len(self.events) + 1,
            suggest_continue_as_new=suggest_continue_as_new,
        )
        return started

    def run_task(
        self,
        *,
        updates: Sequence[dict[str, Any]] = (),
        instance: WorkflowInstance | None = None,
        suggest_continue_as_new: bool = False,
    ) -> list[Command]:
        """Run the scheduled workflow task on the (cached) instance and record its commands."""
        inst = instance or self.instance
        started = self._start_task(suggest_continue_as_new)
        commands = inst.activate(self.events[inst.last_event_id :], updates=updates)
        assert self.task_scheduled is not None
        self.add(
            EventType.WORKFLOW_TASK_COMPLETED,
            scheduled_event_id=self.task_scheduled.event_id,
            started_event_id=started.event_id,
        )
        self.task_scheduled = None
        self.tasks.append((started.event_id, commands))
        by_id = {u["update_id"]: u for u in updates}
        for command in commands:
            self._record(command, by_id)
        return commands

    def fail_task(self, *, instance: WorkflowInstance | None = None) -> BaseException:
        """Run the scheduled task expecting it to fail; record WorkflowTaskFailed."""
        inst = instance or self.instance
        started = self._start_task(False)
        with pytest.raises((WorkflowTaskError, NonDeterminismError)) as info:
            inst.activate(self.events[inst.last_event_id :])
        assert self.task_scheduled is not None
        self.add(
            EventType.WORKFLOW_TASK_FAILED,
            scheduled_event_id=self.task_scheduled.event_id,
            started_event_id=started.event_id,
            cause="WorkflowTaskFailed",
        )
        self.task_scheduled = None
        self.schedule_task()
        return info.value

    def _record(self, command: Command, updates: dict[str, dict[str, Any]]) -> None:
        a = command.attributes
        t = command.type
        if t == CommandType.SCHEDULE_ACTIVITY:
            ev = self.add(
                EventType.ACTIVITY_TASK_SCHEDULED,
                **{k: a[k] for k in ("activity_id", "activity_type", "input")},
                task_queue=a["task_queue"] or "q",
            )
            self.scheduled[a["activity_id"]] = ev.event_id
        elif t == CommandType.START_TIMER:
            ev = self.add(
                EventType.TIMER_STARTED, timer_id=a["timer_id"], duration_s=a["duration_s"]
            )
            self.timers[a["timer_id"]] = ev.event_id
        elif t == CommandType.CANCEL_TIMER:
            self.add(
                EventType.TIMER_CANCELED,
                timer_id=a["timer_id"],
                started_event_id=self.timers[a["timer_id"]],
            )
        elif t == CommandType.REQUEST_CANCEL_ACTIVITY:
            self.add(
                EventType.ACTIVITY_TASK_CANCEL_REQUESTED,
                scheduled_event_id=self.scheduled[a["activity_id"]],
            )
        elif t == CommandType.RECORD_MARKER:
            self.add(EventType.MARKER_RECORDED, marker_name=a["marker_name"], details=a["details"])
        elif t == CommandType.ACCEPT_UPDATE:
            u = updates[a["update_id"]]
            self.add(
                EventType.WORKFLOW_EXECUTION_UPDATE_ACCEPTED,
                update_id=u["update_id"],
                name=u["name"],
                input=[Payload.model_validate(p).model_dump() for p in u["input"]],
                identity="client",
            )
        elif t == CommandType.COMPLETE_UPDATE:
            self.add(
                EventType.WORKFLOW_EXECUTION_UPDATE_COMPLETED,
                update_id=a["update_id"],
                result=a["result"],
                failure=a["failure"],
            )
        elif t == CommandType.REJECT_UPDATE:
            pass  # no event: the caller is told directly
        elif t == CommandType.COMPLETE_WORKFLOW:
            self.add(EventType.WORKFLOW_EXECUTION_COMPLETED, result=a["result"])
        elif t == CommandType.FAIL_WORKFLOW:
            self.add(EventType.WORKFLOW_EXECUTION_FAILED, failure=a["failure"])
        elif t == CommandType.CANCEL_WORKFLOW:
            self.add(EventType.WORKFLOW_EXECUTION_CANCELED, details=a["details"])
        elif t == CommandType.CONTINUE_AS_NEW:
            self.add(
                EventType.WORKFLOW_EXECUTION_CONTINUED_AS_NEW,
                new_run_id="run-2",
                workflow_type=a["workflow_type"] or "x",
                task_queue=a["task_queue"] or "q",
                input=a["input"],
            )
        else:  # pragma: no cover
            raise AssertionError(f"unexpected command {t}")

    # ---------------------------------------------------------------- inputs

    def _activity_started(self, activity_id: str) -> int:
        return self.add(
            EventType.ACTIVITY_TASK_STARTED,
            scheduled_event_id=self.scheduled[activity_id],
            attempt=1,
            identity="test",
        ).event_id

    def complete_activity(self, activity_id: str, result: Any) -> None:
        started = self._activity_started(activity_id)
        self.add(
            EventType.ACTIVITY_TASK_COMPLETED,
            scheduled_event_id=self.scheduled[activity_id],
            started_event_id=started,
            result=enc(result),
        )
        self.schedule_task()

    def fail_activity(self, activity_id: str, failure: Failure) -> None:
        started = self._activity_started(activity_id)
        self.add(
            EventType.ACTIVITY_TASK_FAILED,
            scheduled_event_id=self.scheduled[activity_id],
            started_event_id=started,
            failure=failure.model_dump(),
        )
        self.schedule_task()

    def time_out_activity(self, activity_id: str) -> None:
        self.add(
            EventType.ACTIVITY_TASK_TIMED_OUT,
            scheduled_event_id=self.scheduled[activity_id],
            started_event_id=None,
            timeout_type="START_TO_CLOSE",
            failure=Failure(message="activity timed out", type="TimeoutError").model_dump(),
        )
        self.schedule_task()

    def fire_timer(self, timer_id: str) -> None:
        self.add(EventType.TIMER_FIRED, timer_id=timer_id, started_event_id=self.timers[timer_id])
        self.schedule_task()

    def signal(self, name: str, *args: Any) -> None:
        self.add(
            EventType.WORKFLOW_EXECUTION_SIGNALED,
            signal_name=name,
            input=[enc(a) for a in args],
            identity="client",
        )
        self.schedule_task()

    def request_cancel(self) -> None:
        self.add(EventType.WORKFLOW_EXECUTION_CANCEL_REQUESTED, reason="stop", identity="client")
        self.schedule_task()

    # ---------------------------------------------------------------- replay

    def replay(self, cls: type | None = None) -> WorkflowInstance:
        """A fresh instance that replayed the whole history (no live task)."""
        inst = self.new_instance(cls)
        assert inst.activate(self.events, run_final=False) == []
        return inst

    def replay_task(self, index: int, cls: type | None = None) -> list[Command]:
        """A fresh instance's commands for task ``index`` (history up to its start)."""
        started_id = self.tasks[index][0]
        return self.new_instance(cls).activate(self.events[:started_id])


def event_types(sim: Sim) -> list[str]:
    return [e.event_type.value for e in sim.events]


# =========================================================================== workflows


@activity.defn
async def step(x: int) -> int:
    return x + 1


@activity.defn(name="double")
async def double(x: int) -> int:
    return x * 2


@workflow.defn(name="Pipeline")
class Pipeline:
    def __init__(self) -> None:
        self.approved_by: str | None = None
        self.stage = "init"

    @workflow.run
    async def run(self, n: int) -> dict[str, Any]:
        a = await workflow.execute_activity(
            step, n, start_to_close_timeout=TIMEOUT, retry_policy=RetryPolicy(maximum_attempts=3)
        )
        self.stage = "sleeping"
        await workflow.sleep(timedelta(seconds=5))
        b = await workflow.execute_activity(double, a, start_to_close_timeout=TIMEOUT)
        self.stage = "waiting"
        await workflow.wait_condition(lambda: self.approved_by is not None)
        self.stage = "finishing"
        c = await workflow.execute_activity("step", b, schedule_to_close_timeout=TIMEOUT)
        return {
            "result": c,
            "approved_by": self.approved_by,
            "now": workflow.now().isoformat(),
            "rand": workflow.random().randint(0, 10**9),
            "uuid": str(workflow.uuid4()),
        }

    @workflow.signal
    def approve(self, who: str) -> None:
        self.approved_by = who

    @workflow.query
    def stage_of(self) -> str:
        return self.stage


@workflow.defn(name="Pipeline")
class PipelineSwapped(Pipeline):
    """The same workflow with its first two activities in the other order."""

    @workflow.run
    async def run(self, n: int) -> dict[str, Any]:
        a = await workflow.execute_activity(double, n, start_to_close_timeout=TIMEOUT)
        await workflow.sleep(timedelta(seconds=5))
        b = await workflow.execute_activity(step, a, start_to_close_timeout=TIMEOUT)
        return {"result": b}


def run_pipeline() -> Sim:
    sim = Sim(Pipeline, 5)
    assert types(sim.run_task()) == [CommandType.SCHEDULE_ACTIVITY]
    sim.advance(1)
    sim.complete_activity("1", 6)
    assert types(sim.run_task()) == [CommandType.START_TIMER]
    sim.advance(5)
    sim.fire_timer("1")
    assert types(sim.run_task()) == [CommandType.SCHEDULE_ACTIVITY]
    sim.complete_activity("2", 12)
    assert sim.run_task() == []
    sim.advance(30)
    sim.signal("approve", "ann")
    assert types(sim.run_task()) == [CommandType.SCHEDULE_ACTIVITY]
    sim.advance(1)
    sim.complete_activity("3", 13)
    assert types(sim.run_task()) == [CommandType.COMPLETE_WORKFLOW]
    return sim


# =========================================================================== core path


def test_pipeline_runs_to_completion_with_expected_commands_and_events() -> None:
    sim = run_pipeline()
    first = sim.tasks[0][1][0]
    assert first.attributes["activity_type"] == "step"
    assert first.attributes["activity_id"] == "1"
    assert first.attributes["start_to_close_s"] == 10.0
    assert first.attributes["schedule_to_close_s"] is None
    assert first.attributes["retry_policy"]["maximum_attempts"] == 3
    assert [dec(p) for p in first.attributes["input"]] == [5]
    timer = sim.tasks[1][1][0]
    assert timer.attributes == {"timer_id": "1", "duration_s": 5.0}
    second = sim.tasks[2][1][0]
    assert (second.attributes["activity_type"], second.attributes["activity_id"]) == ("double", "2")
    assert [dec(p) for p in second.attributes["input"]] == [6]
    third = sim.tasks[4][1][0]
    assert (third.attributes["activity_type"], third.attributes["activity_id"]) == ("step", "3")
    assert third.attributes["schedule_to_close_s"] == 10.0

    result = dec(sim.tasks[-1][1][0].attributes["result"])
    assert result["result"] == 13
    assert result["approved_by"] == "ann"
    last_started = sim.events[sim.tasks[-1][0] - 1]
    assert result["now"] == last_started.event_time == (T0 + timedelta(seconds=37)).isoformat()
    assert sim.instance.closed
    assert sim.instance.last_event_id == sim.tasks[-1][0]

    wt = ["WorkflowTaskScheduled", "WorkflowTaskStarted", "WorkflowTaskCompleted"]
    act_done = ["ActivityTaskStarted", "ActivityTaskCompleted"]
    assert event_types(sim) == [
        "WorkflowExecutionStarted", *wt, "ActivityTaskScheduled",
        *act_done, *wt, "TimerStarted",
        "TimerFired", *wt, "ActivityTaskScheduled",
        *act_done, *wt,
        "WorkflowExecutionSignaled", *wt, "ActivityTaskScheduled",
        *act_done, *wt, "WorkflowExecutionCompleted",
    ]  # fmt: skip


def test_full_replay_of_finished_history_matches_and_rebuilds_state() -> None:
    sim = run_pipeline()
    inst = sim.replay()
    assert inst.closed
    assert inst.last_event_id == len(sim.events)
    assert dec(inst.query("stage_of", []).model_dump()) == "finishing"
    # Every task replayed by a fresh instance issues what the live run issued.
    for index, (_, live) in enumerate(sim.tasks):
        assert dump(sim.replay_task(index)) == dump(live), f"task {index}"


def test_replay_in_pieces_equals_full_replay() -> None:
    sim = run_pipeline()
    full = [sim.replay_task(i) for i in range(len(sim.tasks))]
    inst = sim.new_instance()
    pieces = []
    for started_id, _ in sim.tasks:
        pieces.append(inst.activate(sim.events[inst.last_event_id : started_id]))
    assert [dump(p) for p in pieces] == [dump(f) for f in full]
    # The rest of the history (the last task's command events) matches too.
    inst.activate(sim.events[inst.last_event_id :], run_final=False)
    assert inst.closed


def test_random_and_uuid_are_the_same_on_every_replay() -> None:
    sim = run_pipeline()
    live = dec(sim.tasks[-1][1][0].attributes["result"])
    replayed = dec(sim.replay_task(len(sim.tasks) - 1)[0].attributes["result"])
    assert replayed == live
    other = Sim(Pipeline, 5, run_id="run-other")
    other.events = sim.events[:]  # same history, another run id: another seed
    other.tasks = sim.tasks
    assert (
        dec(other.replay_task(len(sim.tasks) - 1)[0].attributes["result"])["rand"] != live["rand"]
    )


def test_reordered_activities_raise_non_determinism_naming_both() -> None:
    sim = run_pipeline()
    with pytest.raises(NonDeterminismError) as info:
        sim.replay(PipelineSwapped)
    message = str(info.value)
    scheduled_id = sim.scheduled["1"]
    assert message == (
        f"non-determinism at event {scheduled_id}: workflow code issued "
        "ScheduleActivity(activity_type=double, activity_id=1) but history recorded "
        "ActivityTaskScheduled(activity_type=step, activity_id=1)"
    )


def test_cached_instance_detects_mismatch_with_history_it_is_given() -> None:
    sim = Sim(Pipeline, 1)
    sim.run_task()
    # The server recorded a different activity than the one this instance issued.
    assert sim.events[-1].event_type == EventType.ACTIVITY_TASK_SCHEDULED
    sim.events[-1].attributes["activity_type"] = "other"
    sim.complete_activity("1", 2)
    with pytest.raises(NonDeterminismError, match="issued ScheduleActivity\\(activity_type=step"):
        sim.run_task()
    with pytest.raises(RuntimeError, match="can no longer be used"):
        sim.instance.activate([])


@workflow.defn(name="Pipeline")
class PipelineEarlyReturn(Pipeline):
    @workflow.run
    async def run(self, n: int) -> dict[str, Any]:
        return {"result": await workflow.execute_activity(step, n, start_to_close_timeout=TIMEOUT)}


@workflow.defn(name="Pipeline")
class PipelineIdle(Pipeline):
    @workflow.run
    async def run(self, n: int) -> dict[str, Any]:
        await workflow.wait_condition(lambda: False)
        return {}


@workflow.defn(name="Waiter")
class Waiter:
    def __init__(self) -> None:
        self.go = False

    @workflow.run
    async def run(self) -> str:
        await workflow.wait_condition(lambda: self.go)
        return "done"

    @workflow.signal
    def proceed(self) -> None:
        self.go = True


@workflow.defn(name="Waiter")
class WaiterWithTimer(Waiter):
    @workflow.run
    async def run(self) -> str:
        await workflow.sleep(60)
        return "done"


def test_non_determinism_when_code_and_history_differ_in_command_count() -> None:
    sim = run_pipeline()
    with pytest.raises(NonDeterminismError) as info:
        sim.replay(PipelineEarlyReturn)
    assert (
        "workflow code issued CompleteWorkflow() but history recorded TimerStarted(timer_id=1)"
        in str(info.value)
    )
    with pytest.raises(NonDeterminismError) as info:
        sim.replay(PipelineIdle)
    assert (
        "workflow code issued no further command but history recorded "
        "ActivityTaskScheduled(activity_type=step, activity_id=1)"
    ) in str(info.value)

    waiter = Sim(Waiter)
    assert waiter.run_task() == []
    waiter.signal("proceed")
    waiter.run_task()
    with pytest.raises(NonDeterminismError) as info:
        waiter.replay(WaiterWithTimer)
    assert "workflow code issued StartTimer(timer_id=1) but history recorded" in str(info.value)
    assert "WorkflowExecutionSignaled" not in str(info.value)


# =========================================================================== failures


@activity.defn
async def check(x: int) -> int:
    return x


@workflow.defn(name="Flaky")
class FlakyBroken:
    @workflow.run
    async def run(self) -> int:
        a = await workflow.execute_activity(check, 1, start_to_close_timeout=TIMEOUT)
        if a == 1:
            raise ValueError("bug at step 2")
        return a


@workflow.defn(name="Flaky")
class FlakyFixed:
    @workflow.run
    async def run(self) -> int:
        a = await workflow.execute_activity(check, 1, start_to_close_timeout=TIMEOUT)
        b = await workflow.execute_activity(check, a + 1, start_to_close_timeout=TIMEOUT)
        return b


def test_bug_fails_the_task_not_the_workflow_and_fixed_code_resumes() -> None:
    sim = Sim(FlakyBroken)
    sim.run_task()
    sim.complete_activity("1", 1)
    error = sim.fail_task()
    assert isinstance(error, WorkflowTaskError)
    assert isinstance(error.__cause__, ValueError)
    assert error.failure.type == "ValueError"
    assert error.failure.message == "bug at step 2"
    assert "bug at step 2" in str(error)
    assert not sim.instance.closed
    with pytest.raises(RuntimeError, match="can no longer be used"):
        sim.instance.activate([])

    # The same broken code fails again on retry (fresh instance, full replay).
    assert isinstance(sim.fail_task(instance=sim.new_instance()), WorkflowTaskError)

    fixed = sim.new_instance(FlakyFixed)
    commands = sim.run_task(instance=fixed)
    assert types(commands) == [CommandType.SCHEDULE_ACTIVITY]
    assert commands[0].attributes["activity_id"] == "2"
    assert [dec(p) for p in commands[0].attributes["input"]] == [2]
    sim.complete_activity("2", 7)
    done = sim.run_task(instance=fixed)
    assert types(done) == [CommandType.COMPLETE_WORKFLOW]
    assert dec(done[0].attributes["result"]) == 7
    sim.replay(FlakyFixed)  # the whole history, failed tasks included, replays cleanly


@workflow.defn(name="Failing")
class Failing:
    @workflow.run
    async def run(self) -> None:
        try:
            raise KeyError("inner")
        except KeyError as exc:
            raise ApplicationError(
                "no can do", {"code": 7}, type="Refused", non_retryable=True
            ) from exc


def test_application_error_fails_the_workflow() -> None:
    sim = Sim(Failing)
    commands = sim.run_task()
    assert types(commands) == [CommandType.FAIL_WORKFLOW]
    failure = Failure.model_validate(commands[0].attributes["failure"])
    assert (failure.message, failure.type, failure.non_retryable) == ("no can do", "Refused", True)
    assert [dec(p.model_dump()) for p in failure.details] == [{"code": 7}]
    assert "raise ApplicationError" in failure.stack_trace
    assert failure.cause is not None and failure.cause.type == "KeyError"
    assert sim.instance.closed
    sim.replay()


@workflow.defn(name="Catcher")
class Catcher:
    @workflow.run
    async def run(self) -> list[dict[str, Any]]:
        seen = []
        for _ in range(3):
            try:
                await workflow.execute_activity(step, 1, start_to_close_timeout=TIMEOUT)
            except ActivityError as exc:
                cause = exc.__cause__
                assert isinstance(cause, ApplicationError | TimeoutError_ | CanceledError)
                seen.append(
                    {
                        "activity": [exc.activity_type, exc.activity_id],
                        "cause": type(cause).__name__,
                        "type": getattr(cause, "type", None)
                        or getattr(cause, "timeout_type", None),
                        "message": cause.message,
                        "non_retryable": getattr(cause, "non_retryable", None),
                        "details": list(getattr(cause, "details", ())),
                    }
                )
        return seen


def test_activity_failure_timeout_and_cancel_surface_as_activity_error() -> None:
    sim = Sim(Catcher)
    sim.run_task()
    sim.fail_activity(
        "1",
        Failure(
            message="card declined",
            type="Declined",
            non_retryable=True,
            details=[CONV.to_payload("4242")],
        ),
    )
    sim.run_task()
    sim.time_out_activity("2")
    sim.run_task()
    sim.add(
        EventType.ACTIVITY_TASK_CANCELED,
        scheduled_event_id=sim.scheduled["3"],
        started_event_id=None,
        identity="server",
    )
    sim.schedule_task()
    result = dec(sim.run_task()[0].attributes["result"])
    assert result == [
        {
            "activity": ["step", "1"],
            "cause": "ApplicationError",
            "type": "Declined",
            "message": "card declined",
            "non_retryable": True,
            "details": ["4242"],
        },
        {
            "activity": ["step", "2"],
            "cause": "TimeoutError_",
            "type": "START_TO_CLOSE",
            "message": "activity timed out",
            "non_retryable": None,
            "details": [],
        },
        {
            "activity": ["step", "3"],
            "cause": "CanceledError",
            "type": None,
            "message": "activity canceled",
            "non_retryable": None,
            "details": [],
        },
    ]
    sim.replay()


@workflow.defn(name="NoTimeout")
class NoTimeout:
    @workflow.run
    async def run(self) -> str:
        try:
            await workflow.execute_activity(step, 1)
        except Exception:
            return "swallowed"
        return "unreachable"


def test_missing_activity_timeout_fails_the_task_even_if_caught() -> None:
    sim = Sim(NoTimeout)
    error = sim.fail_task()
    assert isinstance(error, WorkflowTaskError)
    assert isinstance(error.__cause__, ValueError)
    assert "start_to_close_timeout or schedule_to_close_timeout" in str(error.__cause__)


@workflow.defn(name="DoesIO")
class DoesIO:
    @workflow.run
    async def run(self) -> None:
        await asyncio.get_running_loop().run_in_executor(None, print)


def test_io_on_the_workflow_loop_is_refused() -> None:
    error = Sim(DoesIO).fail_task()
    assert isinstance(error.__cause__, RuntimeError)
    assert "run_in_executor() is not allowed in workflow code" in str(error.__cause__)


@workflow.defn(name="BadSignal")
class BadSignal:
    @workflow.run
    async def run(self) -> None:
        await workflow.wait_condition(lambda: False)

    @workflow.signal
    def boom(self, kind: str) -> None:
        if kind == "bug":
            raise KeyError("missing")
        raise ApplicationError("rejected by signal", type="Rejected")


def test_signal_handler_bug_fails_task_and_failure_error_fails_workflow() -> None:
    sim = Sim(BadSignal)
    sim.run_task()
    sim.signal("boom", "bug")
    error = sim.fail_task()
    assert isinstance(error, WorkflowTaskError) and isinstance(error.__cause__, KeyError)

    sim2 = Sim(BadSignal)
    sim2.run_task()
    sim2.signal("boom", "fail")
    commands = sim2.run_task()
    assert types(commands) == [CommandType.FAIL_WORKFLOW]
    assert commands[0].attributes["failure"]["type"] == "Rejected"


def test_stale_cached_instance_is_reported() -> None:
    sim = Sim(Waiter)
    sim.run_task()
    sim.signal("proceed")
    started = sim._start_task(False)
    assert types(sim.instance.activate(sim.events[sim.instance.last_event_id :])) == [
        CommandType.COMPLETE_WORKFLOW
    ]
    # The server timed the task out instead of taking the worker's completion.
    assert sim.task_scheduled is not None
    sim.add(
        EventType.WORKFLOW_TASK_TIMED_OUT,
        scheduled_event_id=sim.task_scheduled.event_id,
        started_event_id=started.event_id,
    )
    sim.task_scheduled = None
    sim.schedule_task()
    sim._start_task(False)
    with pytest.raises(StaleInstanceError, match="WorkflowTaskTimedOut"):
        sim.instance.activate(sim.events[sim.instance.last_event_id :])
    # A fresh instance skips the timed-out task; its signal carries over.
    assert types(sim.new_instance().activate(sim.events)) == [CommandType.COMPLETE_WORKFLOW]


def test_batch_must_continue_history() -> None:
    sim = Sim(Waiter)
    sim.run_task()
    sim.signal("proceed")
    sim._start_task(False)
    inst = sim.instance
    assert inst.last_event_id == 3
    with pytest.raises(ValueError, match="follow event 3: expected event 4, got event 5"):
        inst.activate(sim.events[4:])
    with pytest.raises(ValueError, match="ending with the WorkflowTaskStarted"):
        inst.activate(sim.events[3:-1])
    # Rejected batches change nothing: the right one still works.
    assert types(inst.activate(sim.events[3:])) == [CommandType.COMPLETE_WORKFLOW]


# =========================================================================== continue-as-new


@workflow.defn(name="Looper")
class Looper:
    @workflow.run
    async def run(self, n: int, seen: list[str]) -> list[str]:
        await workflow.sleep(1)
        if n < 3:
            try:
                workflow.continue_as_new(n + 1, [*seen, workflow.info().run_id])
            except Exception:  # must not catch it: it is a BaseException
                return ["swallowed"]
        return seen


def test_continue_as_new_issues_command_with_new_input() -> None:
    sim = Sim(Looper, 1, [])
    sim.run_task()
    sim.fire_timer("1")
    commands = sim.run_task()
    assert types(commands) == [CommandType.CONTINUE_AS_NEW]
    attrs = commands[0].attributes
    assert [dec(p) for p in attrs["input"]] == [2, ["run-1"]]
    assert attrs["workflow_type"] is None and attrs["task_queue"] is None
    assert sim.instance.closed
    sim.replay()

    last = Sim(Looper, 3, ["a", "b"])
    last.run_task()
    last.fire_timer("1")
    assert dec(last.run_task()[0].attributes["result"]) == ["a", "b"]


@workflow.defn(name="Suggest")
class Suggest:
    @workflow.run
    async def run(self) -> list[bool]:
        first = workflow.continue_as_new_suggested()
        await workflow.sleep(1)
        return [first, workflow.continue_as_new_suggested()]


def test_continue_as_new_suggested_reads_the_task_started_event() -> None:
    sim = Sim(Suggest)
    sim.run_task(suggest_continue_as_new=False)
    sim.fire_timer("1")
    live = sim.run_task(suggest_continue_as_new=True)
    assert dec(live[0].attributes["result"]) == [False, True]
    assert dump(sim.replay_task(1)) == dump(live)


# =========================================================================== patches


@workflow.defn(name="Patchy")
class PatchyOld:
    def __init__(self) -> None:
        self.path = "none"

    @workflow.run
    async def run(self) -> str:
        await workflow.sleep(1)
        self.path = "old"
        return self.path

    @workflow.query
    def which(self) -> str:
        return self.path


@workflow.defn(name="Patchy")
class Patchy(PatchyOld):
    @workflow.run
    async def run(self) -> str:
        await workflow.sleep(1)
        self.path = "new" if workflow.patched("v2") else "old"
        assert workflow.patched("v2") == (self.path == "new")  # memoised, no second marker
        return self.path


@workflow.defn(name="Patchy")
class PatchyDeprecated(PatchyOld):
    @workflow.run
    async def run(self) -> str:
        await workflow.sleep(1)
        workflow.deprecate_patch("v2")
        self.path = "new"
        return self.path


def test_patched_is_true_live_and_records_a_marker() -> None:
    sim = Sim(Patchy)
    sim.run_task()
    sim.fire_timer("1")
    commands = sim.run_task()
    assert types(commands) == [CommandType.RECORD_MARKER, CommandType.COMPLETE_WORKFLOW]
    assert commands[0].attributes == {"marker_name": "patch", "details": {"patch_id": "v2"}}
    assert dec(commands[1].attributes["result"]) == "new"
    # Replaying the history that has the marker takes the new path again.
    assert dec(sim.replay().query("which", []).model_dump()) == "new"
    # Code that deprecated the patch, or never had it, skips the marker.
    assert dec(sim.replay(PatchyDeprecated).query("which", []).model_dump()) == "new"


def test_patched_is_false_when_replaying_history_without_the_marker() -> None:
    sim = Sim(PatchyOld)
    sim.run_task()
    sim.fire_timer("1")
    sim.run_task()
    assert dec(sim.replay(Patchy).query("which", []).model_dump()) == "old"
    # The old code path is what the new code replays into: no marker, same completion.
    assert types(sim.replay_task(1, Patchy)) == [
        CommandType.RECORD_MARKER,  # live at this task: a new task takes the patch
        CommandType.COMPLETE_WORKFLOW,
    ]


@workflow.defn(name="PatchLater")
class PatchLater:
    @workflow.run
    async def run(self) -> list[bool]:
        first = workflow.patched("p")
        await workflow.sleep(1)
        return [first, workflow.patched("p"), workflow.patched("q")]


def test_patch_answer_is_memoised_for_the_run() -> None:
    sim = Sim(PatchLater)
    assert types(sim.run_task()) == [CommandType.RECORD_MARKER, CommandType.START_TIMER]
    sim.fire_timer("1")
    commands = sim.run_task()
    assert types(commands) == [CommandType.RECORD_MARKER, CommandType.COMPLETE_WORKFLOW]
    assert commands[0].attributes["details"] == {"patch_id": "q"}
    assert dec(commands[1].attributes["result"]) == [True, True, True]
    sim.replay()


# =========================================================================== updates


@workflow.defn(name="Counter")
class Counter:
    def __init__(self) -> None:
        self.value = 0
        self.done = False

    @workflow.run
    async def run(self) -> int:
        await workflow.wait_condition(lambda: self.done)
        return self.value

    @workflow.update
    async def bump(self, by: int) -> int:
        self.value += by
        return self.value

    @bump.validator
    def _check_bump(self, by: int) -> None:
        if by < 0:
            raise ValueError("negative")

    @workflow.update(name="slow_bump")
    async def slow(self, by: int) -> int:
        await workflow.sleep(5)
        self.value += by
        return self.value

    @workflow.signal
    def finish(self) -> None:
        self.done = True

    @workflow.query
    def current(self) -> int:
        return self.value


def update(update_id: str, name: str, *args: Any) -> dict[str, Any]:
    return {"update_id": update_id, "name": name, "input": [CONV.to_payload(a) for a in args]}


def test_update_accept_reject_complete_and_replay() -> None:
    sim = Sim(Counter)
    assert sim.run_task() == []
    sim.schedule_task()  # the server schedules a task to deliver updates
    commands = sim.run_task(
        updates=[update("u1", "bump", 5), update("u2", "bump", -1), update("u3", "nope")]
    )
    assert types(commands) == [
        CommandType.ACCEPT_UPDATE,
        CommandType.REJECT_UPDATE,
        CommandType.REJECT_UPDATE,
        CommandType.COMPLETE_UPDATE,
    ]
    assert commands[0].attributes == {"update_id": "u1"}
    rejected = Failure.model_validate(commands[1].attributes["failure"])
    assert (commands[1].attributes["update_id"], rejected.type, rejected.message) == (
        "u2",
        "ValueError",
        "negative",
    )
    unknown = Failure.model_validate(commands[2].attributes["failure"])
    assert "unknown update 'nope'" in unknown.message and "bump, slow_bump" in unknown.message
    assert commands[3].attributes["update_id"] == "u1"
    assert dec(commands[3].attributes["result"]) == 5 and commands[3].attributes["failure"] is None
    assert dec(sim.instance.query("current", []).model_dump()) == 5

    # An update whose handler waits completes in a later task.
    sim.schedule_task()
    commands = sim.run_task(updates=[update("u4", "slow_bump", 10)])
    assert types(commands) == [CommandType.ACCEPT_UPDATE, CommandType.START_TIMER]
    sim.fire_timer("1")
    commands = sim.run_task()
    assert types(commands) == [CommandType.COMPLETE_UPDATE]
    assert dec(commands[0].attributes["result"]) == 15

    sim.signal("finish")
    assert dec(sim.run_task()[0].attributes["result"]) == 15

    replayed = sim.replay()
    assert replayed.closed
    assert dec(replayed.query("current", []).model_dump()) == 15
    # A replayed task re-runs the updates it accepted (rejections left no trace), so a
    # fresh instance's live tasks after it issue what the cached instance issued.
    fresh = sim.new_instance()
    again = fresh.activate(sim.events[: sim.tasks[2][0]], updates=[update("u4", "slow_bump", 10)])
    assert dump(again) == dump(sim.tasks[2][1])
    assert dec(fresh.query("current", []).model_dump()) == 5
    assert dump(sim.new_instance().activate(sim.events[: sim.tasks[3][0]])) == dump(sim.tasks[3][1])


def test_replay_of_accepted_update_does_not_rerun_the_validator() -> None:
    sim = Sim(Counter)
    sim.run_task()
    sim.schedule_task()
    sim.run_task(updates=[update("u1", "bump", 3)])
    # Make the recorded input one the validator would now reject.
    accepted = next(
        e for e in sim.events if e.event_type == EventType.WORKFLOW_EXECUTION_UPDATE_ACCEPTED
    )
    accepted.attributes["input"] = [enc(-3)]
    assert dec(sim.replay().query("current", []).model_dump()) == -3


# =========================================================================== queries


def test_query_answers_from_state_and_rejects_unknown_names() -> None:
    sim = Sim(Pipeline, 1)
    sim.run_task()
    assert dec(sim.instance.query("stage_of", []).model_dump()) == "init"
    sim.complete_activity("1", 2)
    sim.run_task()
    assert dec(sim.instance.query("stage_of", []).model_dump()) == "sleeping"
    with pytest.raises(QueryFailedError, match=r"unknown query 'nope'.*known queries: stage_of"):
        sim.instance.query("nope", [])


@workflow.defn(name="Meddler")
class Meddler:
    @workflow.run
    async def run(self) -> None:
        await workflow.wait_condition(lambda: False)

    @workflow.query
    def meddle(self) -> bool:
        return workflow.patched("x")

    @workflow.query
    def fails(self) -> int:
        return 1 // 0

    @workflow.query
    def dice(self) -> int:
        return workflow.random().randint(0, 10**9)


def test_query_must_not_issue_commands_or_change_state() -> None:
    sim = Sim(Meddler)
    sim.run_task()
    with pytest.raises(QueryFailedError, match="may not be called from a query handler"):
        sim.instance.query("meddle", [])
    with pytest.raises(QueryFailedError, match="ZeroDivisionError"):
        sim.instance.query("fails", [])
    # A query draws from a copy of the run's random sequence.
    assert sim.instance.query("dice", []) == sim.instance.query("dice", [])
    sim.signal("nothing")
    assert sim.run_task() == []  # nothing leaked from the queries into the next task


# =========================================================================== timers


@workflow.defn(name="Sleepy")
class Sleepy:
    @workflow.run
    async def run(self) -> float:
        before = asyncio.get_running_loop().time()
        await asyncio.sleep(90)
        await asyncio.sleep(0)  # no timer for a zero sleep
        return asyncio.get_running_loop().time() - before


def test_asyncio_sleep_is_a_durable_timer_on_history_time() -> None:
    sim = Sim(Sleepy)
    commands = sim.run_task()
    assert dump(commands) == [
        {"type": "StartTimer", "attributes": {"timer_id": "1", "duration_s": 90.0}}
    ]
    sim.advance(95)
    sim.fire_timer("1")
    commands = sim.run_task()
    assert types(commands) == [CommandType.COMPLETE_WORKFLOW]
    assert dec(commands[0].attributes["result"]) == 95.0
    sim.replay()


@workflow.defn(name="TimerCancel")
class TimerCancel:
    def __init__(self) -> None:
        self.go = False

    @workflow.run
    async def run(self) -> list[str]:
        sleeper = asyncio.get_running_loop().create_task(workflow.sleep(30))
        outcome = []
        try:
            await asyncio.wait_for(workflow.wait_condition(lambda: self.go), timeout=60)
            outcome.append("signalled")
        except TimeoutError:
            outcome.append("timed out")
        sleeper.cancel()
        try:
            await sleeper
        except asyncio.CancelledError:
            outcome.append("sleep cancelled")
        return outcome

    @workflow.signal
    def proceed(self) -> None:
        self.go = True


def test_cancelling_timers_issues_cancel_timer() -> None:
    sim = Sim(TimerCancel)
    commands = sim.run_task()
    # wait_for arms its timeout before the sleeper task gets to run.
    assert dump(commands) == [
        {"type": "StartTimer", "attributes": {"timer_id": "1", "duration_s": 60.0}},
        {"type": "StartTimer", "attributes": {"timer_id": "2", "duration_s": 30.0}},
    ]
    sim.signal("proceed")
    commands = sim.run_task()
    assert dump(commands[:2]) == [
        {"type": "CancelTimer", "attributes": {"timer_id": "1"}},
        {"type": "CancelTimer", "attributes": {"timer_id": "2"}},
    ]
    assert dec(commands[2].attributes["result"]) == ["signalled", "sleep cancelled"]
    sim.replay()


def test_wait_condition_timeout_fires_on_the_durable_timer() -> None:
    sim = Sim(TimerCancel)
    sim.run_task()
    sim.advance(60)
    sim.fire_timer("1")
    commands = sim.run_task()
    assert dump(commands[:1]) == [{"type": "CancelTimer", "attributes": {"timer_id": "2"}}]
    assert dec(commands[1].attributes["result"]) == ["timed out", "sleep cancelled"]
    sim.replay()


# =========================================================================== cancellation


@workflow.defn(name="CancelActivity")
class CancelActivity:
    def __init__(self) -> None:
        self.stop = False

    @workflow.run
    async def run(self) -> str:
        handle = workflow.start_activity(
            step, 1, start_to_close_timeout=TIMEOUT, activity_id="slow"
        )
        await workflow.wait_condition(lambda: self.stop)
        handle.cancel()
        try:
            await handle
        except asyncio.CancelledError:
            return "cancelled"
        return "finished"

    @workflow.signal
    def halt(self) -> None:
        self.stop = True


def test_cancelling_an_activity_handle_requests_cancellation() -> None:
    sim = Sim(CancelActivity)
    commands = sim.run_task()
    assert commands[0].attributes["activity_id"] == "slow"
    sim.signal("halt")
    commands = sim.run_task()
    assert types(commands) == [
        CommandType.RECORD_MARKER,
        CommandType.REQUEST_CANCEL_ACTIVITY,
        CommandType.COMPLETE_WORKFLOW,
    ]
    assert commands[1].attributes == {"activity_id": "slow"}
    assert dec(commands[2].attributes["result"]) == "cancelled"
    sim.replay()


def test_workflow_cancel_request_cancels_the_run() -> None:
    sim = Sim(Pipeline, 1)
    sim.run_task()
    sim.request_cancel()
    commands = sim.run_task()
    assert types(commands) == [
        CommandType.RECORD_MARKER,
        CommandType.REQUEST_CANCEL_ACTIVITY,
        CommandType.CANCEL_WORKFLOW,
    ]
    assert commands[1].attributes == {"activity_id": "1"}
    sim.replay()


@workflow.defn(name="CancelCatcher")
class CancelCatcher:
    @workflow.run
    async def run(self) -> str:
        try:
            await workflow.execute_activity(step, 1, start_to_close_timeout=TIMEOUT)
        except asyncio.CancelledError:
            # Clean-up still runs as workflow code and may schedule work.
            await workflow.execute_activity(double, 1, start_to_close_timeout=TIMEOUT)
            raise
        return "done"


def test_cancelled_workflow_can_clean_up_before_it_closes() -> None:
    sim = Sim(CancelCatcher)
    sim.run_task()
    sim.request_cancel()
    assert types(sim.run_task()) == [
        CommandType.RECORD_MARKER,
        CommandType.REQUEST_CANCEL_ACTIVITY,
        CommandType.SCHEDULE_ACTIVITY,
    ]
    sim.complete_activity("2", 2)
    assert types(sim.run_task()) == [CommandType.CANCEL_WORKFLOW]
    sim.replay()


# =========================================================================== signals


@workflow.defn(name="Late")
class Late:
    def __init__(self) -> None:
        self.ready = False
        self.got: list[str] = []

    @workflow.run
    async def run(self) -> list[str]:
        await workflow.wait_condition(lambda: self.ready)
        workflow.set_signal_handler("late", self.got.append)
        await workflow.wait_condition(lambda: len(self.got) >= 3)
        return self.got

    @workflow.signal(name="open")
    def open_up(self) -> None:
        self.ready = True

    @workflow.query
    def received(self) -> list[str]:
        return self.got


def test_signal_before_its_handler_exists_is_buffered() -> None:
    sim = Sim(Late)
    sim.run_task()
    sim.signal("late", "a")
    sim.signal("late", "b")
    assert sim.run_task() == []
    assert dec(sim.instance.query("received", []).model_dump()) == []
    sim.signal("open")
    sim.signal("late", "c")
    commands = sim.run_task()
    assert dec(commands[0].attributes["result"]) == ["a", "b", "c"]
    sim.replay()


@dataclasses.dataclass
class Collect:
    """A handler that is a callable object and, being a dataclass, not hashable."""

    got: list[str]

    def __call__(self, value: str) -> None:
        self.got.append(value)


@workflow.defn(name="CallableHandler")
class CallableHandler:
    @workflow.run
    async def run(self) -> list[str]:
        got: list[str] = []
        workflow.set_signal_handler("add", Collect(got))
        await workflow.wait_condition(lambda: len(got) >= 2)
        return got


def test_a_signal_handler_may_be_an_unhashable_callable_object() -> None:
    sim = Sim(CallableHandler)
    sim.run_task()
    sim.signal("add", "a")
    sim.signal("add", "b", "too many")  # does not fit: dropped, as for any handler
    sim.signal("add", "c")
    assert dec(sim.run_task()[0].attributes["result"]) == ["a", "c"]
    sim.replay()


@workflow.defn(name="SignalFirst")
class SignalFirst:
    def __init__(self) -> None:
        self.seen: list[str] = []

    @workflow.run
    async def run(self) -> list[str]:
        self.seen.append("run")
        return self.seen

    @workflow.signal
    async def hello(self, who: str) -> None:
        self.seen.append(who)


def test_signal_with_start_reaches_handler_before_run_starts() -> None:
    sim = Sim(SignalFirst)
    sim.signal("hello", "early")
    assert dec(sim.run_task()[0].attributes["result"]) == ["early", "run"]


# =========================================================================== runtime


@workflow.defn(name="Introspect")
class Introspect:
    @workflow.run
    async def run(self) -> dict[str, Any]:
        replaying = [workflow.unsafe.is_replaying()]
        workflow.logger.info("first task")
        await workflow.sleep(1)
        replaying.append(workflow.unsafe.is_replaying())
        workflow.logger.info("second task")
        info = workflow.info()
        return {
            "replaying": replaying,
            "info": [info.namespace, info.workflow_id, info.run_id, info.workflow_type,
                     info.task_queue, info.attempt, info.first_run_id, info.continued_from_run_id,
                     info.history_length, info.start_time.isoformat(), dict(info.memo)],
            "in_workflow": workflow.in_workflow(),
        }  # fmt: skip


def test_info_replay_flag_and_replay_safe_logger(caplog: pytest.LogCaptureFixture) -> None:
    sim = Sim(Introspect)
    caplog.set_level("INFO", logger="baton.workflow")
    sim.run_task()
    sim.fire_timer("1")
    sim.run_task()
    caplog.clear()
    result = dec(sim.replay_task(1)[0].attributes["result"])
    assert result["replaying"] == [True, False]
    assert [r.getMessage() for r in caplog.records] == ["second task"]
    assert caplog.records[0].workflow_id == "wf-1"  # type: ignore[attr-defined]
    started = sim.events[sim.tasks[1][0] - 1]
    assert result["info"] == [
        "default", "wf-1", "run-1", "Introspect", "q", 1, "run-1", None,
        started.attributes["history_length"], T0.isoformat(), {"team": "payments"},
    ]  # fmt: skip
    assert result["in_workflow"] is True
    assert not workflow.in_workflow()
    with pytest.raises(RuntimeError, match="not in a workflow"):
        workflow.now()


async def test_activation_inside_a_running_event_loop_restores_it() -> None:
    outer = asyncio.get_running_loop()
    sim = run_pipeline()
    assert asyncio.get_running_loop() is outer
    sim.replay()
    assert asyncio.get_running_loop() is outer
    await asyncio.sleep(0)  # the outer loop still works


def test_dispose_runs_pending_cleanup_without_commands() -> None:
    cleaned: list[str] = []

    @workflow.defn(name="Disposable")
    class Disposable:
        @workflow.run
        async def run(self) -> None:
            try:
                await workflow.sleep(100)
            finally:
                cleaned.append("finally")

    sim = Sim(Disposable)
    sim.run_task()
    sim.instance.dispose()
    assert cleaned == ["finally"]
    with pytest.raises(RuntimeError, match="disposed"):
        sim.instance.activate([])


def test_dispose_cancels_every_task_the_workflow_started() -> None:
    cleaned: list[str] = []

    async def wait(name: str) -> None:
        try:
            await workflow.sleep(100)
        finally:
            cleaned.append(name)

    @workflow.defn(name="ManyTasks")
    class ManyTasks:
        @workflow.run
        async def run(self) -> None:
            background = asyncio.create_task(wait("created"))
            try:
                await asyncio.gather(wait("gathered-1"), wait("gathered-2"))
            finally:
                cleaned.append("main")
            await background

    sim = Sim(ManyTasks)
    sim.run_task()
    sim.instance.dispose()
    assert sorted(cleaned) == ["created", "gathered-1", "gathered-2", "main"]


def test_canceled_error_type_reaches_fail_workflow() -> None:
    @workflow.defn(name="RaisesCanceled")
    class RaisesCanceled:
        @workflow.run
        async def run(self) -> None:
            raise CanceledError("gave up")

    commands = Sim(RaisesCanceled).run_task()
    assert types(commands) == [CommandType.FAIL_WORKFLOW]
    assert commands[0].attributes["failure"]["type"] == "CanceledError"


@workflow.defn(name="Spinner")
class Spinner:
    @workflow.run
    async def run(self) -> None:
        while True:  # noqa: ASYNC110  (the busy loop is the point)
            await asyncio.sleep(0)


def test_busy_workflow_fails_the_task_with_deadlock_error() -> None:
    sim = Sim(Spinner)
    sim.instance.deadlock_timeout_s = 0.2
    error = sim.fail_task()
    assert type(error.__cause__).__name__ == "DeadlockError"
    assert "ran for more than 0.2 s" in str(error)


def test_signal_and_update_with_wrong_arguments_do_not_fail_the_task() -> None:
    sim = Sim(Counter)
    sim.run_task()
    sim.signal("finish", "unexpected")  # finish() takes no argument: dropped
    sim.schedule_task()
    commands = sim.run_task(updates=[update("u1", "bump", 1, 2)])
    assert types(commands) == [CommandType.REJECT_UPDATE]
    assert "do not fit the handler" in commands[0].attributes["failure"]["message"]
    sim.signal("finish")
    assert dec(sim.run_task()[0].attributes["result"]) == 0
    sim.replay()


@workflow.defn(name="NotFinite")
class NotFinite:
    def __init__(self) -> None:
        self.what = ""

    @workflow.run
    async def run(self, what: str) -> None:
        if what == "attribute":
            workflow.upsert_search_attributes({"Score": float("nan")})
        else:
            await asyncio.sleep(float("inf"))


@pytest.mark.parametrize("what", ["attribute", "sleep"])
def test_values_json_cannot_carry_fail_the_task_not_travel_as_null(what: str) -> None:
    # as null, a NaN score would remove the attribute and an endless sleep
    # would reach the server as a timer of no duration
    error = Sim(NotFinite, what).fail_task()
    assert isinstance(error, WorkflowTaskError)
    assert "finite" in str(error)
