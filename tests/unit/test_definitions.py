"""Workflow and activity definitions, retry policies and the activity context."""

from __future__ import annotations

import asyncio
import dataclasses
import math
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from store.retry import normalize_policy
from worker import activity, workflow
from worker._definition import ActivityDefinition, WorkflowDefinition, get_activity_name
from worker._workflow_loop import WorkflowLoop
from worker.common import RetryPolicy
from worker.converter import PayloadConverter
from worker.wire import ActivityTask, RetryPolicyWire

# =========================================================================== activities


@dataclasses.dataclass
class Order:
    sku: str
    qty: int


@activity.defn
async def charge(order: Order, amount: float) -> bool:
    return True


@activity.defn(name="ship-it")
def ship(order: Order) -> None:
    pass


def test_activity_names_and_hints() -> None:
    assert get_activity_name(charge) == "charge"
    assert get_activity_name(ship) == "ship-it"
    assert get_activity_name("anything") == "anything"
    defn = ActivityDefinition.from_callable(charge)
    assert (defn.is_async, defn.arg_types, defn.return_type) == (True, (Order, float), bool)
    assert ActivityDefinition.from_callable(ship).is_async is False
    assert charge.__name__ == "charge"  # the decorator returns the function itself


def test_activity_misuse() -> None:
    async def plain() -> None:
        pass

    with pytest.raises(TypeError, match=r"decorate it with @activity.defn"):
        get_activity_name(plain)
    with pytest.raises(ValueError, match="non-empty"):
        get_activity_name("")
    with pytest.raises(ValueError, match="non-empty"):
        activity.defn(name="")(plain)
    with pytest.raises(TypeError, match="expects a function"):
        activity.defn(Order)
    with pytest.raises(TypeError, match="twice"):
        activity.defn(charge)


# =========================================================================== workflows


@workflow.defn
class Shop:
    @workflow.run
    async def run(self, order: Order) -> int:
        return order.qty

    @workflow.signal
    def add(self, sku: str) -> None:
        pass

    @workflow.signal(name="remove-item")
    async def remove(self, sku: str) -> None:
        pass

    @workflow.query
    def total(self) -> int:
        return 0

    @workflow.update
    async def set_qty(self, qty: int) -> int:
        return qty

    @set_qty.validator
    def _check_qty(self, qty: int) -> None:
        if qty < 0:
            raise ValueError("negative")


@workflow.defn(name="Shop2")
class ShopV2(Shop):
    @workflow.signal
    def add(self, sku: str) -> None:  # an override, not a duplicate
        pass


def test_workflow_definition_collects_run_and_handlers() -> None:
    defn = WorkflowDefinition.from_class(Shop)
    assert defn.name == "Shop" and defn.cls is Shop
    assert defn.run_fn is Shop.__dict__["run"]
    assert (defn.arg_types, defn.return_type) == ((Order,), int)
    assert sorted(defn.signals) == ["add", "remove-item"]
    assert defn.signals["remove-item"].is_async and not defn.signals["add"].is_async
    assert defn.signals["add"].arg_types == (str,)
    assert list(defn.queries) == ["total"]
    assert defn.queries["total"].return_type is int
    assert list(defn.updates) == ["set_qty"]
    assert defn.updates["set_qty"].validator is Shop.__dict__["_check_qty"]

    v2 = WorkflowDefinition.from_class(ShopV2)
    assert v2.name == "Shop2"
    assert v2.signals["add"].fn is ShopV2.__dict__["add"]
    assert v2.run_fn is Shop.__dict__["run"]
    # A subclass is not a workflow until decorated itself.
    with pytest.raises(TypeError, match=r"decorate the class with @workflow.defn"):
        WorkflowDefinition.from_class(type("Sub", (Shop,), {}))


