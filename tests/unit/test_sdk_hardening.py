"""SDK logic of the hardening issue that needs no server.

What the client sends (request ids), the worker's run cache, an activity the
workflow cancels and does not catch, failure text under a codec, a heartbeat
whose task is gone, and a stopping worker giving back what it holds. Where a
server answer is needed, a recording transport or ``_call`` stands in for the
network: these test the SDK's own decisions, not the server.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from tests.helpers import eventually
from tests.unit.test_workflow_instance import TIMEOUT, Sim, step, types
from worker import AesGcmCodec, Client, DataConverter, Worker, activity, workflow
from worker import _activity_runner as activity_runner
from worker._activity_runner import _Heartbeater
from worker._failure import ENCODED_FAILURE_MESSAGE
from worker._http import Transport
from worker._payloads import decode_wire, encode_wire, may_hide_failure_text
from worker.codec import generate_key
from worker.errors import TaskNotFoundError
from worker.wire import CommandType, Failure

# =========================================================================== helpers


class RecordingTransport(Transport):
    """Records each call and answers ``{}``: what the client sends is the point."""

    def __init__(self) -> None:
        super().__init__(["http://127.0.0.1:9"])
        self.calls: list[tuple[str, str, Any]] = []

    async def call(self, method: str, path: str, body: Any = None, **kw: Any) -> Any:
        self.calls.append((method, path, body))
        return {"run_id": "run-1"}


def offline_client(transport: Transport | None = None) -> Client:
    return Client(
        transport or Transport(["http://127.0.0.1:9"]),
        namespace="default",
        data_converter=DataConverter(),
        identity="test",
    )


@workflow.defn(name="Idle")
class Idle:
    @workflow.run
    async def run(self) -> None:
        await workflow.wait_condition(lambda: False)


@activity.defn(name="never_runs")
async def never_runs() -> None:
    await asyncio.sleep(3600)


class RecordingWorker(Worker):
    """A worker whose server calls are recorded and answered from ``answers``.

    ``answers`` maps a path to (seconds before the answer, the answer); a
    path answered after ``None`` seconds never answers. Other paths get ``{}``.
    """

    def __init__(
        self, *args: Any, answers: dict[str, tuple[float | None, Any]] | None = None, **kw: Any
    ) -> None:
        super().__init__(*args, **kw)
        self.posted: list[tuple[str, Any]] = []
        self.answers = answers or {}

    async def _call(self, path: str, body: Any, **params: Any) -> Any:
        self.posted.append((path, body))
        delay, answer = self.answers.get(path, (0.0, {}))
        if delay is None:
            await asyncio.Event().wait()
        await asyncio.sleep(delay)
        return answer


# =========================================================================== A: request ids


async def test_signal_cancel_and_terminate_send_a_request_id() -> None:
    transport = RecordingTransport()
    handle = offline_client(transport).get_workflow_handle("wf")
    await handle.signal("go")
    await handle.signal("go")
    await handle.signal("go", request_id="sig-1")
    await handle.cancel()
    await handle.cancel("stop", request_id="cancel-1")
    await handle.terminate()
    await handle.terminate("stop", request_id="term-1")
    ids = [body["request_id"] for _, _, body in transport.calls]
    assert all(isinstance(i, str) and i for i in ids)
    assert ids[0] != ids[1]  # each call draws its own
    assert ids[2] == "sig-1"
    assert ids[4] == "cancel-1" and ids[3] != "cancel-1"
    assert ids[6] == "term-1" and ids[5] != "term-1"
    assert [p.rsplit("/", 1)[1] for _, p, _ in transport.calls] == [
        "signal",
        "signal",
        "signal",
        "cancel",
        "cancel",
        "terminate",
        "terminate",
    ]


async def test_a_schedule_takes_a_cron_string_beside_the_spec_s_own() -> None:
    """Regression: a spec's single cron string met the ``cron`` option as a list
    of its characters (``['@', 'h', ...]``), and the server refused a cron '@'."""
    sched = await offline_client().schedule_definition(
        workflow="Report", task_queue="q", cron="@daily", spec={"cron": "@hourly"}
    )
    assert sched["spec"]["cron"] == ["@hourly", "@daily"]
    sched = await offline_client().schedule_definition(
        workflow="Report", task_queue="q", cron=["@daily"], spec={"cron": ["@hourly"]}
    )
    assert sched["spec"]["cron"] == ["@hourly", "@daily"]


# =========================================================================== C: run cache


def wf_task(run_id: str) -> dict[str, Any]:
    """A workflow task that goes on from an instance that has applied nothing."""
    return {
        "namespace": "default",
        "workflow_id": f"wf-{run_id}",
        "run_id": run_id,
        "workflow_type": "Idle",
        "events": [],
        "previous_started_event_id": 0,
        "started_event_id": 0,
    }


def cache_worker(capacity: int) -> Worker:
    return Worker(offline_client(), task_queue="q", workflows=[Idle], max_cached_workflows=capacity)


def cached(w: Worker, run_id: str) -> Any:
    inst = w._new_instance(wf_task(run_id))
    w._cache_put(inst)
    return inst


@pytest.mark.parametrize(
    "deployment", [("bad name", "41"), ("payments", "4:1"), ("-x", "1"), ("payments", "41\n")]
)
def test_a_worker_refuses_a_version_the_server_cannot_route(deployment: tuple[str, str]) -> None:
    """Otherwise it starts and every poll is refused, ten times a second."""
    with pytest.raises(ValueError, match="is not valid"):
        Worker(
            offline_client(),
            task_queue="q",
            workflows=[Idle],
            deployment=deployment,
            default_versioning_behavior="pinned",
        )
    Worker(
        offline_client(),
        task_queue="q",
        workflows=[Idle],
        deployment=("payments", "41.2_rc-1"),
        default_versioning_behavior="pinned",
    )


@pytest.mark.parametrize(
    "option",
    [
        "max_concurrent_workflow_tasks",
        "max_concurrent_activities",
        "workflow_pollers",
        "activity_pollers",
    ],
)
@pytest.mark.parametrize("value", [0, -1, 1.5, True])
def test_a_worker_refuses_counts_below_one(option: str, value: Any) -> None:
    """Regression: with 0 workflow task slots a worker started, never polled and
    said nothing (a slot is taken before each poll); with 0 activity slots and a
    sync activity it failed on its thread pool's own words."""
    with pytest.raises(ValueError, match=f"{option} must be a whole number of at least 1"):
        Worker(offline_client(), task_queue="q", workflows=[Idle], **{option: value})
    Worker(offline_client(), task_queue="q", workflows=[Idle], **{option: 1})


