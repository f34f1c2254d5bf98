"""The publisher reads the outbox when a replicated namespace wrote, not on every write.

A write of a single-region namespace leaves no outbox row; waking the
publisher for it cost an outbox read (two statements) per write. Neither
does a batch the applier wrote for a namespace active in another region
(a standby's publisher read its empty outbox three times a workflow). The
publisher keeps the names of the replicated namespaces active in its region,
and a namespace change (one gaining a standby region, or moving) makes it
read them again at once.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable
from typing import TypeVar

import asyncpg
import pytest

from replication.publisher import Publisher
from store.notify import wait_event
from tests.conftest import Region
from worker import Client, workflow

pytestmark = pytest.mark.integration
QUEUE = "no-worker-polls-this"
T = TypeVar("T")


@workflow.defn(name="Waits")
class Waits:
    @workflow.run
    async def run(self) -> None:
        await workflow.wait_condition(lambda: False)


async def _written(region: Region, key: str, write: Awaitable[T]) -> T:
    """Await ``write`` and return once this process heard of its commit."""
    async with region.store.notifier.subscribe("baton_history_v1", key) as ev:
        got = await write
        assert await wait_event(ev, 5.0), "the write's notification never came"
    return got


#: An outbox row of namespace ``default`` for workflow id $1, as a write leaves one.
INSERT_ROW = (
    "INSERT INTO outbox (namespace, workflow_id, run_id, first_event_id, last_event_id,"
    " version) VALUES ('default', $1, gen_random_uuid(), 1, 1, 1) RETURNING id"
)


@contextlib.asynccontextmanager
async def publishing(publisher: Publisher) -> AsyncIterator[asyncio.Task[None]]:
    """The publisher's rounds running in a task, cancelled on the way out."""
    task = asyncio.create_task(publisher._publish())
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def until_outbox_empty(conn: asyncpg.Connection, task: asyncio.Task[None], what: str) -> None:
    """Wait (5 s at most) until the publisher left no row in the outbox."""
    loop = asyncio.get_running_loop()
    began = loop.time()
    while await conn.fetchval("SELECT count(*) FROM outbox"):
        assert loop.time() - began < 5.0, what
        assert not task.done(), task
        await asyncio.sleep(0.01)


async def test_a_single_region_write_does_not_wake_the_publisher_and_a_replicated_one_does(
    region: Region, client: Client
) -> None:
    publisher = Publisher(region.store)
    # Notifications arrive in commit order: once this process heard of the
    # start, it has heard of the namespace's creation before it too.
    h = await _written(region, "default/w", client.start_workflow(Waits, id="w", task_queue=QUEUE))
    await publisher._refresh_replicated()
    assert publisher._replicated is not None
    assert "default" not in publisher._replicated

    publisher._wake.clear()
    await _written(region, "default/w", h.signal("poke"))
    assert not publisher._wake.is_set(), "a single-region write woke the publisher"

    # the namespace gains a standby: its notification reaches the publisher,
    # which forgets the list and looks at the outbox
    async with region.store.pool.acquire() as conn:
        await conn.execute(
            "UPDATE namespaces SET regions = regions || 'region-z'::text WHERE name = 'default'"
        )
    for _ in range(100):
        if publisher._replicated is None:
            break
        await asyncio.sleep(0.05)
    assert publisher._replicated is None
    assert publisher._wake.is_set()

    await publisher._refresh_replicated()
    assert "default" in publisher._replicated
    publisher._wake.clear()
    await _written(region, "default/w", h.signal("poke"))
    assert publisher._wake.is_set(), "a replicated namespace's write did not wake the publisher"

    # a new namespace (which may have standbys from its first write) too
    publisher._wake.clear()
    await client.create_namespace("another")
    for _ in range(100):
        if publisher._replicated is None:
            break
        await asyncio.sleep(0.05)
    assert publisher._replicated is None
    assert publisher._wake.is_set()


async def test_a_batch_applied_for_a_namespace_active_elsewhere_does_not_wake_the_publisher(
    region: Region, client: Client
) -> None:
    publisher = Publisher(region.store)
    await _written(region, "default/w", client.start_workflow(Waits, id="w", task_queue=QUEUE))

    async def applied(key: str) -> None:
        # what the applier's commit of a batch sends (baton_apply_plain_v1)
        async with region.store.pool.acquire() as conn:
            notify = conn.execute("SELECT pg_notify('baton_history_v1', $1)", key)
            await _written(region, key, notify)

    async def moved(active: str) -> None:
        heard = publisher._namespace_changes
        async with region.store.pool.acquire() as conn:
            await conn.execute(
                "UPDATE namespaces SET regions = ARRAY[$1, 'region-z'], active_region = $2"
                " WHERE name = 'default'",
                region.name,
                active,
            )
        for _ in range(100):
            if publisher._namespace_changes > heard:
                break
            await asyncio.sleep(0.05)
        assert publisher._replicated is None, "the namespace change was not heard"
        await publisher._refresh_replicated()

    # a standby here: batches applied for it leave nothing to ship
    await moved("region-z")
    assert publisher._replicated is not None and "default" not in publisher._replicated
    publisher._wake.clear()
    await applied("default/w")
    assert not publisher._wake.is_set(), "a batch applied for a standby woke the publisher"

    # active here again (a failover back): its writes wake the publisher
    await moved(region.name)
    assert "default" in publisher._replicated
    publisher._wake.clear()
    await applied("default/w")
    assert publisher._wake.is_set(), "a write of a namespace active here did not wake it"


