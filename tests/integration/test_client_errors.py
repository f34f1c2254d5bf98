"""What a client sees of a run that closed without a result, and of ids and calls it gets wrong."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from typing import Any

import pytest

from store import starts
from tests.conftest import Region
from tests.helpers import eventually, free_port
from worker import (
    ActivityError,
    ApplicationError,
    CanceledError,
    Client,
    RetryPolicy,
    Worker,
    WorkflowFailureError,
    activity,
    wire,
    workflow,
)
from worker.errors import (
    InvalidArgumentError,
    QueryFailedError,
    QueryTimedOutError,
    RouteNotFoundError,
    TimeoutError_,
    UnavailableError,
    UpdateTimedOutError,
    WorkflowAlreadyStartedError,
    WorkflowNotFoundError,
)

pytestmark = pytest.mark.integration
QUEUE = "client-errors"


@activity.defn
async def declines(order: str) -> None:
    raise ApplicationError(f"declined {order}", type="Declined", non_retryable=True)


@activity.defn
async def dawdles(seconds: float) -> str:
    await asyncio.sleep(seconds)
    return "done"


@activity.defn
async def gives_up() -> str:
    # Code of its own raising CancelledError (a library's, say), no cancel asked for.
    raise asyncio.CancelledError("gave up on the upstream call")


@workflow.defn(name="ErrorShapes")
class ErrorShapes:
    @workflow.run
    async def run(self, mode: str) -> str:
        if mode == "declined":
            await workflow.execute_activity(
                declines, "o-1", activity_id="charge-1", start_to_close_timeout=timedelta(seconds=5)
            )
        elif mode == "attempts":
            await workflow.execute_activity(
                dawdles,
                5.0,
                start_to_close_timeout=timedelta(milliseconds=300),
                retry_policy=RetryPolicy(
                    initial_interval=timedelta(milliseconds=100), maximum_attempts=2
                ),
            )
        elif mode == "gives-up":
            await workflow.execute_activity(
                gives_up,
                start_to_close_timeout=timedelta(minutes=10),
                retry_policy=RetryPolicy(
                    initial_interval=timedelta(milliseconds=100), maximum_attempts=2
                ),
            )
        elif mode == "budget":
            # no start_to_close_timeout: the attempt gets the whole budget
            await workflow.execute_activity(
                dawdles, 5.0, schedule_to_close_timeout=timedelta(seconds=1)
            )
        await workflow.sleep(3600)
        return "slept"

    @workflow.query
    def explode(self) -> str:
        raise ValueError("no such stage")


def worker_for(client: Client) -> Worker:
    return Worker(
        client, task_queue=QUEUE, workflows=[ErrorShapes], activities=[declines, dawdles, gives_up]
    )


async def _failure_of(client: Client, mode: str, wid: str) -> WorkflowFailureError:
    with pytest.raises(WorkflowFailureError) as err:
        await client.execute_workflow(ErrorShapes, mode, id=wid, task_queue=QUEUE)
    return err.value


async def test_a_canceled_run_raises_canceled_error_with_the_reason(client: Client) -> None:
    async with worker_for(client):
        h = await client.start_workflow(ErrorShapes, "sleep", id="canceled-1", task_queue=QUEUE)
        await h.cancel("customer asked")
        with pytest.raises(WorkflowFailureError) as err:
            await h.result(timeout=20)
    assert err.value.status == "canceled"
    cause = err.value.__cause__
    assert isinstance(cause, CanceledError) and not isinstance(cause, ApplicationError)
    assert cause.message == "workflow canceled: customer asked"


async def test_a_second_cancel_request_records_nothing(client: Client) -> None:
    # no worker: the run stays cancel-requested while the requests arrive
    h = await client.start_workflow(ErrorShapes, "sleep", id="cancel-twice", task_queue=QUEUE)
    await h.cancel("first")
    await h.cancel("second")  # succeeds, as Temporal's does
    await h.cancel("third", request_id="cancel-third")
    kinds = [e["event_type"] for e in await h.history()]
    assert kinds.count("WorkflowExecutionCancelRequested") == 1
    async with worker_for(client):
        with pytest.raises(WorkflowFailureError) as err:
            await h.result(timeout=20)
    assert err.value.__cause__ is not None
    assert err.value.__cause__.message == "workflow canceled: first"


async def test_a_run_timeout_raises_timeout_error(client: Client) -> None:
    async with worker_for(client):
        h = await client.start_workflow(
            ErrorShapes, "sleep", id="run-timeout-1", task_queue=QUEUE, run_timeout=1
        )
        with pytest.raises(WorkflowFailureError) as err:
            await h.result(timeout=20)
    assert err.value.status == "timed_out"
    cause = err.value.__cause__
    assert isinstance(cause, TimeoutError_) and cause.timeout_type == "run"


async def test_the_client_sees_which_activity_failed_and_why_it_stopped(client: Client) -> None:
    async with worker_for(client):
        declined = await _failure_of(client, "declined", "declined-1")
        attempts = await _failure_of(client, "attempts", "attempts-1")
    act = declined.__cause__
    assert isinstance(act, ActivityError)
    assert (act.activity_type, act.activity_id) == ("declines", "charge-1")
    assert act.retry_state == "non_retryable_failure"
    assert isinstance(act.__cause__, ApplicationError) and act.__cause__.type == "Declined"

    act = attempts.__cause__
    assert isinstance(act, ActivityError) and act.activity_type == "dawdles"
    assert act.activity_id  # the SDK's own id for it
    assert act.retry_state == "maximum_attempts_reached"
    timeout = act.__cause__
    assert isinstance(timeout, TimeoutError_) and timeout.timeout_type == "start_to_close"


async def test_an_activity_raising_cancelled_error_itself_fails_its_attempts(
    client: Client,
) -> None:
    # Not a cancel the workflow asked for: each attempt is reported failed at
    # once (as in Temporal), not left to its ten-minute start-to-close timeout.
    async with worker_for(client):
        failed = await asyncio.wait_for(_failure_of(client, "gives-up", "gives-up-1"), 30)
    act = failed.__cause__
    assert isinstance(act, ActivityError) and act.activity_type == "gives_up"
    assert act.retry_state == "maximum_attempts_reached"
    cause = act.__cause__
    assert isinstance(cause, ApplicationError) and cause.type == "CancelledError"
    assert cause.message == "gave up on the upstream call"
    events = await client.get_workflow_handle("gives-up-1").history()
    assert [e["event_type"] for e in events].count("ActivityTaskCanceled") == 0


async def test_an_activity_with_only_a_budget_times_out_on_the_budget(client: Client) -> None:
    async with worker_for(client):
        failed = await _failure_of(client, "budget", "budget-1")
    act = failed.__cause__
    assert isinstance(act, ActivityError) and act.retry_state == "timeout"
    timeout = act.__cause__
    assert isinstance(timeout, TimeoutError_)
    assert timeout.timeout_type == "schedule_to_close"
    assert "(schedule_to_close)" in act.message
    events = await client.get_workflow_handle("budget-1").history()
    closed = [e for e in events if e["event_type"] == "ActivityTaskTimedOut"]
    assert [e["attributes"]["timeout_type"] for e in closed] == ["schedule_to_close"]


async def test_a_failed_query_says_so_once(client: Client) -> None:
    async with worker_for(client):
        h = await client.start_workflow(ErrorShapes, "sleep", id="query-1", task_queue=QUEUE)
        with pytest.raises(QueryFailedError) as err:
            await h.query("explode")
        await h.terminate("done")
    assert str(err.value) == "[QUERY_FAILED] query 'explode' failed: ValueError: no such stage"


@pytest.mark.parametrize("wid", ["line\nbreak", "tab\there", "bell\x07", "del\x7f", "c1\x85"])
async def test_ids_with_control_characters_are_refused_and_nothing_is_stored(
    client: Client, wid: str
) -> None:
    with pytest.raises(InvalidArgumentError) as err:
        await client.start_workflow(ErrorShapes, "sleep", id=wid, task_queue=QUEUE)
    assert "printable characters" in err.value.message
    with pytest.raises(InvalidArgumentError):
        await client.signal_with_start_workflow(
            ErrorShapes, "sleep", id=wid, task_queue=QUEUE, signal="nudge"
        )
    with pytest.raises(WorkflowNotFoundError):
        await client.get_workflow_handle(wid).describe()
    assert await client.count_workflows() == 0


async def test_a_run_whose_id_holds_a_line_break_can_still_be_reached(
    region: Region, client: Client
) -> None:
    # as a server before the id check started it
    wid = "old\nid"
    req = wire.StartWorkflowRequest(workflow_id=wid, workflow_type="ErrorShapes", task_queue=QUEUE)
    await region.store.txn(
        lambda conn: starts.start_workflow_txn(region.store, conn, "default", req)
    )
    h = client.get_workflow_handle(wid)
    assert (await h.describe())["execution"]["workflow_id"] == wid
    await h.signal("nudge")
    await h.cancel("tidy up")
    await h.terminate("tidy up")
    with pytest.raises(WorkflowFailureError) as err:
        await h.result(timeout=5)
    assert err.value.status == "terminated"

    async def closed() -> bool:
        return (await h.describe())["execution"]["status"] == "terminated"

    await eventually(closed, what="the run to close")


async def test_an_unknown_route_is_a_typed_error(client: Client) -> None:
    with pytest.raises(RouteNotFoundError):
        await client.call("GET", "/api/v1/no-such-thing")


async def test_result_timeout_bounds_the_wait_for_a_server_that_is_down() -> None:
    # Nothing listens on the port: every attempt is refused, and the client
    # would otherwise retry for its whole retry_for_s.
    dead = await Client.connect(f"http://127.0.0.1:{free_port()}", retry_for_s=30, lazy=True)
    async with dead:
        started = time.monotonic()
        with pytest.raises(UnavailableError):
            await dead.get_workflow_handle("order-1").result(timeout=1)
        assert time.monotonic() - started < 5


async def test_connect_with_a_dead_and_a_live_endpoint_works(region: Region) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    async with await Client.connect([dead, region.url], namespace="default") as client:
        await client.create_namespace("default")
        assert "default" in {n["name"] for n in await client.list_namespaces()}


async def test_connect_to_a_closed_port_is_unavailable_at_once() -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    started = time.monotonic()
    with pytest.raises(UnavailableError, match=dead):
        await Client.connect([dead], namespace="default", retry_for_s=1)
    assert time.monotonic() - started < 5


async def test_result_timeout_on_a_running_workflow_is_a_timeout_error(client: Client) -> None:
    h = await client.start_workflow(ErrorShapes, "sleep", id="result-timeout", task_queue=QUEUE)
    with pytest.raises(TimeoutError):
        await h.result(timeout=0.5)


@pytest.mark.parametrize("timeout", [float("nan"), -1, timedelta(seconds=-1), float("inf"), "soon"])
async def test_a_result_timeout_that_is_no_duration_is_a_typed_error(
    client: Client, timeout: Any
) -> None:
    # NaN made every deadline check false: the client polled the server
    # without waiting, for ever.
    h = await client.start_workflow(ErrorShapes, "sleep", id="result-nan", task_queue=QUEUE)
    with pytest.raises(InvalidArgumentError, match="timeout must be a finite duration"):
        await asyncio.wait_for(h.result(timeout=timeout), 5)


async def test_a_result_timeout_of_zero_asks_once(client: Client) -> None:
    h = await client.start_workflow(ErrorShapes, "sleep", id="result-zero", task_queue=QUEUE)
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        await h.result(timeout=0)
    assert time.monotonic() - started < 2


@pytest.mark.parametrize(
    "option", [{"id_reuse_policy": "reject"}, {"versioning_behavior": "sometimes"}]
)
async def test_a_start_option_out_of_its_choices_is_a_typed_error(
    client: Client, option: dict[str, str]
) -> None:
    for start in (client.start_workflow, client.execute_workflow):
        with pytest.raises(InvalidArgumentError, match=next(iter(option))) as err:
            await start(ErrorShapes, "sleep", id="bad-option", task_queue=QUEUE, **option)  # type: ignore[operator]
        assert err.value.code == "INVALID_ARGUMENT"
    with pytest.raises(InvalidArgumentError):
        await client.signal_with_start_workflow(
            ErrorShapes, "sleep", id="bad-option", task_queue=QUEUE, signal="s", **option
        )  # type: ignore[arg-type]
    with pytest.raises(WorkflowNotFoundError):
        await client.get_workflow_handle("bad-option").describe()


async def test_a_reuse_policy_may_be_named_as_temporal_spells_it(client: Client) -> None:
    await client.start_workflow(ErrorShapes, "sleep", id="by-name", task_queue=QUEUE)
    with pytest.raises(WorkflowAlreadyStartedError):
        await client.start_workflow(
            ErrorShapes, "sleep", id="by-name", task_queue=QUEUE, id_reuse_policy="REJECT_DUPLICATE"
        )  # type: ignore[arg-type]


async def test_query_and_update_take_their_timeout_as_a_timedelta(client: Client) -> None:
    # no worker: both wait out the timeout they were given
    h = await client.start_workflow(ErrorShapes, "sleep", id="timedelta-1", task_queue=QUEUE)
    with pytest.raises(QueryTimedOutError, match=r"0\.5s"):
        await h.query("explode", timeout=timedelta(milliseconds=500))
    with pytest.raises(UpdateTimedOutError, match=r"0\.5s"):
        await h.update("nothing", timeout=timedelta(milliseconds=500))


@pytest.mark.parametrize(
    "option",
    [
        {"memo": [("customer", "c-1")]},
        {"memo": "customer=c-1"},
        {"search_attributes": [("CustomerId", "c-1")]},
        {"signal_args": "approve"},
    ],
)
async def test_a_start_option_of_the_wrong_shape_is_a_typed_error(
    client: Client, option: dict[str, Any]
) -> None:
    with pytest.raises(InvalidArgumentError, match=next(iter(option))):
        await client.signal_with_start_workflow(
            ErrorShapes, "sleep", id="wrong-shape", task_queue=QUEUE, signal="s", **option
        )
    if "signal_args" not in option:
        with pytest.raises(InvalidArgumentError, match=next(iter(option))):
            await client.start_workflow(
                ErrorShapes, "sleep", id="wrong-shape", task_queue=QUEUE, **option
            )
    with pytest.raises(WorkflowNotFoundError):
        await client.get_workflow_handle("wrong-shape").describe()
