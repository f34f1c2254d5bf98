"""A write that is a transaction of its own notifies after it committed.

Up to PostgreSQL 16 every transaction that notifies holds one lock of the
whole cluster through its commit, WAL flush included, so writes that notify
commit one at a time. A run's unlocked write (and an unlocked start) passes
no notify key to baton_write_run_v5 and the server sends the same
notifications once the write returned, from its listening connection: the
notifications a write used to send must all still arrive, in this process
and in any other, and they must come from that connection, not from the
connection that wrote.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import asyncpg
import pytest

from store.notify import wait_event
from store.server import running_store
from tests.conftest import Region
from worker import Client, Worker, activity, workflow

pytestmark = pytest.mark.integration
CHANNELS = ("baton_tasks_v1", "baton_history_v1", "baton_closed_v1")


@activity.defn(name="echo_after_commit")
async def echo(value: str) -> str:
    return value


@workflow.defn(name="OneStep")
class OneStep:
    @workflow.run
    async def run(self, value: str) -> str:
        return await workflow.execute_activity(
            echo, value, start_to_close_timeout=timedelta(seconds=10)
        )


class Heard:
    """Every notification on CHANNELS, with the backend that sent it."""

    def __init__(self) -> None:
        self.got: list[tuple[int, str, str]] = []

    def __call__(self, _conn: Any, pid: int, channel: str, payload: str) -> None:
        self.got.append((pid, channel, payload))

    def senders(self, channel: str, payload: str) -> set[int]:
        return {pid for pid, c, p in self.got if (c, p) == (channel, payload)}


async def listening(region: Region) -> tuple[asyncpg.Connection, Heard]:
    conn = await asyncpg.connect(region.dsn)
    heard = Heard()
    for ch in CHANNELS:
        await conn.add_listener(ch, heard)
    return conn, heard


def notifier_pid(region: Region) -> int:
    conn = region.store.notifier._conn
    assert conn is not None
    return int(conn.get_server_pid())


async def test_a_runs_writes_notify_from_the_listening_connection(
    region: Region, client: Client
) -> None:
    conn, heard = await listening(region)
    try:
        async with Worker(client, task_queue="after", workflows=[OneStep], activities=[echo]):
            got = await client.execute_workflow(OneStep, "x", id="wf-after", task_queue="after")
        assert got == "x"
        await asyncio.sleep(0.5)  # the last notifications reach the listener
    finally:
        await conn.close()
    sender = notifier_pid(region)
    # the start (its history and its workflow task) and the close, at least,
    # are writes of their own: their notifications came after their commit
    assert heard.senders("baton_history_v1", "default/wf-after") >= {sender}
    assert heard.senders("baton_closed_v1", "default/wf-after") == {sender}
    # (the start's task row: its trigger left the notification to the server)
    assert heard.senders("baton_tasks_v1", "default/workflow/after") == {sender}
    assert region.store.notifier.sent_later >= 3


async def test_another_process_hears_a_write_notified_after_its_commit(
    region: Region, client: Client
) -> None:
    """A long-poll in another server process (its own notifier) is woken by a
    start's task as before."""
    async with running_store(region.config, "region-a") as other:
        key = "default/workflow/elsewhere"
        async with other.notifier.subscribe("baton_tasks_v1", key) as ev:
            await client.start_workflow(OneStep, "y", id="wf-other", task_queue="elsewhere")
            assert await wait_event(ev, 5.0), "the other process never heard of the task"


async def test_notifications_that_cannot_be_sent_reach_this_process(region: Region) -> None:
    notifier = region.store.notifier
    heard: list[str] = []
    notifier.on("baton_history_v1", heard.append)
    sent = notifier.sent_later
    assert notifier._conn is not None
    await notifier._conn.close()  # the listener is lost: sending fails
    notifier.send_later([("baton_history_v1", "default/lost")])
    for _ in range(50):
        if "default/lost" in heard:
            break
        await asyncio.sleep(0.02)
    # delivered here (as its notification would have been), not sent
    assert "default/lost" in heard
    assert notifier.sent_later == sent