async def test_using_a_cached_run_makes_it_the_most_recently_used() -> None:
    w = cache_worker(2)
    a = cached(w, "a")
    cached(w, "b")
    inst, _ = await w._instance_for(wf_task("a"))  # a workflow task of run a
    assert inst is a
    cached(w, "c")
    assert "a" in w._cache and "c" in w._cache
    assert "b" not in w._cache


async def test_a_run_whose_lock_is_held_is_not_evicted() -> None:
    w = cache_worker(2)
    cached(w, "a")
    cached(w, "b")
    async with w._lock("a"):  # another coroutine works on run a
        cached(w, "c")
        assert "a" in w._cache  # evicting it would dispose it under that coroutine
        assert "b" not in w._cache  # the next oldest goes instead
        assert w._lock("a").locked()  # and the run keeps its lock
    assert "a" in w._cache and "c" in w._cache


@workflow.defn(name="CancelsItsActivity")
class CancelsItsActivity:
    @workflow.run
    async def run(self) -> str:
        handle = workflow.start_activity(step, 1, start_to_close_timeout=TIMEOUT)
        handle.cancel()
        await handle
        return "unreachable"


@workflow.defn(name="CancelsTheTaskAwaitingIt")
class CancelsTheTaskAwaitingIt:
    def __init__(self) -> None:
        self.stop = False

    @workflow.run
    async def run(self) -> int:
        pending = asyncio.ensure_future(
            workflow.execute_activity(step, 1, start_to_close_timeout=TIMEOUT)
        )
        await workflow.wait_condition(lambda: self.stop)
        pending.cancel()
        return int(await pending)

    @workflow.signal
    def halt(self) -> None:
        self.stop = True


