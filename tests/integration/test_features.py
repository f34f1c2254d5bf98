"""Updates, retries, heartbeats, cancellation and history long-polls on real PostgreSQL."""

from __future__ import annotations

import asyncio

import orjson
import pytest

from store import workflows
from store.mutable_state import event_to_wire
from tests.apps.workflows import ALL_ACTIVITIES, Counter, NonRetryable, Pipeline, Retrying
from tests.conftest import Region
from worker import Client, Worker, WorkflowFailureError
from worker._history import parse_time
from worker.errors import (
    UpdateRejectedError,
    WorkflowAlreadyStartedError,
    WorkflowNotRunningError,
)
from worker.wire import WorkflowIdReusePolicy

pytestmark = pytest.mark.integration
QUEUE = "features"


def worker_for(client: Client, *workflows: type) -> Worker:
    return Worker(client, task_queue=QUEUE, workflows=list(workflows), activities=ALL_ACTIVITIES)


async def test_updates_are_validated_recorded_and_deduplicated(client: Client) -> None:
    async with worker_for(client, Counter):
        handle = await client.start_workflow(Counter, id="counter-1", task_queue=QUEUE)
        try:
            assert await handle.update("add", 5, update_id="u-1", timeout=5) == 5
        except Exception:
            for e in await handle.history():
                print(e["event_id"], e["event_type"], e["attributes"])
            raise
        # the same update id again: the first outcome, not a second increment
        assert await handle.update("add", 5, update_id="u-1") == 5
        assert await handle.update("add", 2, update_id="u-2") == 7
        with pytest.raises(UpdateRejectedError) as err:
            await handle.update("add", -1, update_id="u-3")
        assert "only positive" in err.value.message
        assert await handle.query("current") == 7
        await handle.signal("finish")
        assert await handle.result(timeout=20) == 7
    events = await handle.history()
    accepted = [e for e in events if e["event_type"] == "WorkflowExecutionUpdateAccepted"]
    assert [e["attributes"]["update_id"] for e in accepted] == ["u-1", "u-2"]  # not u-3
    with pytest.raises(WorkflowNotRunningError):
        await handle.update("add", 1, update_id="u-4")


async def test_activity_retries_carry_heartbeat_details(client: Client) -> None:
    async with worker_for(client, Retrying):
        result = await client.execute_workflow(Retrying, 2, id="retry-1", task_queue=QUEUE)
    assert result == {"attempt": 3, "previous": ["attempt-2"]}
    events = await client.get_workflow_handle("retry-1").history()
    kinds = [e["event_type"] for e in events]
    # retries are not history events: one schedule, one start (attempt 3), one completion
    assert kinds.count("ActivityTaskScheduled") == 1
    started = [e for e in events if e["event_type"] == "ActivityTaskStarted"]
    assert started[0]["attributes"]["attempt"] == 3
    assert "flaky failure on attempt 2" in started[0]["attributes"]["last_failure"]["message"]


async def test_non_retryable_error_type_fails_at_once(client: Client) -> None:
    async with worker_for(client, NonRetryable):
        result = await client.execute_workflow(NonRetryable, id="nonretry-1", task_queue=QUEUE)
    assert "card declined" in result
    events = await client.get_workflow_handle("nonretry-1").history()
    failed = [e for e in events if e["event_type"] == "ActivityTaskFailed"]
    assert len(failed) == 1
    started = [e for e in events if e["event_type"] == "ActivityTaskStarted"]
    assert started[0]["attributes"]["attempt"] == 1


async def test_signal_with_start_and_cancel(client: Client) -> None:
    async with worker_for(client, Counter):
        h = await client.signal_with_start_workflow(
            Counter, id="sws-1", task_queue=QUEUE, signal="finish"
        )
        assert await h.result(timeout=20) == 0
        h2 = await client.start_workflow(Counter, id="cancel-1", task_queue=QUEUE)
        await h2.cancel("no longer needed")
        with pytest.raises(WorkflowFailureError) as err:
            await h2.result(timeout=20)
    assert err.value.status == "canceled"
    kinds = [e["event_type"] for e in await h2.history()]
    assert "WorkflowExecutionCancelRequested" in kinds
    assert kinds[-1] == "WorkflowExecutionCanceled"


async def test_signal_with_start_takes_the_start_options(client: Client) -> None:
    """Memo, search attributes, timeouts and the id reuse policy apply to the run
    a signal-with-start starts, as they do to a plain start."""
    await client.add_search_attribute("Team", "Keyword")
    async with worker_for(client, Counter):
        h = await client.signal_with_start_workflow(
            Counter,
            id="sws-opts",
            task_queue=QUEUE,
            signal="finish",
            memo={"owner": "ops"},
            search_attributes={"Team": "billing"},
            run_timeout=600,
            task_timeout=5,
        )
        assert await h.result(timeout=20) == 0
        d = (await h.describe())["execution"]
        assert d["memo"] == {"owner": "ops"}
        assert d["search_attributes"]["Team"] == "billing"
        started = (await h.history())[0]["attributes"]
        assert (started["run_timeout_s"], started["task_timeout_s"]) == (600, 5)
        runs = [r.workflow_id async for r in client.list_workflows("Team = 'billing'")]
        assert runs == ["sws-opts"]
        # the run closed: a rejected duplicate starts nothing and signals nothing
        with pytest.raises(WorkflowAlreadyStartedError):
            await client.signal_with_start_workflow(
                Counter,
                id="sws-opts",
                task_queue=QUEUE,
                signal="finish",
                id_reuse_policy=WorkflowIdReusePolicy.REJECT_DUPLICATE,
            )


