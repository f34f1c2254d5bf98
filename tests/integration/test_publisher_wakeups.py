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
from collections.abc import Awaitable
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
        async with region.store.pool.acquire() as conn:
            await conn.execute(
                "UPDATE namespaces SET regions = ARRAY[$1, 'region-z'], active_region = $2"
                " WHERE name = 'default'",
                region.name,
                active,
            )
        for _ in range(100):
            if publisher._replicated is None:
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


async def test_a_round_s_acknowledgement_says_what_it_left_in_the_outbox(
    region: Region, client: Client
) -> None:
    """A round that shipped rows learns from the statement that acknowledges
    them whether the outbox holds more (ready now, or held behind a running
    transaction): one statement where it took two. (The client fixture
    creates the namespace the rows are of.)"""
    publisher = Publisher(region.store)
    insert = (
        "INSERT INTO outbox (namespace, workflow_id, run_id, first_event_id, last_event_id,"
        " version) VALUES ('default', $1, gen_random_uuid(), 1, 1, 1)"
    )
    async with region.store.pool.acquire() as conn:
        await conn.execute(insert, "shippable")
        holder = await asyncpg.connect(region.dsn)
        try:
            async with holder.transaction():
                await holder.fetchval("SELECT pg_current_xact_id()")
                # committed after the holder began: held until it ends
                await conn.execute(insert, "held")
                assert await publisher._ship_batch(None) == (1, "held")
                left = await conn.fetch("SELECT workflow_id FROM outbox")
                assert [r["workflow_id"] for r in left] == ["held"]
        finally:
            await holder.close()
        assert await publisher._ship_batch(None) == (1, None)
        assert await conn.fetchval("SELECT count(*) FROM outbox") == 0
        assert await publisher._ship_batch(None) == (0, "unread")