def assert_fails_with_canceled_activity(attributes: dict[str, Any]) -> None:
    failure = Failure.model_validate(attributes["failure"])
    assert failure.type == "ActivityError"
    assert "activity step (id 1) was canceled" in failure.message
    assert failure.cause is not None and failure.cause.type == "CanceledError"


def test_an_uncaught_cancelled_activity_fails_the_workflow() -> None:
    sim = Sim(CancelsItsActivity)
    commands = sim.run_task()
    assert types(commands) == [
        CommandType.SCHEDULE_ACTIVITY,
        CommandType.RECORD_MARKER,  # the run raises ActivityError (ACTIVITY_CANCEL_ERROR_PATCH)
        CommandType.REQUEST_CANCEL_ACTIVITY,
        CommandType.FAIL_WORKFLOW,
    ]
    assert_fails_with_canceled_activity(commands[3].attributes)
    sim.replay()  # the same failure on replay: deterministic


def test_cancelling_a_task_awaiting_an_activity_fails_the_workflow() -> None:
    sim = Sim(CancelsTheTaskAwaitingIt)
    assert types(sim.run_task()) == [CommandType.SCHEDULE_ACTIVITY]
    sim.signal("halt")
    commands = sim.run_task()
    assert types(commands) == [
        CommandType.RECORD_MARKER,
        CommandType.REQUEST_CANCEL_ACTIVITY,
        CommandType.FAIL_WORKFLOW,
    ]
    assert_fails_with_canceled_activity(commands[2].attributes)
    sim.replay()


# =========================================================================== D: failure text


def codec_converter() -> DataConverter:
    return DataConverter(codec=AesGcmCodec(keys={"k1": generate_key()}, active_key_id="k1"))


def failing_body(converter: DataConverter) -> dict[str, Any]:
    cause = Failure(message="inner secret", type="Inner", stack_trace="inner trace")
    failure = Failure(
        message="outer secret",
        type="Declined",
        stack_trace="outer trace",
        non_retryable=True,
        details=converter.payload_converter.to_payloads(["detail secret"]),
        cause=cause,
    )
    return {"task_token": "t", "failure": failure.model_dump()}


async def test_a_codec_hides_failure_text_and_the_reader_gets_it_back() -> None:
    converter = codec_converter()
    body = await encode_wire(failing_body(converter), converter)
    sent = str(body)
    for secret in ("outer secret", "inner secret", "outer trace", "inner trace"):
        assert secret not in sent
    outer = body["failure"]
    assert outer["message"] == ENCODED_FAILURE_MESSAGE and outer["stack_trace"] == ""
    assert outer["type"] == "Declined" and outer["non_retryable"] is True
    assert outer["cause"]["message"] == ENCODED_FAILURE_MESSAGE
    assert outer["cause"]["type"] == "Inner"
    # encoded exactly once: one decode gives the plain JSON payload back
    assert converter.codec is not None
    [attrs] = await converter.codec.decode([Failure.model_validate(outer).encoded_attributes])  # type: ignore[list-item]
    assert converter.payload_converter.from_payload(attrs) == {
        "message": "outer secret",
        "stack_trace": "outer trace",
    }

    received = Failure.model_validate((await decode_wire(body, converter))["failure"])
    assert (received.message, received.stack_trace) == ("outer secret", "outer trace")
    assert received.encoded_attributes is None
    assert received.cause is not None and received.cause.message == "inner secret"
    assert converter.payload_converter.from_payloads(received.details) == ["detail secret"]


async def test_without_a_codec_failures_travel_as_they_are() -> None:
    converter = DataConverter()
    body = failing_body(converter)
    before = str(body)
    assert str(await encode_wire(body, converter)) == before
    assert str(await decode_wire(body, converter)) == before


async def test_a_body_says_whether_it_may_hold_hidden_failure_text() -> None:
    converter = DataConverter(codec=AesGcmCodec(keys={"k": generate_key()}, active_key_id="k"))
    body = await encode_wire(failing_body(converter), converter)
    assert may_hide_failure_text(orjson.dumps(body))
    # as PostgreSQL writes JSON, with a space after the colon
    assert may_hide_failure_text(b'[{"failure": {"encoded_attributes": {"data": "x"}}}]')
    plain = failing_body(DataConverter())
    assert not may_hide_failure_text(orjson.dumps(plain))  # text in the clear: null
    assert not may_hide_failure_text(b'{"note": "\\"encoded_attributes\\": {"}')  # in a string