async def test_a_round_s_read_acknowledges_the_rows_the_round_before_shipped(
    region: Region, client: Client
) -> None:
    """A round's shipped rows wait for the next round: the statement that
    reads it deletes them and moves the ack level (one statement where a round
    took two). With no next round, one statement acknowledges them and says
    whether the outbox holds more (ready now, or held behind a running
    transaction). (The client fixture creates the namespace the rows are of.)"""
    publisher = Publisher(region.store)
    ack_level = "SELECT last_outbox_id FROM replication_ack WHERE region = $1"
    async with region.store.pool.acquire() as conn:

        async def left() -> list[str]:
            rows = await conn.fetch("SELECT workflow_id FROM outbox ORDER BY id")
            return [r["workflow_id"] for r in rows]

        first = await conn.fetchval(INSERT_ROW, "first")
        assert await publisher._ship_batch(None) == 1
        assert publisher._unacked == [first]
        assert await left() == ["first"], "acknowledged before a next round came"

        second = await conn.fetchval(INSERT_ROW, "second")
        assert await publisher._ship_batch(None) == 1  # reads "second" only
        assert await left() == ["second"], "the read did not acknowledge the round before"
        assert await conn.fetchval(ack_level, region.name) == first
        assert publisher._unacked == [second]

        holder = await asyncpg.connect(region.dsn)
        try:
            async with holder.transaction():
                await holder.fetchval("SELECT pg_current_xact_id()")
                # committed after the holder began: held until it ends
                await conn.execute(INSERT_ROW, "held")
                assert await publisher._acknowledge() == "held"
                assert await left() == ["held"]
                assert await conn.fetchval(ack_level, region.name) == second
                assert await publisher._ship_batch(None) == 0
        finally:
            await holder.close()
        assert await publisher._ship_batch(None) == 1
        assert await publisher._acknowledge() is None
        assert await left() == []


async def test_rows_no_round_follows_are_acknowledged_alone_at_once(
    region: Region, client: Client
) -> None:
    """The last round before a quiet spell does not leave its rows in the
    outbox until the next write: with no commit come in while it shipped, it
    acknowledges them itself. (No Kafka here: a single-region namespace's
    rows are only acknowledged.)"""
    publisher = Publisher(region.store)
    assert not publisher.bootstrap
    async with region.store.pool.acquire() as conn:
        await conn.execute(INSERT_ROW, "quiet")
        async with publishing(publisher) as task:
            await until_outbox_empty(conn, task, "the rows were never acknowledged")


async def test_a_woken_round_waits_for_the_writes_that_follow_and_ships_them_together(
    region: Region, client: Client
) -> None:
    """A commit wakes the publisher; it waits ``publish_gather_ms`` before it
    reads the outbox, so a write that follows within that time ships in the
    same round (one message for a run's writes in quick succession), and the
    round comes no earlier than the gathering time after the wake-up."""
    publisher = Publisher(region.store)
    assert publisher._gather_s == region.store.config.kafka_publish_gather_ms / 1000
    publisher._gather_s = 0.4
    loop = asyncio.get_running_loop()
    rounds: list[tuple[float, int]] = []
    a_round = asyncio.Event()
    ship = publisher._ship_batch

    async def counted(producer: object) -> int:
        n = await ship(None)
        rounds.append((loop.time(), n))
        a_round.set()
        return n

    publisher._ship_batch = counted  # type: ignore[assignment,method-assign]
    async with region.store.pool.acquire() as conn, publishing(publisher) as task:
        # the first round reads the empty outbox, then it waits
        await asyncio.wait_for(a_round.wait(), 5.0)
        await asyncio.sleep(0.05)
        rounds.clear()
        await conn.execute(INSERT_ROW, "first")
        woke = loop.time()
        publisher._wake.set()
        await asyncio.sleep(0.1)
        await conn.execute(INSERT_ROW, "second")
        publisher._wake.set()
        await until_outbox_empty(conn, task, "the rows were never shipped")
    # Without the wait the first wake-up's round ships "first" alone; any other
    # commit of the region may wake the publisher a little earlier, so the
    # round's time is bounded only by the second write's.
    shipped = [n for _, n in rounds if n]
    assert shipped == [2], f"the two writes went in rounds of {shipped}, not together"
    first_round = next(t for t, n in rounds if n)
    assert first_round - woke >= 0.1, "the round came before the second write"
