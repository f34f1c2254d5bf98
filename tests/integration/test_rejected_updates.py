"""Updates the workflow rejects leave its history as it was, on real PostgreSQL
(and Kafka for replication): their workflow task is speculative
(store/update_tasks.py) and becomes an ordinary one only when something else
enters history."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from replication.failover import graceful_failover
from replication.verify import verify_namespace
from store import db
from store.tasks import poll_workflow_task
from tests.conftest import Region, RegionPair
from tests.helpers import eventually
from worker import Client, Worker, wire, workflow
from worker.errors import UpdateRejectedError

pytestmark = pytest.mark.integration
QUEUE = "rejected-updates"

#: Set by a test: the validator waits for it (a signal arrives meanwhile).
HOLD: dict[str, threading.Event] = {}


@workflow.defn
class Counter:
    """Adds positive amounts; its validator rejects the others."""

    def __init__(self) -> None:
        self.total = 0
        self.signals: list[str] = []
        self.done = False

    @workflow.run
    async def run(self) -> dict[str, Any]:
        await workflow.wait_condition(lambda: self.done)
        return {"total": self.total, "signals": self.signals}

    @workflow.update
    def add(self, amount: int) -> int:
        self.total += amount
        return self.total

    @add.validator
    def check_add(self, amount: int) -> None:
        hold = HOLD.get(workflow.info().workflow_id)
        if hold is not None:
            hold.wait(1.5)  # under the deadlock timeout
        if amount <= 0:
            raise ValueError(f"amount {amount} is not positive")

    @workflow.signal
    def note(self, text: str) -> None:
        self.signals.append(text)

    @workflow.signal
    def finish(self) -> None:
        self.done = True

    @workflow.query
    def current(self) -> int:
        return self.total


def a_worker(client: Client) -> Worker:
    return Worker(client, task_queue=QUEUE, workflows=[Counter])


async def run_row(region: Region, ns: str, wid: str) -> dict[str, Any]:
    conn = await db.connect(region.dsn)
    try:
        row = await conn.fetchrow(
            "SELECT next_event_id, wt_scheduled_event_id, wt_started_event_id, pending_updates "
            "FROM executions WHERE namespace = $1 AND workflow_id = $2",
            ns,
            wid,
        )
        outbox = await conn.fetchval(
            "SELECT count(*) FROM outbox WHERE namespace = $1 AND workflow_id = $2", ns, wid
        )
    finally:
        await conn.close()
    return {**dict(row), "outbox": outbox}


async def settled(client: Client, wid: str) -> list[dict[str, Any]]:
    """The run's history once its first workflow task completed."""
    h = client.get_workflow_handle(wid)

    async def first_task_done() -> bool:
        return any(e["event_type"] == "WorkflowTaskCompleted" for e in await h.history())

    await eventually(first_task_done, timeout=20, what="first workflow task completed")
    return list(await h.history())


async def test_rejected_updates_leave_history_and_next_event_id_as_they_were(
    region: Region, client: Client
) -> None:
    wid = "rejects"
    async with a_worker(client):
        h = await client.start_workflow(Counter.run, id=wid, task_queue=QUEUE)
        before = await settled(client, wid)
        row_before = await run_row(region, "default", wid)
        for i in range(3):
            with pytest.raises(UpdateRejectedError, match="not positive"):
                await h.update(Counter.add, -i, update_id=f"bad-{i}")
        assert await h.history() == before
        row = await run_row(region, "default", wid)
        assert row == {**row_before, "pending_updates": False}
        # the same id again answers from the update's record, still writing nothing
        with pytest.raises(UpdateRejectedError):
            await h.update(Counter.add, -1, update_id="bad-1")
        assert await h.history() == before
        # at once: those that come while a task runs get the next one, also dropped
        got = await asyncio.gather(
            *(h.update(Counter.add, -i) for i in range(6)), return_exceptions=True
        )
        assert all(isinstance(g, UpdateRejectedError) for g in got), got
        assert await h.history() == before
        assert await h.query(Counter.current) == 0

        # an accepted update after the rejected ones is recorded as ever
        assert await h.update(Counter.add, 5, update_id="good") == 5
        types = [e["event_type"] for e in (await h.history())[len(before) :]]
        assert types[:5] == [
            "WorkflowTaskScheduled",
            "WorkflowTaskStarted",
            "WorkflowTaskCompleted",
            "WorkflowExecutionUpdateAccepted",
            "WorkflowExecutionUpdateCompleted",
        ]
        events = await h.history()
        assert [e["event_id"] for e in events] == list(range(1, len(events) + 1))
        await h.signal(Counter.finish)
        assert await h.result() == {"total": 5, "signals": []}