# =========================================================================== E: heartbeats


class GoneTaskRunner:
    """Stands in for the worker: every heartbeat finds the task gone."""

    converter = DataConverter()

    def __init__(self) -> None:
        self.posted: list[str] = []

    async def _call(self, path: str, body: Any, **params: Any) -> Any:
        self.posted.append(path)
        raise TaskNotFoundError("activity task is no longer open")


async def test_a_heartbeat_whose_task_is_gone_stops_the_attempt_without_a_cancel() -> None:
    runner = GoneTaskRunner()
    heartbeater = _Heartbeater(runner, "token", 0.1)  # type: ignore[arg-type]
    heartbeater.loop = asyncio.get_running_loop()
    attempt = asyncio.ensure_future(asyncio.sleep(3600))
    heartbeater.attempt = attempt
    heartbeater.record(("progress",))
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(attempt, 5)
    assert runner.posted == ["/activity-tasks/heartbeat"]
    assert not heartbeater.cancelled.is_set()  # nobody asked for a cancel
    assert heartbeater.lost


# =========================================================================== B: shutdown


async def test_an_eager_activity_waiting_for_a_slot_is_given_back_at_shutdown() -> None:
    w = RecordingWorker(
        offline_client(), task_queue="q", activities=[never_runs], max_concurrent_activities=1
    )
    await w._act_slots.acquire()  # the only slot is busy with another attempt
    w._spawn(w._eager_activity({"task_token": "eager-1", "workflow_id": "wf"}))
    await asyncio.sleep(0.05)
    assert w.posted == []  # it waits for the slot
    started = time.monotonic()
    await w.shutdown(grace=30)
    assert time.monotonic() - started < 5  # given back at once, not after the grace
    [(path, body)] = [(p, b) for p, b in w.posted if p != "/pollers/stopped"]
    assert path == "/activity-tasks/fail" and body["task_token"] == "eager-1"
    failure = Failure.model_validate(body["failure"])
    assert (failure.type, failure.message, failure.non_retryable) == (
        "WorkerShutdown",
        "worker shutting down",
        False,
    )


def first_workflow_task(run_id: str) -> dict[str, Any]:
    t = datetime(2024, 5, 1, tzinfo=UTC).isoformat()

    def event(event_id: int, event_type: str, **attributes: Any) -> dict[str, Any]:
        return {
            "event_id": event_id,
            "event_type": event_type,
            "event_time": t,
            "version": 1,
            "attributes": attributes,
        }

    return {
        "task_token": "wt-1",
        "namespace": "default",
        "workflow_id": "wf-1",
        "run_id": run_id,
        "workflow_type": "Idle",
        "task_queue": "q",
        "attempt": 1,
        "started_event_id": 3,
        "previous_started_event_id": 0,
        "history_length": 3,
        "events": [
            event(1, "WorkflowExecutionStarted", workflow_type="Idle", task_queue="q", input=[]),
            event(2, "WorkflowTaskScheduled", task_queue="q", attempt=1),
            event(3, "WorkflowTaskStarted", scheduled_event_id=2, history_length=3),
        ],
    }


async def test_a_workflow_task_still_running_after_the_grace_is_failed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(activity_runner, "SHUTDOWN_REPORT_S", 0.2)
    never = {"/workflow-tasks/complete": (None, {})}
    w = RecordingWorker(offline_client(), task_queue="q", workflows=[Idle], answers=never)
    w._spawn(w._handle_workflow_task(first_workflow_task("r1")))
    await asyncio.sleep(0.05)
    assert [p for p, _ in w.posted] == ["/workflow-tasks/complete"]  # and no answer comes
    started = time.monotonic()
    await w.shutdown(grace=0.3)
    assert time.monotonic() - started < 5
    tasks = [(p, b) for p, b in w.posted if p.startswith("/workflow-tasks")]
    assert [p for p, _ in tasks] == ["/workflow-tasks/complete", "/workflow-tasks/fail"]
    # and the worker closed its sticky queue, so the run's next task goes elsewhere
    assert ("/sticky-queues/close", {"sticky_task_queue": w.sticky_task_queue}) in w.posted
    body = tasks[1][1]
    assert body["task_token"] == "wt-1"
    assert Failure.model_validate(body["failure"]).type == "WorkerShutdown"