async def test_a_handle_given_a_run_acts_on_that_run(client: Client) -> None:
    """``get_workflow_handle(id, run_id=...)`` signals, queries, cancels and
    terminates that run; a handle from a start acts on the current run."""
    async with worker_for(client, Counter):
        first = await client.start_workflow(Counter, id="pinned-h", task_queue=QUEUE)
        await first.update("add", 3)
        await first.terminate("make room")
        second = await client.start_workflow(Counter, id="pinned-h", task_queue=QUEUE)
        old = client.get_workflow_handle("pinned-h", run_id=first.run_id)
        with pytest.raises(WorkflowNotRunningError):
            await old.signal("finish")
        with pytest.raises(WorkflowNotRunningError):
            await old.cancel("too late")
        with pytest.raises(WorkflowNotRunningError):
            await old.terminate("too late")
        assert await old.query("current") == 3  # the closed run's own state
        assert await second.query("current") == 0
        # the start's handle of the first run goes to the current run, as before
        await first.update("add", 2)
        await first.signal("finish")
        assert await second.result(timeout=20) == 2
    kinds = [e["event_type"] for e in await old.history()]
    assert kinds[-1] == "WorkflowExecutionTerminated"
    assert "WorkflowExecutionSignaled" not in kinds


async def test_history_long_poll_returns_when_new_events_arrive(client: Client) -> None:
    handle = await client.start_workflow(Pipeline, 1, id="longpoll-1", task_queue=QUEUE)
    first = await handle.history()
    nxt = first[-1]["event_id"] + 1
    path = "/api/v1/namespaces/default/workflows/longpoll-1/history"

    async def wait_for_more() -> dict:
        return await client.call("GET", path, params={"from_event_id": nxt, "wait_s": 20})

    waiter = asyncio.create_task(wait_for_more())
    await asyncio.sleep(0.5)
    assert not waiter.done()  # nothing new yet: the call is waiting
    async with worker_for(client, Pipeline):
        res = await asyncio.wait_for(waiter, 20)
    assert res["events"] and res["events"][0]["event_id"] == nxt


async def test_activity_timeouts_are_enforced_by_the_server(client: Client) -> None:
    from tests.apps.workflows import Timeouts

    async with worker_for(client, Timeouts):
        result = await client.execute_workflow(Timeouts, id="timeouts-1", task_queue=QUEUE)
    # heartbeat timeout: the attempt is retried with its last heartbeat details
    assert result["resumed"] == {"attempt": 2, "resumed_from": ["progress-2"]}
    # schedule-to-close bounds all attempts; schedule-to-start fires with no poller
    assert "schedule-to-close" in result["budget"] and "Timeout" in result["budget"]
    assert "schedule-to-start" in result["queue"]
    events = await client.get_workflow_handle("timeouts-1").history()
    timed_out = [
        e["attributes"]["timeout_type"] for e in events if e["event_type"] == "ActivityTaskTimedOut"
    ]
    assert timed_out == ["schedule_to_close", "schedule_to_start"]


async def test_a_history_page_holds_the_stored_events_field_for_field(
    region: Region, client: Client
) -> None:
    """Pages are built as JSON by PostgreSQL: they must say what the rows say."""
    async with worker_for(client, Pipeline):
        handle = await client.start_workflow(Pipeline, 1, id="page-1", task_queue=QUEUE)
        await handle.signal("approve", "ops")
        await handle.result()
    async with region.store.pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT event_id, event_type, event_time, version, attributes FROM history_events"
            " WHERE namespace = 'default' AND workflow_id = 'page-1' ORDER BY event_id"
        )
    stored = [event_to_wire(r) for r in rows]
    assert len(stored) > 6
    page = await client.call(
        "GET", "/api/v1/namespaces/default/workflows/page-1/history", params={"from_event_id": 3}
    )
    assert page["closed"] is True and page["next_event_id"] == len(stored) + 1
    assert len(page["events"]) == len(stored) - 2
    for got, want in zip(page["events"], stored[2:], strict=True):
        assert parse_time(got.pop("event_time")) == parse_time(want.pop("event_time"))
        assert got == want
    # pages follow on from each other
    seen: list[int] = []
    nxt = 1
    while True:
        res = await workflows.get_history(region.store, "default", "page-1", None, nxt, limit=3)
        events = orjson.loads(orjson.dumps(res["events"]))
        if not events:
            break
        assert len(events) <= 3
        seen += [e["event_id"] for e in events]
        nxt = seen[-1] + 1
    assert seen == [e["event_id"] for e in stored]