async def test_a_signal_while_a_rejected_update_runs_is_not_lost(client: Client) -> None:
    wid = "signal-meanwhile"
    async with a_worker(client):
        h = await client.start_workflow(Counter.run, id=wid, task_queue=QUEUE)
        before = await settled(client, wid)
        HOLD[wid] = hold = threading.Event()
        try:
            update = asyncio.create_task(h.update(Counter.add, -1))

            async def task_started() -> bool:
                pending = (await h.describe()).get("pending_workflow_task") or {}
                return pending.get("started_event_id") is not None

            await eventually(task_started, timeout=10, what="the update's task started")
            await h.signal(Counter.note, "while validating")
            hold.set()
            with pytest.raises(UpdateRejectedError):
                await update
        finally:
            HOLD.pop(wid, None)
        await h.signal(Counter.finish)
        assert await h.result() == {"total": 0, "signals": ["while validating"]}
        types = [e["event_type"] for e in (await h.history())[len(before) :]]
        # the task became an ordinary one, the signal written after its completion
        assert types[:4] == [
            "WorkflowTaskScheduled",
            "WorkflowTaskStarted",
            "WorkflowTaskCompleted",
            "WorkflowExecutionSignaled",
        ]


async def test_a_signal_before_the_update_task_starts_makes_it_an_ordinary_task(
    client: Client,
) -> None:
    wid = "signal-before-start"
    async with a_worker(client):
        h = await client.start_workflow(Counter.run, id=wid, task_queue=QUEUE)
        before = await settled(client, wid)
    # no worker: the update's task waits, scheduled but not started
    update = asyncio.create_task(h.update(Counter.add, -1, timeout=30))

    async def task_scheduled() -> bool:
        return bool((await h.describe()).get("pending_workflow_task"))

    await eventually(task_scheduled, timeout=10, what="the update's task scheduled")
    await h.signal(Counter.note, "first")
    async with a_worker(client):
        with pytest.raises(UpdateRejectedError):
            await update
        await h.signal(Counter.finish)
        assert await h.result() == {"total": 0, "signals": ["first"]}
    types = [e["event_type"] for e in (await h.history())[len(before) :]]
    assert types[:4] == [
        "WorkflowTaskScheduled",
        "WorkflowExecutionSignaled",
        "WorkflowTaskStarted",
        "WorkflowTaskCompleted",
    ]


