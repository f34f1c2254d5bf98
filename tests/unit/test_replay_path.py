"""The pieces a replay of a long history leans on: handler arity, the
collector pause, the failure walk and typed events (pure logic)."""

from __future__ import annotations

import gc
import inspect
from collections.abc import Callable
from typing import Any

import pytest

from worker._failure import failures_in
from worker._gc import collector_paused, collector_resumed
from worker._history import events_from_wire
from worker._workflow_messages import _arity_problem
from worker.wire import EventType


def none() -> None: ...
def one(a: int) -> None: ...
def one_or_two(a: int, b: int = 0) -> None: ...
def any_count(*args: int) -> None: ...
def at_least_one(a: int, *rest: int) -> None: ...
def keyword_needed(a: int, *, b: int) -> None: ...
def keyword_optional(a: int, *, b: int = 0) -> None: ...
def positional_only(a: int, /, b: int = 0) -> None: ...
def with_kwargs(a: int, **kw: int) -> None: ...


class Handlers:
    def method(self, a: int, b: int = 0) -> None: ...
    def bare(self) -> None: ...


HANDLERS: list[Callable[..., Any]] = [
    none,
    one,
    one_or_two,
    any_count,
    at_least_one,
    keyword_needed,
    keyword_optional,
    positional_only,
    with_kwargs,
    Handlers().method,
    Handlers().bare,
]


@pytest.mark.parametrize("handler", HANDLERS, ids=lambda h: h.__name__)
def test_the_arity_check_agrees_with_binding_for_every_argument_count(
    handler: Callable[..., Any],
) -> None:
    for count in range(5):
        args = list(range(count))
        try:
            inspect.signature(handler).bind(*args)
            fits = True
        except TypeError:
            fits = False
        problem = _arity_problem(handler, args)
        assert (problem is None) == fits, (handler.__name__, count, problem)
        if problem is not None:
            assert "do not fit the handler" in problem


class Unhashable:
    __hash__ = None  # type: ignore[assignment]

    def __call__(self, a: int) -> None: ...


def test_a_builtin_without_a_signature_is_left_to_the_call() -> None:
    assert _arity_problem(dict.fromkeys, [1]) is None


def test_an_unhashable_callable_is_checked_by_binding() -> None:
    handler = Unhashable()
    assert _arity_problem(handler, [1]) is None
    problem = _arity_problem(handler, [1, 2])
    assert problem is not None and "do not fit the handler" in problem


def test_the_collector_pause_nests_and_ends_with_the_last_holder() -> None:
    assert gc.isenabled()
    with collector_paused():
        assert not gc.isenabled()
        with collector_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the outer pause still holds
    assert gc.isenabled()


def test_the_collector_comes_back_after_an_error() -> None:
    with pytest.raises(RuntimeError), collector_paused():
        raise RuntimeError("replay failed")
    assert gc.isenabled()


def test_a_collector_turned_off_by_the_process_stays_off() -> None:
    gc.disable()
    try:
        with collector_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_a_long_wait_inside_a_pause_runs_with_the_collector_on() -> None:
    with collector_paused():
        with collector_resumed():
            assert gc.isenabled()  # the only pause, given up for the wait
        assert not gc.isenabled()  # and taken again
        # another replay overlapping this one still holds its pause
        with collector_paused(), collector_resumed():
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()
    with collector_resumed():  # no pause held: nothing to give up
        assert gc.isenabled()
    assert gc.isenabled()


def test_the_failure_walk_finds_failures_at_any_depth_but_not_inside_payloads() -> None:
    deep = {"message": "deep", "cause": {"message": "cause"}}
    top = {"message": "top"}
    body = [
        {"attributes": {"failure": top, "input": [{"metadata": {}, "data": "MQ=="}]}},
        {"attributes": {"outcome": {"last_failure": deep}}},
        # an object shaped like a payload is opaque: nothing inside it is a failure
        {"metadata": {"failure": {"message": "not one"}}, "data": ""},
        {"failure": "not an object"},
    ]
    assert failures_in(body) == [top, deep]


def test_typed_events_come_from_wire_events_in_one_call() -> None:
    wire = [
        {
            "event_id": i,
            "event_type": "WorkflowExecutionSignaled",
            "event_time": "2026-01-01T00:00:00+00:00",
            "version": 1,
            "attributes": {"signal_name": "add"},
        }
        for i in (1, 2)
    ]
    events = events_from_wire(wire)
    assert [e.event_id for e in events] == [1, 2]
    assert events[0].event_type == EventType.WORKFLOW_EXECUTION_SIGNALED
    with pytest.raises(ValueError):
        events_from_wire([{**wire[0], "event_type": "NoSuchEvent"}])
