"""Signal handlers run in the order their events were delivered, whatever their kind.

A handler that is a plain function runs without a task of its own (a replay
delivers thousands of signals), at the point where its task's first step
would have run. These tests pin that order among async handlers and handlers
that return an awaitable, so histories written by workers that ran every
handler in a task replay the same; and, as in Temporal, the signals of a task
run before the code an activity result of the same task resumes (a run
written before that keeps the event order on replay).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable
from typing import Any

from tests.unit.test_workflow_instance import TIMEOUT, Sim, dec, step, types, update
from worker import workflow
from worker._workflow_instance import SIGNALS_FIRST_PATCH
from worker.converter import PayloadConverter
from worker.errors import ApplicationError
from worker.wire import CommandType, EventType, Payload


@workflow.defn(name="Mixed")
class Mixed:
    def __init__(self) -> None:
        self.log: list[str] = []

    @workflow.run
    async def run(self) -> list[str]:
        got = await workflow.execute_activity(step, 1, start_to_close_timeout=TIMEOUT)
        self.log.append(f"activity {got}")
        await workflow.wait_condition(lambda: len(self.log) >= 6)
        return self.log

    @workflow.query
    def seen(self) -> list[str]:
        return self.log

    @workflow.signal
    def plain(self, tag: str) -> None:
        self.log.append(f"plain {tag}")

    @workflow.signal
    async def coro(self, tag: str) -> None:
        self.log.append(f"async {tag}")
        await asyncio.sleep(0)
        self.log.append(f"async {tag} resumed")

    @workflow.signal
    def hands_back(self, tag: str) -> Awaitable[None]:
        return self._later(tag)

    async def _later(self, tag: str) -> None:
        self.log.append(f"returned {tag}")
        await asyncio.sleep(0)
        self.log.append(f"returned {tag} resumed")


EXPECTED = [
    # the signals of the task the result came in are handed over first, each
    # handler where a task of its own would have put it: the plain one, then
    # the first half of each async body...
    "plain a",
    "async b",
    "returned c",
    # ...and the second halves after all the first halves...
    "async b resumed",
    "returned c resumed",
    # ...and only then does the run resume with its result, as in Temporal
    "activity 42",
]

#: The order a run written before signals went first keeps on replay.
EXPECTED_IN_EVENT_ORDER = [
    "activity 42",
    "plain a",
    "async b",
    "returned c",
    "async b resumed",
    "returned c resumed",
]


def test_handlers_run_before_the_code_an_earlier_activity_result_resumes() -> None:
    sim = Sim(Mixed)
    assert types(sim.run_task()) == [CommandType.SCHEDULE_ACTIVITY]
    # One activation: the activity's result first, then three signals.
    sim.complete_activity(next(iter(sim.scheduled)), 42)
    sim.signal("plain", "a")
    sim.signal("coro", "b")
    sim.signal("hands_back", "c")
    commands = sim.run_task()
    assert types(commands) == [CommandType.RECORD_MARKER, CommandType.COMPLETE_WORKFLOW]
    assert commands[0].attributes["details"] == {"patch_id": SIGNALS_FIRST_PATCH}
    assert dec(commands[1].attributes["result"]) == EXPECTED
    # a fresh instance replays the recorded history to the same state
    assert dec(sim.replay().query("seen", []).model_dump()) == EXPECTED


def test_a_run_written_in_event_order_replays_in_event_order() -> None:
    sim = Sim(Mixed)
    sim.run_task()
    # As a worker of an earlier release ran it: no marker, the result first.
    sim.instance._patches[SIGNALS_FIRST_PATCH] = False
    sim.complete_activity(next(iter(sim.scheduled)), 42)
    sim.signal("plain", "a")
    sim.signal("coro", "b")
    sim.signal("hands_back", "c")
    commands = sim.run_task()
    assert types(commands) == [CommandType.COMPLETE_WORKFLOW]
    assert dec(commands[0].attributes["result"]) == EXPECTED_IN_EVENT_ORDER
    assert dec(sim.replay().query("seen", []).model_dump()) == EXPECTED_IN_EVENT_ORDER


@workflow.defn(name="Batches")
class Batches:
    """Takes signals, and after each activity continues as new with what it has."""

    def __init__(self) -> None:
        self.got: list[str] = []

    @workflow.run
    async def run(self) -> None:
        await workflow.execute_activity(step, 1, start_to_close_timeout=TIMEOUT)
        workflow.continue_as_new(self.got)

    @workflow.signal
    def add(self, item: str) -> None:
        self.got.append(item)


def test_continue_as_new_after_a_result_carries_the_signals_of_its_task() -> None:
    sim = Sim(Batches)
    sim.run_task()
    sim.complete_activity(next(iter(sim.scheduled)), 1)
    # signals that came after the result, before the worker took the task:
    # before, the run resumed first and continued as new without them
    sim.signal("add", "x")
    sim.signal("add", "y")
    commands = sim.run_task()
    assert types(commands) == [CommandType.RECORD_MARKER, CommandType.CONTINUE_AS_NEW]
    assert dec(commands[1].attributes["input"][0]) == ["x", "y"]
    sim.replay()


@workflow.defn(name="PlainFails")
class PlainFails:
    def __init__(self) -> None:
        self.log: list[str] = []

    @workflow.run
    async def run(self) -> None:
        await workflow.wait_condition(lambda: False)

    @workflow.signal
    def fail(self) -> None:
        raise ApplicationError("refused", type="Refused")

    @workflow.signal
    def plain(self, tag: str) -> None:
        self.log.append(tag)
        workflow.start_activity(step, 1, start_to_close_timeout=TIMEOUT)

    @workflow.query
    def seen(self) -> list[str]:
        return self.log


def test_a_plain_handler_s_error_reaches_the_run_after_the_handlers_already_due() -> None:
    sim = Sim(PlainFails)
    sim.run_task()
    sim.signal("fail")
    sim.signal("plain", "after")
    commands = sim.run_task()
    # As with a task per handler, the error reaches the run one callback
    # later: the handler delivered after it has run (and issued its command)
    # by then.
    assert types(commands) == [CommandType.SCHEDULE_ACTIVITY, CommandType.FAIL_WORKFLOW]
    assert commands[1].attributes["failure"]["type"] == "Refused"
    assert dec(sim.instance.query("seen", []).model_dump()) == ["after"]


def test_a_dynamic_plain_handler_and_a_coroutine_one_keep_their_order() -> None:
    sim = Sim(Dynamic)
    sim.run_task()
    for tag in ("a", "b", "c", "d"):
        sim.signal("plain" if tag in "ac" else "coro", tag)
    commands = sim.run_task()
    assert dec(commands[0].attributes["result"]) == ["a", "b", "c", "d", "b resumed", "d resumed"]
    sim.replay()


@workflow.defn(name="Dynamic")
class Dynamic:
    @workflow.run
    async def run(self) -> list[str]:
        log: list[str] = []

        async def coro(tag: str) -> None:
            log.append(tag)
            await asyncio.sleep(0)
            log.append(f"{tag} resumed")

        workflow.set_signal_handler("plain", log.append)
        workflow.set_signal_handler("coro", coro)
        await workflow.wait_condition(lambda: len(log) >= 6)
        return log


# ----------------------------------------------------------------- signal payloads


@workflow.defn(name="Summer")
class Summer:
    def __init__(self) -> None:
        self.got: list[Any] = []

    @workflow.run
    async def run(self) -> list[Any]:
        await workflow.wait_condition(lambda: len(self.got) >= 2)
        return self.got

    @workflow.signal
    def add(self, value: Any) -> None:
        self.got.append(value)


class Tagging(PayloadConverter):
    """A converter of its own: signal payloads must reach its from_payload."""

    def from_payload(self, payload: Payload, type_hint: Any = None) -> Any:
        return ("tagged", super().from_payload(payload, type_hint))


def test_signal_payloads_reach_a_converter_of_its_own() -> None:
    sim = Sim(Summer)
    sim.run_task()
    sim.signal("add", {"n": 1})
    sim.signal("add", "two")
    assert dec(sim.run_task()[0].attributes["result"]) == [{"n": 1}, "two"]

    tagged = Sim(Summer, converter=Tagging())
    tagged.run_task()
    tagged.signal("add", 1)
    tagged.signal("add", 2)
    result = tagged.run_task()[0].attributes["result"]
    assert dec(result) == [["tagged", 1], ["tagged", 2]]


def test_a_signal_whose_payload_is_malformed_is_dropped_not_retried_forever() -> None:
    sim = Sim(Summer)
    sim.run_task()
    sim.add(
        EventType.WORKFLOW_EXECUTION_SIGNALED,
        signal_name="add",
        input=[{"metadata": "not an object", "data": 7}],
        identity="client",
    )
    sim.schedule_task()
    sim.signal("add", 1)
    sim.signal("add", 2)
    assert dec(sim.run_task()[0].attributes["result"]) == [1, 2]
    sim.replay()


# ----------------------------------------------------------------- teardown


@workflow.defn(name="SlowHandlers")
class SlowHandlers:
    calls = 0

    @workflow.run
    async def run(self) -> None:
        await workflow.wait_condition(lambda: False)

    @workflow.signal
    def slow(self) -> None:
        type(self).calls += 1
        time.sleep(0.02)


def test_handlers_still_queued_when_an_instance_is_torn_down_do_not_run() -> None:
    sim = Sim(SlowHandlers)
    sim.instance.deadlock_timeout_s = 0.05
    sim.run_task()
    for _ in range(20):
        sim.signal("slow")
    SlowHandlers.calls = 0
    error = sim.fail_task()
    assert "without waiting" in str(error.__cause__ or error)
    # The deadline stopped the activation after a few handlers, and tearing
    # the instance down ran none of the rest (as with a task per handler,
    # cancelled before its first step).
    assert SlowHandlers.calls <= 5
    assert SlowHandlers.calls < 20


class NotASubclass:
    """A payload converter of its own, not derived from PayloadConverter."""

    def __init__(self) -> None:
        self._inner = PayloadConverter()

    def from_payloads(self, payloads: list[Payload], hints: Any = ()) -> list[Any]:
        return [("own", v) for v in self._inner.from_payloads(payloads, hints)]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def test_signal_payloads_reach_a_converter_that_is_not_a_subclass() -> None:
    sim = Sim(Summer, converter=NotASubclass())  # type: ignore[arg-type]
    sim.run_task()
    sim.signal("add", 1)
    sim.signal("add", 2)
    assert dec(sim.run_task()[0].attributes["result"]) == [["own", 1], ["own", 2]]


# ----------------------------------------------------------------- updates


@workflow.defn(name="Checked")
class Checked:
    def __init__(self) -> None:
        self.log: list[str] = []

    @workflow.run
    async def run(self) -> list[str]:
        for n in (1, 2):
            got = await workflow.execute_activity(step, n, start_to_close_timeout=TIMEOUT)
            self.log.append(f"activity {got}")
        await workflow.wait_condition(lambda: len(self.log) >= 3)
        return self.log

    @workflow.query
    def seen(self) -> list[str]:
        return self.log

    @workflow.update
    def note(self, tag: str) -> None:
        self.log.append(f"update {tag}")

    @note.validator
    def _only_good(self, tag: str) -> None:
        if tag == "bad":
            raise ValueError("refused")


def test_an_update_runs_before_the_code_a_result_of_its_task_resumes() -> None:
    sim = Sim(Checked)
    sim.run_task()
    sim.complete_activity(next(iter(sim.scheduled)), 1)
    # The validator refuses this update: no event records it, but the task
    # records the marker, which a replay must take all the same.
    first = sim.run_task(updates=[update("u1", "note", "bad")])
    assert types(first)[0] == CommandType.RECORD_MARKER
    sim.complete_activity(sorted(sim.scheduled)[-1], 2)
    last = sim.run_task(updates=[update("u2", "note", "good")])
    assert CommandType.RECORD_MARKER not in types(last)
    expected = ["activity 1", "update good", "activity 2"]
    assert dec(last[-1].attributes["result"]) == expected
    assert dec(sim.replay().query("seen", []).model_dump()) == expected


# ----------------------------------------------------------------- cancel


@workflow.defn(name="Charges")
class Charges:
    def __init__(self) -> None:
        self.log: list[str] = []

    @workflow.run
    async def run(self) -> list[str]:
        try:
            got = await workflow.execute_activity(step, 1, start_to_close_timeout=TIMEOUT)
            self.log.append(f"charged {got}")
            await workflow.execute_activity(step, 2, start_to_close_timeout=TIMEOUT)
            self.log.append("shipped")
        except asyncio.CancelledError:
            self.log.append("canceled")
        return self.log


def test_a_cancel_after_a_result_in_one_task_lands_after_the_code_took_the_result() -> None:
    sim = Sim(Charges)
    sim.run_task()
    # the charge completed, then the cancel came, before the worker took the task
    sim.complete_activity(next(iter(sim.scheduled)), 42)
    sim.request_cancel()
    commands = sim.run_task()
    # before: the cancel landed at once and the code never learnt it had charged
    assert types(commands) == [
        CommandType.RECORD_MARKER,
        CommandType.SCHEDULE_ACTIVITY,
        CommandType.RECORD_MARKER,
        CommandType.REQUEST_CANCEL_ACTIVITY,
        CommandType.COMPLETE_WORKFLOW,
    ]
    assert dec(commands[-1].attributes["result"]) == ["charged 42", "canceled"]
    sim.replay()


def test_a_run_written_with_the_cancel_at_once_replays_so() -> None:
    sim = Sim(Charges)
    sim.run_task()
    sim.instance._patches[SIGNALS_FIRST_PATCH] = False
    sim.complete_activity(next(iter(sim.scheduled)), 42)
    sim.request_cancel()
    commands = sim.run_task()
    assert dec(commands[-1].attributes["result"]) == ["canceled"]
    sim.replay()
