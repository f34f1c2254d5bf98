"""A query sees everything the server confirmed before it was sent: a signal whose
call returned, a start whose first workflow task has not run yet."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest

from worker import Client, Worker, workflow
from worker._http import ns_path
from worker.errors import QueryFailedError, QueryTimedOutError

pytestmark = pytest.mark.integration
QUEUE = "query-consistency"


@workflow.defn(name="QueryTally")
class Tally:
    def __init__(self) -> None:
        self.seen: list[int] = []
        self.done = False

    @workflow.run
    async def run(self) -> list[int]:
        await workflow.wait_condition(lambda: self.done)
        return self.seen

    @workflow.signal
    def add(self, n: int) -> None:
        self.seen.append(n)

    @workflow.signal
    def finish(self) -> None:
        self.done = True

    @workflow.signal
    def explode(self) -> None:
        raise RuntimeError("a bug in the signal handler")  # fails the workflow task

    @workflow.query
    def tally(self) -> list[int]:
        return self.seen


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def test_a_query_right_after_start_sees_the_started_run(client: Client) -> None:
    async with Worker(client, task_queue=QUEUE, workflows=[Tally]):
        for _ in range(10):
            handle = await client.start_workflow(Tally, id=new_id("fresh"), task_queue=QUEUE)
            assert await handle.query("tally") == []
            await handle.signal("finish")


async def test_a_query_after_a_signal_sees_the_signal(client: Client) -> None:
    async with Worker(client, task_queue=QUEUE, workflows=[Tally]):
        handle = await client.start_workflow(Tally, id=new_id("tally"), task_queue=QUEUE)
        for i in range(40):
            await handle.signal("add", i)
            assert await handle.query("tally") == list(range(i + 1))
        await handle.signal("finish")
        assert await handle.result(timeout=20) == list(range(40))


async def test_queries_sent_with_signals_in_flight_see_what_returned_first(
    client: Client,
) -> None:
    async with Worker(client, task_queue=QUEUE, workflows=[Tally]):
        handle = await client.start_workflow(Tally, id=new_id("busy"), task_queue=QUEUE)
        sent: list[int] = []

        async def signaller() -> None:
            for i in range(60):
                await handle.signal("add", i)
                sent.append(i)

        async def querier() -> None:
            while len(sent) < 60:
                before = list(sent)
                seen = await handle.query("tally")
                assert seen[: len(before)] == before, (before, seen)

        await asyncio.gather(signaller(), querier())
        await handle.signal("finish")


async def test_a_query_on_a_paused_run_answers_from_its_last_completed_task(
    client: Client,
) -> None:
    async with Worker(client, task_queue=QUEUE, workflows=[Tally]):
        handle = await client.start_workflow(Tally, id=new_id("paused"), task_queue=QUEUE)
        await handle.signal("add", 1)
        assert await handle.query("tally") == [1]
        await handle.pause("hold")
        await handle.signal("add", 2)  # recorded; its workflow task waits for unpause
        assert await handle.query("tally", timeout=5) == [1]
        await handle.unpause()
        assert await handle.query("tally") == [1, 2]
        await handle.signal("finish")


async def test_a_query_does_not_wait_for_a_task_the_pause_holds_back(client: Client) -> None:
    """Paused before its first task ran: nothing will run it until unpause, so the
    query is answered at once (there is no state yet) instead of timing out."""
    handle = await client.start_workflow(Tally, id=new_id("held"), task_queue=QUEUE)
    await handle.pause("hold before it runs")
    async with Worker(client, task_queue=QUEUE, workflows=[Tally]):
        t0 = time.monotonic()
        with pytest.raises(QueryFailedError) as err:
            await handle.query("tally", timeout=5)
        assert "not started running" in err.value.message
        assert time.monotonic() - t0 < 4
        await handle.unpause()
        assert await handle.query("tally") == []
        await handle.signal("finish")
        assert await handle.result(timeout=20) == []


async def test_a_query_does_not_wait_for_a_failing_workflow_task(client: Client) -> None:
    """A task that failed may not complete soon (a bug waits for a fix): the query
    answers from the run's last completed task instead of timing out."""
    async with Worker(client, task_queue=QUEUE, workflows=[Tally]):
        handle = await client.start_workflow(Tally, id=new_id("failing"), task_queue=QUEUE)
        await handle.signal("add", 1)
        assert await handle.query("tally") == [1]  # its task completed
        await handle.signal("explode")
        t0 = time.monotonic()
        assert await handle.query("tally", timeout=5) == [1]
        assert time.monotonic() - t0 < 4
        await handle.terminate("done")


async def test_a_query_does_not_wait_out_a_task_whose_worker_is_gone(client: Client) -> None:
    """A task started by a worker that went away waits for its timeout (10 s): the
    query waits for it half of its own timeout, then a live worker answers from
    the last completed task."""
    handle = await client.start_workflow(Tally, id=new_id("orphan"), task_queue=QUEUE)
    async with Worker(client, task_queue=QUEUE, workflows=[Tally]):
        await handle.signal("add", 1)
        assert await handle.query("tally") == [1]
    await handle.signal("add", 2)
    # a worker takes the task and is never heard from again
    poll = ns_path(client.namespace, "/workflow-tasks/poll")
    taken = await client.call("POST", poll, {"task_queue": QUEUE, "identity": "gone", "wait_s": 5})
    assert taken["task"]["workflow_id"] == handle.id
    async with Worker(client, task_queue=QUEUE, workflows=[Tally]):
        t0 = time.monotonic()
        assert await handle.query("tally", timeout=4) == [1]
        assert 1.5 < time.monotonic() - t0 < 3.5
        # once that task times out, the next one sees the signal
        await handle.terminate("done")


async def test_a_query_with_no_worker_times_out_within_its_timeout(client: Client) -> None:
    """The run's first workflow task never runs: the query waits for it, then for a
    worker to answer, within its own timeout (retries included)."""
    handle = await client.start_workflow(Tally, id=new_id("nobody"), task_queue="query-nobody")
    t0 = time.monotonic()
    with pytest.raises(QueryTimedOutError) as err:
        await handle.query("tally", timeout=1.5)
    assert time.monotonic() - t0 < 5
    assert "query-nobody" in err.value.message
    # nothing was left behind for a worker to answer later
    async with Worker(client, task_queue="query-nobody", workflows=[Tally]):
        assert await handle.query("tally") == []
        await handle.signal("finish")
        assert await handle.result(timeout=20) == []