def test_workflow_misuse_is_reported_at_definition() -> None:
    with pytest.raises(ValueError, match=r"has no @workflow.run method"):

        @workflow.defn
        class NoRun:
            async def run(self) -> None:
                pass

    with pytest.raises(ValueError, match=r"2 @workflow.run methods"):

        @workflow.defn
        class TwoRuns:
            @workflow.run
            async def one(self) -> None:
                pass

            @workflow.run
            async def two(self) -> None:
                pass

    with pytest.raises(TypeError, match="must be `async def`"):

        class SyncRun:
            @workflow.run
            def run(self) -> None:
                pass

    with pytest.raises(ValueError, match="two signal handlers named 'go'"):

        @workflow.defn
        class DupSignal:
            @workflow.run
            async def run(self) -> None:
                pass

            @workflow.signal(name="go")
            def a(self) -> None:
                pass

            @workflow.signal(name="go")
            def b(self) -> None:
                pass

    with pytest.raises(TypeError, match=r"query method .* must not be `async def`"):

        class AsyncQuery:
            @workflow.query
            async def q(self) -> int:
                return 1

    with pytest.raises(TypeError, match=r"validator .* must not be `async def`"):

        class AsyncValidator:
            @workflow.update
            async def u(self) -> None:
                pass

            @u.validator
            async def _v(self) -> None:
                pass

    with pytest.raises(TypeError, match="expects a class"):
        workflow.defn(charge)  # type: ignore[type-var]
    with pytest.raises(ValueError, match="non-empty"):
        workflow.defn(name="")(Shop)


def test_same_name_in_different_handler_kinds_is_allowed() -> None:
    @workflow.defn
    class Both:
        @workflow.run
        async def run(self) -> None:
            pass

        @workflow.signal(name="status")
        def set_status(self, s: str) -> None:
            pass

        @workflow.query(name="status")
        def get_status(self) -> str:
            return ""

    defn = WorkflowDefinition.from_class(Both)
    assert list(defn.signals) == ["status"] and list(defn.queries) == ["status"]


# =========================================================================== retry policy


