"""A run's writes notify once they committed, from one connection per process.

A NOTIFY inside a write's transaction holds PostgreSQL's cluster-wide notify
lock through the commit's WAL flush, so every notifying commit of the cluster
waited for the one before. The writes now leave their notifications to the
process: its own waiters wake at once, and the other processes' from one
sender connection."""

from __future__ import annotations

import asyncio
import contextlib
import uuid

import pytest

from store import db
from store.notify import AFTER_COMMIT, Notifier, PendingNotifications
from tests.conftest import Region, RegionPair
from tests.helpers import eventually
from worker import Client, Worker, activity, workflow

pytestmark = pytest.mark.integration
QUEUE = "notify-after-commit"


@activity.defn(name="echo")
async def echo(text: str) -> str:
    return text


@workflow.defn(name="TwoSteps")
class TwoSteps:
    def __init__(self) -> None:
        self.go = False

    @workflow.signal
    def proceed(self) -> None:
        self.go = True

    @workflow.run
    async def run(self, text: str) -> str:
        first = await workflow.execute_activity(
            echo, text, start_to_close_timeout=workflow.timedelta(seconds=10)
        )
        await workflow.wait_condition(lambda: self.go)
        return first + "!"


async def test_a_runs_notifications_come_from_its_servers_sender_not_its_writes(
    region: Region, client: Client
) -> None:
    wid = f"n-{uuid.uuid4().hex[:8]}"
    key = f"default/{wid}"
    heard: list[tuple[int, str]] = []
    listener = await db.connect(region.dsn)
    try:
        await listener.add_listener(
            "baton_history_v1",
            lambda _c, pid, ch, payload: heard.append((pid, ch)) if payload == key else None,
        )
        await listener.add_listener(
            "baton_closed_v1",
            lambda _c, pid, ch, payload: heard.append((pid, ch)) if payload == key else None,
        )
        async with Worker(client, task_queue=QUEUE, workflows=[TwoSteps], activities=[echo]):
            handle = await client.start_workflow(TwoSteps.run, "hi", id=wid, task_queue=QUEUE)
            await handle.signal(TwoSteps.proceed)
            assert await handle.result() == "hi!"
        await asyncio.sleep(0.3)  # the last ones are sent after the close committed
    finally:
        await listener.close()
    channels = {ch for _, ch in heard}
    assert channels == {"baton_history_v1", "baton_closed_v1"}, heard
    sender = region.store.notifier.sender_pid
    assert sender and {pid for pid, _ in heard} == {sender}, (sender, heard)


async def test_another_process_waiting_on_a_run_is_woken_by_its_writes(
    region: Region, client: Client
) -> None:
    """A second server process (here: a second listener of the region's
    database) hears each write and the close of a run the first one wrote."""
    wid = f"n-{uuid.uuid4().hex[:8]}"
    key = f"default/{wid}"
    other = Notifier(region.dsn)
    await other.start()
    try:
        async with (
            other.subscribe("baton_history_v1", key) as history,
            other.subscribe("baton_closed_v1", key) as closed,
            Worker(client, task_queue=QUEUE, workflows=[TwoSteps], activities=[echo]),
        ):
            handle = await client.start_workflow(TwoSteps.run, "hi", id=wid, task_queue=QUEUE)
            await asyncio.wait_for(history.wait(), 10)
            assert not closed.is_set()
            history.clear()
            await handle.signal(TwoSteps.proceed)
            await asyncio.wait_for(history.wait(), 10)
            await asyncio.wait_for(closed.wait(), 10)
            assert await handle.result() == "hi!"
    finally:
        await other.close()


async def test_a_standbys_apply_notifies_from_its_servers_sender_once_committed(
    regions: RegionPair,
) -> None:
    """The applier's one-statement batch leaves its notifications to the
    standby's server, sent once the batch committed, as a run's writes do."""
    rs = regions
    ns = "notify-apply"
    wid = f"n-{uuid.uuid4().hex[:8]}"
    key = f"{ns}/{wid}"
    heard: list[tuple[int, str]] = []

    def on(_c: object, pid: int, channel: str, payload: str) -> None:
        if payload == key:
            heard.append((pid, channel))

    listener = await db.connect(rs.b.dsn)
    try:
        await listener.add_listener("baton_history_v1", on)
        await listener.add_listener("baton_closed_v1", on)
        async with await Client.connect([rs.a.url, rs.b.url], namespace=ns) as client:
            await client.create_namespace(
                ns, regions=[rs.a.name, rs.b.name], active_region=rs.a.name
            )
            async with Worker(client, task_queue=QUEUE, workflows=[TwoSteps], activities=[echo]):
                handle = await client.start_workflow(TwoSteps.run, "hi", id=wid, task_queue=QUEUE)
                await handle.signal(TwoSteps.proceed)
                assert await handle.result() == "hi!"

        async def closed_in_b() -> bool:
            return "baton_closed_v1" in {ch for _, ch in heard}

        await eventually(closed_in_b, timeout=30, what="region-b's close notification")
    finally:
        await listener.close()
    # the plain batches' notifications come from the standby's sender (a
    # message for the applier's rules, applied one by one in its own
    # transaction, still notifies there)
    sender = rs.b.store.notifier.sender_pid
    assert sender and sender in {pid for pid, _ in heard}, (sender, heard)


async def test_an_operation_that_fails_after_its_write_committed_still_notifies(
    region: Region,
) -> None:
    """A write without a transaction commits as it returns; the operation
    may fail after it, and its notification must still go out."""
    notifier = region.store.notifier
    key = f"default/n-{uuid.uuid4().hex[:8]}"
    async with notifier.subscribe("baton_history_v1", key) as woken:
        with contextlib.suppress(RuntimeError), notifier.after_commit():
            pending = AFTER_COMMIT.get()
            assert pending is not None
            pending.append(("baton_history_v1", key))  # as write_run leaves it
            raise RuntimeError("what follows the committed write fails")
        assert woken.is_set()


async def test_a_task_that_outlives_its_operation_notifies_in_its_own_transactions(
    region: Region,
) -> None:
    """A task started inside an operation holds a copy of its context; its
    later writes must not join a list that was sent already."""
    notifier = region.store.notifier
    go = asyncio.Event()

    async def later() -> PendingNotifications | None:
        await go.wait()
        return AFTER_COMMIT.get()

    with notifier.after_commit():
        task = asyncio.create_task(later())
    go.set()
    seen = await task
    assert seen is not None and seen.closed  # write_run then passes its key to SQL