async def test_tasks_handed_over_by_an_answer_after_the_grace_are_given_back() -> None:
    # The completion is recorded, but its answer (an eager activity and the
    # next workflow task, both started for this worker) comes after the grace.
    handed = {"activity_tasks": [{"task_token": "eager-2", "workflow_id": "wf-1"}]}
    handed["workflow_task"] = {**first_workflow_task("r1"), "task_token": "wt-2"}
    late = {"/workflow-tasks/complete": (0.5, handed)}
    w = RecordingWorker(offline_client(), task_queue="q", workflows=[Idle], answers=late)
    w._spawn(w._handle_workflow_task(first_workflow_task("r1")))
    await asyncio.sleep(0.05)
    await w.shutdown(grace=0.1)
    given_back = {
        (path, body["task_token"]): Failure.model_validate(body["failure"]).type
        for path, body in w.posted
        if path.endswith("/fail")
    }
    assert given_back[("/activity-tasks/fail", "eager-2")] == "WorkerShutdown"
    assert given_back[("/workflow-tasks/fail", "wt-2")] == "WorkerShutdown"


async def test_a_workflow_task_given_back_at_shutdown_never_pauses_the_run() -> None:
    """Regression: with ``pause_after_failed_workflow_tasks=1`` a worker that
    stopped while an answer handed it the next workflow task gave it back as a
    failure asking for a pause: a deploy paused the run as if its code failed."""
    handed = {"workflow_task": {**first_workflow_task("r1"), "task_token": "wt-2"}}
    late = {"/workflow-tasks/complete": (0.5, handed)}
    w = RecordingWorker(
        offline_client(),
        task_queue="q",
        workflows=[Idle],
        answers=late,
        pause_after_failed_workflow_tasks=1,
    )
    w._spawn(w._handle_workflow_task(first_workflow_task("r1")))
    await asyncio.sleep(0.05)
    await w.shutdown(grace=0.1)
    given_back = [b for p, b in w.posted if p == "/workflow-tasks/fail"]
    assert "wt-2" in [b["task_token"] for b in given_back]
    for body in given_back:
        assert Failure.model_validate(body["failure"]).type == "WorkerShutdown"
        assert body["pause"] is False
    # a failure of the code itself still pauses at the limit
    await w._fail_workflow_task(first_workflow_task("r2"), RuntimeError("bug"))
    assert w.posted[-1][1]["pause"] is True


def activity_task(token: str, **timeouts: float) -> dict[str, Any]:
    t = datetime(2024, 5, 1, tzinfo=UTC).isoformat()
    return {
        "task_token": token,
        "namespace": "default",
        "workflow_id": "wf",
        "run_id": "r1",
        "workflow_type": "Idle",
        "activity_id": "1",
        "activity_type": "never_runs",
        "task_queue": "q",
        "input": [],
        "attempt": 1,
        "scheduled_time": t,
        "started_time": t,
        **timeouts,
    }


async def test_shutdown_does_not_wait_for_attempts_the_server_has_timed_out() -> None:
    w = RecordingWorker(offline_client(), task_queue="q", activities=[never_runs])
    w._spawn(w._run_activity(activity_task("late", start_to_close_s=0.3)))
    await asyncio.sleep(0.05)
    assert w._attempts

    async def given_up() -> bool:  # at its deadline, before any shutdown
        return not w._attempts

    await eventually(given_up, timeout=5, interval=0.02, what="attempt past its deadline given up")
    started = time.monotonic()
    await w.shutdown(grace=30)
    assert time.monotonic() - started < 5  # the server refuses its outcome: no grace for it
    # nothing to report (the server closed it already) but that it stopped polling
    assert w.posted == [("/pollers/stopped", {"identity": w.identity})]