def test_retry_policy_defaults_and_wire_form() -> None:
    policy = RetryPolicy()
    assert policy.effective_maximum_interval == timedelta(seconds=100)
    assert policy.to_wire() == RetryPolicyWire(
        initial_interval_s=1.0,
        backoff_coefficient=2.0,
        maximum_interval_s=None,
        maximum_attempts=0,
        non_retryable_error_types=[],
    )
    custom = RetryPolicy(
        initial_interval=timedelta(milliseconds=500),
        backoff_coefficient=1.5,
        maximum_interval=timedelta(seconds=30),
        maximum_attempts=4,
        non_retryable_error_types=["Declined"],
    )
    assert custom.non_retryable_error_types == ("Declined",)
    assert custom.to_wire().model_dump() == {
        "initial_interval_s": 0.5,
        "backoff_coefficient": 1.5,
        "maximum_interval_s": 30.0,
        "maximum_attempts": 4,
        "non_retryable_error_types": ["Declined"],
        "on_max_attempts": None,  # "fail", the default: the server stores nothing
    }
    assert RetryPolicy.from_wire(custom.to_wire()) == custom
    pausing = dataclasses.replace(custom, on_max_attempts="pause")
    assert pausing.to_wire().on_max_attempts == "pause"
    assert RetryPolicy.from_wire(pausing.to_wire()) == pausing
    with pytest.raises(ValueError, match="on_max_attempts"):
        RetryPolicy(on_max_attempts="retry")  # type: ignore[arg-type]
    with pytest.raises(dataclasses.FrozenInstanceError):
        custom.maximum_attempts = 1  # type: ignore[misc]


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"initial_interval": timedelta(0)}, ValueError, "initial_interval must be positive"),
        ({"initial_interval": 1}, TypeError, "initial_interval must be a timedelta"),
        ({"backoff_coefficient": 0.5}, ValueError, "backoff_coefficient must be a number from 1"),
        ({"backoff_coefficient": math.nan}, ValueError, "from 1 to 100"),
        ({"backoff_coefficient": math.inf}, ValueError, "from 1 to 100"),
        # past the server's bounds: every workflow task scheduling it would fail
        ({"backoff_coefficient": 150}, ValueError, "from 1 to 100"),
        ({"initial_interval": timedelta(days=3651)}, ValueError, "at most ten years"),
        (
            {"initial_interval": timedelta(days=1), "maximum_interval": timedelta(days=3651)},
            ValueError,
            "maximum_interval must be at most ten years",
        ),
        ({"maximum_attempts": 2**31}, ValueError, "below 2\\*\\*31"),
        (
            {"initial_interval": timedelta(seconds=10), "maximum_interval": timedelta(seconds=1)},
            ValueError,
            "must not be less than initial_interval",
        ),
        ({"maximum_attempts": -1}, ValueError, "maximum_attempts must be 0"),
        ({"maximum_attempts": 2.5}, TypeError, "maximum_attempts must be an int"),
        ({"non_retryable_error_types": "Declined"}, TypeError, "sequence of type names"),
    ],
)
def test_retry_policy_validation(
    kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        RetryPolicy(**kwargs)


def test_a_retry_policy_at_the_sdk_s_bounds_is_one_the_server_takes() -> None:
    widest = RetryPolicy(
        initial_interval=timedelta(days=3650),
        backoff_coefficient=100,
        maximum_interval=timedelta(days=3650),
        maximum_attempts=2**31 - 1,
    )
    assert normalize_policy(widest.to_wire().model_dump())["backoff_coefficient"] == 100


@pytest.mark.parametrize("seconds", [math.nan, math.inf, -1.0, 0])
def test_an_activity_timeout_must_be_positive_and_finite(seconds: float) -> None:
    # JSON has no NaN or infinity: one would reach the server as null, no timeout at all
    with pytest.raises(ValueError, match="start_to_close_timeout must be a positive, finite"):
        workflow._to_seconds(seconds, "start_to_close_timeout")


@pytest.mark.parametrize("delay", [math.nan, math.inf])
def test_a_workflow_timer_refuses_a_delay_json_cannot_carry(delay: float) -> None:
    loop = WorkflowLoop(owner=None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="finite delay"):
        loop.call_later(delay, lambda: None)


# =========================================================================== activity context


def make_task(**overrides: Any) -> ActivityTask:
    conv = PayloadConverter()
    fields: dict[str, Any] = {
        "task_token": "t",
        "namespace": "default",
        "workflow_id": "wf",
        "run_id": "r",
        "workflow_type": "Shop",
        "activity_id": "1",
        "activity_type": "charge",
        "task_queue": "q",
        "input": [],
        "attempt": 2,
        "heartbeat_details": conv.to_payloads([{"page": 3}]),
        "scheduled_time": "2024-05-01T12:00:00+00:00",
        "started_time": "2024-05-01T12:00:05Z",
        "start_to_close_s": 30.0,
        "heartbeat_s": 5.0,
    }
    fields.update(overrides)
    return ActivityTask(**fields)


async def test_activity_context_reaches_info_heartbeat_and_cancel() -> None:
    info = activity.ActivityInfo.from_task(make_task(), converter=PayloadConverter())
    assert info.attempt == 2 and info.heartbeat_details == ({"page": 3},)
    assert info.started_time == datetime(2024, 5, 1, 12, 0, 5, tzinfo=UTC)
    assert info.start_to_close_timeout == timedelta(seconds=30)
    assert info.schedule_to_close_timeout is None
    beats: list[tuple[Any, ...]] = []
    cancelled = asyncio.Event()
    ctx = activity._ActivityContext(info=info, heartbeat=beats.append, cancelled=cancelled)

    @activity.defn
    async def work() -> str:
        activity.heartbeat({"page": activity.info().heartbeat_details[0]["page"] + 1}, "x")
        assert not activity.is_cancelled()
        cancelled.set()
        await activity.wait_for_cancelled()
        return activity.info().activity_type if activity.is_cancelled() else "no"

    assert not activity.in_activity()
    token = activity._set_context(ctx)
    try:
        assert await work() == "charge"
    finally:
        activity._reset_context(token)
    assert beats == [({"page": 4}, "x")]
    with pytest.raises(RuntimeError, match="not in an activity"):
        activity.info()
    with pytest.raises(RuntimeError, match="not in an activity"):
        activity.heartbeat()


def test_a_run_method_names_its_workflow_unless_several_share_it() -> None:
    from worker._definition import handler_name, workflow_name

    @workflow.defn(name="base-flow")
    class Base:
        @workflow.run
        async def run(self) -> int:
            return 1

        @workflow.query(name="level")
        def how_far(self) -> int:
            return 1

    assert workflow_name(Base.run) == "base-flow"
    assert handler_name(Base.how_far, "query") == "level"
    with pytest.raises(TypeError, match=r"not a @workflow\.update handler"):
        handler_name(Base.how_far, "update")

    @workflow.defn(name="derived-flow")
    class Derived(Base):
        pass

    # one function, the run method of two workflows: the client must say which
    with pytest.raises(TypeError, match="run method of several workflows"):
        workflow_name(Base.run)
    assert workflow_name(Derived) == "derived-flow"
