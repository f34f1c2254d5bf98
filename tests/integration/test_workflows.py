"""Workflows end to end on a real PostgreSQL: worker, server and client in one process."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pydantic
import pytest

from ops.pg import PgCluster
from tests.apps.workflows import (
    ALL_ACTIVITIES,
    BuggyV1,
    BuggyV2,
    Chain,
    OrderedV1,
    OrderedV2,
    Pipeline,
    ThreeSteps,
)
from tests.conftest import default_namespace_client, one_region
from tests.helpers import eventually
from worker import Client, Worker, WorkflowFailureError, activity, workflow
from worker.errors import QueryFailedError, WorkflowAlreadyStartedError

pytestmark = pytest.mark.integration
QUEUE = "tests"


def make_worker(client: Client, *workflows: type) -> Worker:
    return Worker(client, task_queue=QUEUE, workflows=list(workflows), activities=ALL_ACTIVITIES)


def types_of(events: list[dict[str, Any]]) -> list[str]:
    return [e["event_type"] for e in events]


async def test_three_activities_a_timer_and_a_signal(client: Client) -> None:
    async with make_worker(client, Pipeline):
        handle = await client.start_workflow(Pipeline, 10, id="pipeline-1", task_queue=QUEUE)

        async def waiting() -> bool:
            try:
                return await handle.query("current_stage") == "waiting-for-approval"
            except QueryFailedError:  # before its first workflow task there is no state
                return False

        await eventually(waiting, timeout=20, what="workflow waiting for approval")
        await handle.signal("approve", "alice")
        result = await handle.result(timeout=20)
    assert result == {"value": 13, "approved_by": "alice"}
    events = await handle.history()
    kinds = types_of(events)
    assert [e["event_id"] for e in events] == list(range(1, len(events) + 1))
    assert kinds[0] == "WorkflowExecutionStarted"
    assert kinds[-1] == "WorkflowExecutionCompleted"
    assert kinds.count("ActivityTaskScheduled") == 3
    assert kinds.count("ActivityTaskCompleted") == 3
    assert kinds.count("TimerStarted") == 1 and kinds.count("TimerFired") == 1
    signaled = [e for e in events if e["event_type"] == "WorkflowExecutionSignaled"]
    assert len(signaled) == 1 and signaled[0]["attributes"]["signal_name"] == "approve"
    # every step is recorded in order: activity 1 and 2, then the timer, signal, activity 3
    order = [
        k
        for k in kinds
        if k in {"ActivityTaskCompleted", "TimerFired", "WorkflowExecutionSignaled"}
    ]
    assert order == [
        "ActivityTaskCompleted",
        "ActivityTaskCompleted",
        "TimerFired",
        "WorkflowExecutionSignaled",
        "ActivityTaskCompleted",
    ]
    assert all(e["version"] == 1 for e in events)


async def test_three_steps_returns_n_plus_three(client: Client) -> None:
    async with make_worker(client, ThreeSteps):
        results = await asyncio.gather(
            *[
                client.execute_workflow(ThreeSteps, n, id=f"three-{n}", task_queue=QUEUE)
                for n in range(20)
            ]
        )
    assert results == [n + 3 for n in range(20)]


async def test_describe_shows_a_failed_workflow_task_that_waits_to_be_retried(
    client: Client,
) -> None:
    handle = await client.start_workflow("Buggy", 1, id="buggy-held", task_queue=QUEUE)
    worker = Worker(
        client,
        task_queue=QUEUE,
        workflows=[BuggyV1],
        activities=ALL_ACTIVITIES,
        pause_after_failed_workflow_tasks=1,
    )
    async with worker:

        async def paused() -> bool:
            return bool((await handle.describe())["execution"]["paused"])

        await eventually(paused, timeout=30, what="the run paused by its failed task")
    desc = await handle.describe()
    # before: None, as for a run with nothing to do, while its next attempt waits
    assert desc["pending_workflow_task"] is not None
    assert desc["pending_workflow_task"]["attempt"] == 2
    assert desc["pending_workflow_task"]["scheduled_event_id"] is None


async def test_workflow_task_failure_retries_until_the_fixed_code_runs(client: Client) -> None:
    handle = await client.start_workflow("Buggy", 1, id="buggy-1", task_queue=QUEUE)
    async with make_worker(client, BuggyV1):

        async def failed_twice() -> bool:
            events = await handle.history()
            return types_of(events).count("WorkflowTaskFailed") >= 2

        await eventually(failed_twice, timeout=30, what="two failed workflow tasks")
    desc = await handle.describe()
    assert desc["execution"]["status"] == "running"  # a bug never fails the workflow
    failed = [e for e in await handle.history() if e["event_type"] == "WorkflowTaskFailed"]
    assert "bug at step 2" in failed[0]["attributes"]["failure"]["message"]
    # fix the code, restart the worker: the workflow finishes
    async with make_worker(client, BuggyV2):
        try:
            assert await handle.result(timeout=30) == 3
        except TimeoutError:
            import json

            print(json.dumps(await handle.describe(), indent=1))
            for e in await handle.history():
                print(
                    e["event_id"], e["event_type"], e["event_time"], e["attributes"].get("attempt")
                )
            raise
    kinds = types_of(await handle.history())
    assert "WorkflowExecutionFailed" not in kinds
    assert kinds.count("ActivityTaskCompleted") == 2


async def test_a_new_worker_runs_a_failing_task_at_once_not_after_its_backoff(
    pg: PgCluster, template_db: str, tmp_path: Path
) -> None:
    """Fix the code, start the worker again (under the same identity): the run
    goes on at once, although the retries of its failing task had backed off
    (here toward five minutes)."""
    region_cm = one_region(pg, template_db, tmp_path, workflow_task_retry_max_s=300.0)
    async with region_cm as region, default_namespace_client(region) as client:
        handle = await client.start_workflow("Buggy", 1, id="buggy-late", task_queue=QUEUE)

        def worker(*workflows: type) -> Worker:
            return Worker(
                client,
                task_queue=QUEUE,
                workflows=list(workflows),
                activities=ALL_ACTIVITIES,
                identity="orders-worker-1",
            )

        async with worker(BuggyV1):

            async def retry_at() -> datetime | None:
                pending = (await handle.describe())["pending_workflow_task"] or {}
                at = pending.get("retry_at")
                return datetime.fromisoformat(at) if at else None

            async def backed_off() -> bool:
                at = await retry_at()
                return at is not None and at - datetime.now(UTC) > timedelta(seconds=6)

            await eventually(backed_off, timeout=60, what="a retry at least 6 s away")
        due = await retry_at()
        assert due is not None
        async with worker(BuggyV2):
            assert await handle.result(timeout=30) == 3
        closed = (await handle.describe())["execution"]["close_time"]
        # the backoff's end did not run it: the new worker's first poll did
        assert datetime.fromisoformat(closed) < due - timedelta(seconds=2)


async def test_reordered_commands_raise_non_determinism_naming_both(client: Client) -> None:
    handle = await client.start_workflow("Ordered", id="ordered-1", task_queue=QUEUE)
    async with make_worker(client, OrderedV1):

        async def first_activity_done() -> bool:
            return "ActivityTaskCompleted" in types_of(await handle.history())

        await eventually(first_activity_done, timeout=20, what="activity_a completed")
    async with make_worker(client, OrderedV2):
        await handle.signal("proceed")

        async def nondeterminism() -> dict[str, Any] | None:
            for e in await handle.history():
                if (
                    e["event_type"] == "WorkflowTaskFailed"
                    and e["attributes"].get("cause") == "NonDeterminism"
                ):
                    return e
            return None

        failed = await eventually(nondeterminism, timeout=20, what="non-determinism error")
    message = failed["attributes"]["failure"]["message"]
    assert "activity_a" in message and "activity_b" in message, message
    assert (await handle.describe())["execution"]["status"] == "running"


async def test_continue_as_new_chain_result_follows_to_the_last_run(client: Client) -> None:
    async with make_worker(client, Chain):
        handle = await client.start_workflow(Chain, 0, 5, id="chain-1", task_queue=QUEUE)
        result = await handle.result(timeout=30)
    assert result == "done after 5 continue-as-new runs"
    runs = [r async for r in client.list_workflows(workflow_id_prefix="chain-1")]
    assert len(runs) == 6
    assert sorted(r.status for r in runs) == ["completed"] + ["continued_as_new"] * 5
    first = await client.get_workflow_handle("chain-1", run_id=handle.run_id).describe()
    assert first["execution"]["status"] == "continued_as_new"
    assert first["execution"]["continued_to_run_id"]
    # the start's handle describes the run the chain reached, as its signals
    # and result follow it (it described the first run, continued_as_new)
    last = (await handle.describe())["execution"]
    assert last["status"] == "completed" and last["run_id"] != handle.run_id
    assert last["continued_from_run_id"]


async def test_start_with_request_id_is_idempotent_and_running_id_is_rejected(
    client: Client,
) -> None:
    h1 = await client.start_workflow(
        ThreeSteps, 1, id="dup-1", task_queue=QUEUE, request_id="req-1"
    )
    h2 = await client.start_workflow(
        ThreeSteps, 1, id="dup-1", task_queue=QUEUE, request_id="req-1"
    )
    assert h1.run_id == h2.run_id
    with pytest.raises(WorkflowAlreadyStartedError):
        await client.start_workflow(ThreeSteps, 1, id="dup-1", task_queue=QUEUE, request_id="req-2")
    runs = [r async for r in client.list_workflows(workflow_id_prefix="dup-1")]
    assert len(runs) == 1


async def test_terminate_and_list_filters(client: Client) -> None:
    h = await client.start_workflow(ThreeSteps, 1, id="term-1", task_queue=QUEUE)
    await client.start_workflow(ThreeSteps, 1, id="other-1", task_queue="elsewhere")
    await h.terminate("operator said so")
    with pytest.raises(WorkflowFailureError) as err:
        await h.result(timeout=5)
    assert err.value.status == "terminated"
    running = [r.workflow_id async for r in client.list_workflows(status="running")]
    assert running == ["other-1"]
    by_queue = [r.workflow_id async for r in client.list_workflows(task_queue=QUEUE)]
    assert by_queue == ["term-1"]


@dataclasses.dataclass
class Receipt:
    order: str
    paid_at: datetime


@workflow.defn(name="Receipted")
class Receipted:
    @workflow.run
    async def run(self, order: str) -> Receipt:
        return Receipt(order, datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC))


async def test_a_workflow_started_by_its_class_gives_its_result_as_annotated(
    client: Client,
) -> None:
    # The client knows the class, so the run method's return annotation
    # rebuilds the result, as it does for activities and workflow arguments.
    expected = Receipt("o-1", datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC))
    async with make_worker(client, Receipted):
        assert await client.execute_workflow(Receipted, "o-1", id="rc-1", task_queue=QUEUE) == (
            expected
        )
        handle = await client.start_workflow(Receipted, "o-1", id="rc-2", task_queue=QUEUE)
        assert await handle.result(timeout=20) == expected
    # By name, or with a hint of the caller's own, the caller decides.
    by_name = client.get_workflow_handle("rc-2")
    assert await by_name.result(timeout=5) == {
        "order": "o-1",
        "paid_at": "2026-01-02T03:04:05+00:00",
    }
    assert await by_name.result(timeout=5, type_hint=Receipt) == expected


@workflow.defn
class Ledger:
    def __init__(self) -> None:
        self.entries: list[Receipt] = []
        self.closed = False

    @workflow.run
    async def run(self, owner: str) -> Receipt:
        await workflow.wait_condition(lambda: self.closed)
        return Receipt(owner, self.entries[-1].paid_at)

    @workflow.signal(name="book")
    def add(self, entry: Receipt) -> None:
        self.entries.append(entry)

    @workflow.query
    def last(self) -> Receipt:
        return self.entries[-1]

    @workflow.update
    def close(self) -> int:
        self.closed = True
        return len(self.entries)


async def test_a_client_names_workflows_and_handlers_by_their_methods(client: Client) -> None:
    # As a user writes it: the run method for the workflow, the handler
    # methods for its messages (their names, even a renamed one, and their
    # return annotations come from the methods).
    paid = Receipt("o-1", datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC))
    async with make_worker(client, Ledger):
        handle = await client.start_workflow(Ledger.run, "ann", id="ledger-1", task_queue=QUEUE)
        await handle.signal(Ledger.add, paid)
        assert await handle.query(Ledger.last) == paid
        assert await handle.update(Ledger.close) == 1
        assert await handle.result(timeout=20) == Receipt("ann", paid.paid_at)
        again = await client.signal_with_start_workflow(
            Ledger.run,
            "bob",
            id="ledger-2",
            task_queue=QUEUE,
            signal=Ledger.add,
            signal_args=[paid],
        )
        assert await again.query(Ledger.last) == paid
        await again.terminate()
    with pytest.raises(TypeError, match=r"not a @workflow\.signal handler"):
        await handle.signal(Ledger.last)
    with pytest.raises(TypeError, match="is not a workflow"):
        await client.start_workflow(Plain.run, id="plain-1", task_queue=QUEUE)


class Plain:
    async def run(self) -> None:
        return None


async def test_a_workflow_id_ending_like_a_route_is_described_not_routed_away(
    client: Client,
) -> None:
    """The SDK sends an id as one path segment (``orders%2Fresult``); the
    server decoded it to ``orders/result`` before routing, so describing
    ``orders/result`` answered the result (or history) of ``orders``."""
    await client.start_workflow("T", id="orders", task_queue="nobody-polls")
    for suffix in ("result", "history", "buffered"):
        wid = f"orders/{suffix}"
        started = await client.start_workflow("T", id=wid, task_queue="nobody-polls")
        h = client.get_workflow_handle(wid)
        described = await h.describe()
        assert described["execution"]["workflow_id"] == wid
        assert described["execution"]["run_id"] == started.run_id
        # and its own result and history still answer, for the id itself
        assert (await h.history())[0]["event_type"] == "WorkflowExecutionStarted"
        assert [e async for e in client.list_workflows(f"WorkflowId = '{wid}'")]
        await h.signal("s")
        await h.terminate("done")
        assert (await h.describe())["execution"]["status"] == "terminated"
        with pytest.raises(WorkflowFailureError, match="done"):
            await asyncio.wait_for(h.result(), timeout=10)
    assert (await client.get_workflow_handle("orders").describe())["execution"][
        "status"
    ] == "running"


class Shipment(pydantic.BaseModel):
    order: str
    items: set[str]
    due: datetime


@activity.defn
async def pack(shipment: Shipment) -> Shipment:
    assert isinstance(shipment, Shipment)
    return shipment.model_copy(update={"items": shipment.items | {"box"}})


@workflow.defn
class Shipping:
    @workflow.run
    async def run(self, shipment: Shipment) -> Shipment:
        assert isinstance(shipment.due, datetime)
        return await workflow.execute_activity(
            pack, shipment, start_to_close_timeout=timedelta(seconds=10)
        )


async def test_pydantic_models_travel_as_annotated(client: Client) -> None:
    # A pydantic model is sent as its JSON and rebuilt by the annotation of
    # the workflow, the activity and the result, as a dataclass is.
    sent = Shipment(order="s-1", items={"b", "a"}, due=datetime(2026, 5, 6, tzinfo=UTC))
    worker = Worker(client, task_queue=QUEUE, workflows=[Shipping], activities=[pack])
    async with worker:
        got = await client.execute_workflow(Shipping, sent, id="ship-1", task_queue=QUEUE)
    assert got == Shipment(order="s-1", items={"a", "b", "box"}, due=sent.due)