async def test_rejected_updates_replicate_nothing_and_verify_stays_clean(
    regions: RegionPair,
) -> None:
    rs, ns, wid = regions, "rejects-replicated", "replicated"
    client = await Client.connect([rs.a.url, rs.b.url], namespace=ns)
    try:
        await client.create_namespace(ns, regions=[rs.a.name, rs.b.name], active_region=rs.a.name)
        async with Worker(client, task_queue=QUEUE, workflows=[Counter]):
            h = await client.start_workflow(Counter.run, id=wid, task_queue=QUEUE)
            before = await settled(client, wid)

            async def shipped() -> bool:
                # the start's rows leave the outbox as the publisher ships them
                return (await run_row(rs.a, ns, wid))["outbox"] == 0

            await eventually(shipped, timeout=20, what="the start shipped")
            row_before = await run_row(rs.a, ns, wid)
            for i in range(3):
                with pytest.raises(UpdateRejectedError):
                    await h.update(Counter.add, -i)
            assert await h.history() == before
            row = await run_row(rs.a, ns, wid)
            assert row["outbox"] == row_before["outbox"]  # nothing new to ship
            assert row["next_event_id"] == row_before["next_event_id"]

            async def clean() -> bool:
                return (await verify_namespace(rs.a.config, ns)).clean

            await eventually(clean, timeout=60, interval=0.5, what=f"verify {ns} clean")
            # a signal while the update's task runs: the task's events and the
            # buffered signal ship, and the standby's history matches
            HOLD[wid] = hold = threading.Event()
            try:
                update = asyncio.create_task(h.update(Counter.add, -7))

                async def task_started() -> bool:
                    pending = (await h.describe()).get("pending_workflow_task") or {}
                    return pending.get("started_event_id") is not None

                await eventually(task_started, timeout=10, what="the update's task started")
                await h.signal(Counter.note, "meanwhile")
                hold.set()
                with pytest.raises(UpdateRejectedError):
                    await update
            finally:
                HOLD.pop(wid, None)
            await eventually(clean, timeout=60, interval=0.5, what=f"verify {ns} clean")
            await graceful_failover(rs.a.config, ns, rs.b.name, timeout_s=60)
            # in the new region the run goes on: a rejection, then an accepted update
            with pytest.raises(UpdateRejectedError):
                await h.update(Counter.add, 0)
            assert await h.update(Counter.add, 2) == 2
            await h.signal(Counter.finish)
            assert await h.result() == {"total": 2, "signals": ["meanwhile"]}
        await eventually(clean, timeout=60, interval=0.5, what=f"verify {ns} clean")
    finally:
        await client.close()


async def test_an_update_task_whose_worker_died_times_out_into_history(
    region: Region, client: Client
) -> None:
    """A speculative task a worker took and never completed times out like any
    task (its events written, then its timeout), and the next attempt rejects."""
    wid = "held-by-dead-worker"
    async with a_worker(client):
        h = await client.start_workflow(Counter.run, id=wid, task_queue=QUEUE, task_timeout=1.0)
        before = await settled(client, wid)
    update = asyncio.create_task(h.update(Counter.add, -1, timeout=30))
    poll = wire.PollRequest(task_queue=QUEUE, identity="dies", wait_s=10)
    held = await poll_workflow_task(region.store, "default", poll)
    assert held is not None
    n = len(before) + 1
    # handed out as if written: the task's own events follow the history
    assert [e["event_id"] for e in held["events"]][-2:] == [n, n + 1]
    assert [e["event_type"] for e in held["events"]][-2:] == [
        "WorkflowTaskScheduled",
        "WorkflowTaskStarted",
    ]
    assert held["started_event_id"] == held["history_length"] == n + 1
    assert [u["update_id"] for u in held["updates"]]
    assert await h.history() == before
    assert (await run_row(region, "default", wid))["next_event_id"] == n

    async def timed_out() -> bool:
        return any(e["event_type"] == "WorkflowTaskTimedOut" for e in await h.history())

    await eventually(timed_out, timeout=15, what="the held task timed out")
    async with a_worker(client):
        with pytest.raises(UpdateRejectedError):
            await update
        await h.signal(Counter.finish)
        assert (await h.result())["total"] == 0
    events = await h.history()
    assert [e["event_id"] for e in events] == list(range(1, len(events) + 1))
    assert [e["event_type"] for e in events[len(before) : len(before) + 3]] == [
        "WorkflowTaskScheduled",
        "WorkflowTaskStarted",
        "WorkflowTaskTimedOut",
    ]
    assert events[len(before) + 1]["attributes"]["identity"] == "dies"
