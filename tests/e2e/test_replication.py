"""Replication through real Kafka: region A's histories appear in B event for event."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from ops.pg import PgCluster
from replication.verify import verify_namespace
from tests.apps.workflows import ALL_ACTIVITIES, Pipeline, ThreeSteps
from tests.conftest import RegionPair
from tests.helpers import eventually
from tests.multiregion import server_regions
from worker import Client, Worker, WorkflowHandle

pytestmark = pytest.mark.e2e
QUEUE = "replicated"


def comparable(events: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [
        (e["event_id"], e["event_type"], e["version"], e["event_time"], e["attributes"])
        for e in events
    ]


async def same_in_b(in_b: Client, in_a: WorkflowHandle) -> bool:
    """Whether B holds the run's history event for event as A does."""
    try:
        hb = await in_b.get_workflow_handle(in_a.id).history()
    except Exception:
        return False
    return comparable(hb) == comparable(await in_a.history())


async def test_histories_replicate_event_for_event(regions: RegionPair) -> None:
    a, b = regions.a, regions.b
    async with await Client.connect([a.url, b.url], namespace="global") as client:
        await client.create_namespace("global", regions=[a.name, b.name], active_region=a.name)
        async with Worker(
            client, task_queue=QUEUE, workflows=[ThreeSteps, Pipeline], activities=ALL_ACTIVITIES
        ):
            results = await asyncio.gather(
                *[
                    client.execute_workflow(ThreeSteps, i, id=f"rep-{i}", task_queue=QUEUE)
                    for i in range(20)
                ]
            )
        assert results == [i + 3 for i in range(20)]
        async with await Client.connect(b.url, namespace="global", retry_for_s=0) as in_b:

            async def replicated() -> bool:
                for i in range(20):
                    ha = client.get_workflow_handle(f"rep-{i}")
                    try:
                        hb = await in_b.get_workflow_handle(f"rep-{i}").history()
                    except Exception:
                        return False
                    if comparable(hb) != comparable(await ha.history()):
                        return False
                return True

            await eventually(replicated, timeout=60, what="B's histories equal to A's")
            desc = await in_b.get_workflow_handle("rep-3").describe()
            assert desc["execution"]["status"] == "completed"
            assert desc["execution"]["last_write_version"] == 1
            ns = await in_b.describe_namespace("global")
            assert ns["active_region"] == a.name and ns["failover_version"] == 1
            # a standby refuses writes and names the active region and its URL
            async with httpx.AsyncClient() as http:
                r = await http.post(
                    f"{b.url}/api/v1/namespaces/global/workflows",
                    json={
                        "workflow_id": "rep-x",
                        "workflow_type": "ThreeSteps",
                        "task_queue": QUEUE,
                    },
                )
            assert r.status_code == 421
            error = r.json()["error"]
            assert error["code"] == "NAMESPACE_NOT_ACTIVE"
            assert error["details"] == {"active_region": a.name, "active_url": a.url}
            # the SDK, given B only, follows that answer to A by itself
            moved = await in_b.start_workflow(ThreeSteps, 1, id="rep-y", task_queue=QUEUE)
            assert in_b.transport.active_endpoint == a.url
            assert (await client.get_workflow_handle("rep-y").describe())["execution"][
                "run_id"
            ] == moved.run_id
    # the publisher acked everything it shipped and trimmed the outbox
    conn = await asyncpg.connect(a.dsn)
    try:

        async def drained() -> bool:
            return await conn.fetchval("SELECT count(*) FROM outbox") == 0

        await eventually(drained, timeout=20, what="outbox drained")
    finally:
        await conn.close()
    # once caught up, status shows no lag either way and an empty outbox
    from replication.status import replication_status

    async def caught_up() -> bool:
        lags = await replication_status(a.config)
        topics = [lag for lag in lags if lag.namespace is None]
        return len(topics) == 2 and all(
            lag.consumer_lag_messages == 0
            and lag.source_outbox_backlog == 0
            and lag.time_lag_s == 0.0
            for lag in lags
        )

    await eventually(caught_up, timeout=30, what="replication status caught up")
    of_ns = await replication_status(a.config, "global")
    assert {(x.namespace, x.region, x.source) for x in of_ns} == {
        ("global", a.name, b.name),
        ("global", b.name, a.name),
    }
    assert all(
        x.consumer_lag_messages == 0 and x.source_outbox_backlog == 0 and x.dead_letters == 0
        for x in of_ns
    )
    behind = next(x for x in await replication_status(a.config) if x.region == b.name)
    assert behind.source == a.name and behind.applied_partitions > 0
    # the standby holds no tasks or timers: it does not run the workflows
    conn = await asyncpg.connect(b.dsn)
    try:
        assert await conn.fetchval("SELECT count(*) FROM tasks") == 0
        assert await conn.fetchval("SELECT count(*) FROM timers") == 0
    finally:
        await conn.close()


async def test_a_batch_too_large_for_a_message_travels_by_reference(regions: RegionPair) -> None:
    a, b = regions.a, regions.b
    big = "x" * (1536 * 1024)  # one 1.5 MiB input: its batch is over the inline limit
    async with await Client.connect([a.url, b.url], namespace="large") as client:
        await client.create_namespace("large", regions=[a.name, b.name], active_region=a.name)
        # by name: the big input is not the int ThreeSteps takes (no worker runs it)
        h = await client.start_workflow("ThreeSteps", big, id="big-1", task_queue="nobody")
        async with await Client.connect(b.url, namespace="large", retry_for_s=0) as in_b:
            await eventually(lambda: same_in_b(in_b, h), timeout=60, what="the large batch in B")


async def test_a_standby_reads_which_events_the_active_region_holds(regions: RegionPair) -> None:
    """What a standby asks the active region about a batch older than the
    namespace's failover version: the (event id, version) pairs it holds."""
    from replication.applier import Applier

    a, b = regions.a, regions.b
    async with await Client.connect([a.url, b.url], namespace="asked") as client:
        await client.create_namespace("asked", regions=[a.name, b.name], active_region=a.name)
        h = await client.start_workflow(ThreeSteps, 1, id="asked-1", task_queue="nobody")
        await h.signal("go")  # events 1-3 in A: started, task scheduled, signaled
    applier = Applier(b.store)
    try:
        msg = {"namespace": "asked", "workflow_id": "asked-1", "run_id": h.run_id}
        assert await applier.held_by(a.name, msg, 1, 10) == [[1, 1], [2, 1], [3, 1]]
        assert await applier.held_by(a.name, msg, 2, 2) == [[2, 1]]
        other = {**msg, "run_id": str(uuid.uuid4())}
        assert await applier.held_by(a.name, other, 1, 10) == []  # no such run there
    finally:
        await applier.close()


async def test_a_run_s_writes_shipped_in_one_round_travel_as_one_message(
    regions: RegionPair,
) -> None:
    """Rows of one run that continue each other are one message on the topic
    (the publisher's rounds under load hold several writes of most runs), and
    the standby applies it as it would the rows one by one."""
    a, b = regions.a, regions.b

    async def messages_in_b() -> int:
        conn = await asyncpg.connect(b.dsn)
        try:
            sql = "SELECT coalesce(sum(next_offset), 0) FROM replication_progress"
            return int(await conn.fetchval(sql))
        finally:
            await conn.close()

    async with await Client.connect([a.url, b.url], namespace="merged") as client:
        await client.create_namespace("merged", regions=[a.name, b.name], active_region=a.name)
        h = await client.start_workflow(ThreeSteps, 1, id="merged-1", task_queue="nobody")
        async with await Client.connect(b.url, namespace="merged", retry_for_s=0) as in_b:
            await eventually(lambda: same_in_b(in_b, h), timeout=60, what="the start in B")
            before = await messages_in_b()
            # A transaction that began before the signals holds their outbox
            # rows back (the publisher ships settled rows only): its end lets
            # them go in one round.
            holder = await asyncpg.connect(a.dsn)
            try:
                hold = holder.transaction()
                await hold.start()
                await holder.fetchval("SELECT pg_current_xact_id()")
                for i in range(5):
                    await h.signal("poke", i)
                rows = await holder.fetchval(
                    "SELECT count(*) FROM outbox WHERE workflow_id = 'merged-1'"
                )
                assert rows == 5
                await hold.rollback()
            finally:
                await holder.close()
            await eventually(lambda: same_in_b(in_b, h), timeout=60, what="the signals in B")
            assert len(await h.history()) == 7  # started, task scheduled, five signals
            assert await messages_in_b() - before == 1
    conn = await asyncpg.connect(b.dsn)
    try:  # the run's row in B as the last of the five writes left it
        row = await conn.fetchrow(
            "SELECT next_event_id, signal_count FROM executions WHERE workflow_id = 'merged-1'"
        )
    finally:
        await conn.close()
    assert tuple(row) == (8, 5)


async def test_verify_counts_a_region_the_namespace_never_reached(
    pg: PgCluster, template_db: str, kafka: str, state_dir: Path, tmp_path: Path
) -> None:
    """A region of the namespace that holds none of it is not equal to the others."""
    async with server_regions(
        pg, template_db, kafka, state_dir, tmp_path, count=2, start=[0]
    ) as rs:
        a, b = rs[0], rs[1]
        ns = "unreached"
        async with await Client.connect(a.url, namespace=ns) as client:
            await client.create_namespace(ns, regions=[a.name, b.name], active_region=a.name)
            await client.start_workflow("Nobody", id="only-in-a", task_queue="nobody")
        # B's server is not running: nothing of the namespace reaches it
        v = await verify_namespace(rs.config, ns)
        assert not v.clean
        assert v.regions == sorted([a.name, b.name])
        assert v.namespace_missing == [b.name]
        assert [(d.workflow_id, d.regions[b.name]) for d in v.differences] == [("only-in-a", None)]
        await rs.start(b.name)

        async def clean() -> Any:
            got = await verify_namespace(rs.config, ns)
            return got if got.clean else None

        v = await eventually(clean, timeout=60, interval=0.5, what="verify clean")
        assert (v.runs_compared, v.namespace_missing) == (1, [])
