"""A graceful handover, then a late copy of the old region's message of a
run's waiting inputs (a publisher that lost its lock while its send was in
flight, and whose broker request landed after the handover): the new region
holds those inputs already (its promotion wrote them as events), so the copy
changes nothing, where it was taken for a deposed region's lost inputs,
archived as a conflict and re-applied, recording a signal sent without a
request id twice."""

from __future__ import annotations

import base64
import time
from typing import Any

import aiohttp
import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from replication import topic_for
from replication.admin import list_conflicts
from replication.failover import caught_up, graceful_failover
from tests.e2e.test_reapplied_tail_closes import QUEUE, Busy
from tests.helpers import eventually
from tests.multiregion import Regions
from worker import Client, Worker

pytestmark = pytest.mark.e2e
NS = "late-copy"


async def _messages_of(bootstrap: str, topic: str, kind: str) -> list[tuple[bytes, bytes]]:
    """(key, value) of every message of ``kind`` of NS on ``topic``."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    found: list[tuple[bytes, bytes]] = []
    try:
        parts = [TopicPartition(topic, p) for p in range(4)]
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not found:
            got = await consumer.getmany(timeout_ms=500)
            for records in got.values():
                for r in records:
                    m: dict[str, Any] = orjson.loads(r.value)
                    if m["type"] == kind and m["namespace"] == NS:
                        found.append((r.key, r.value))
    finally:
        await consumer.stop()
    return found


async def test_a_late_copy_of_waiting_inputs_after_a_handover_changes_nothing(
    two_regions: Regions,
) -> None:
    rs = two_regions
    a, b = rs[0], rs[1]
    events = "SELECT count(*) FROM history_events WHERE namespace = $1"
    async with (
        await Client.connect(rs.urls, namespace=NS) as client,
        await Client.connect([a.url], namespace=NS, follow_failover=False) as in_a,
    ):
        await client.create_namespace(NS, regions=[a.name, b.name], active_region=a.name)
        await client.start_workflow(Busy, id="busy", task_queue=QUEUE)

        async def in_region_b() -> bool:
            return await rs.fetchval(b.name, events, NS) == 2

        await eventually(in_region_b, timeout=30, what="the run in region-b")
        async with Worker(in_a, task_queue=QUEUE, workflows=[Busy], deadlock_timeout=30):

            async def task_started() -> bool:
                sql = "SELECT wt_started_event_id IS NOT NULL FROM executions WHERE namespace = $1"
                return bool(await rs.fetchval(a.name, sql, NS))

            await eventually(task_started, timeout=30, what="the workflow task started in A")
            # waits behind the started task, without a request id (raw HTTP)
            payload = {
                "metadata": {"encoding": "json/plain"},
                "data": base64.b64encode(b"1").decode(),
            }
            async with (
                aiohttp.ClientSession() as http,
                http.post(
                    f"{a.url}/api/v1/namespaces/{NS}/workflows/busy/signal",
                    json={"signal_name": "add", "input": [payload]},
                ) as resp,
            ):
                assert resp.status == 200, await resp.text()

            async def waiting_in_b() -> bool:
                sql = "SELECT count(*) FROM buffered_events WHERE namespace = $1"
                return await rs.fetchval(b.name, sql, NS) == 1

            await eventually(waiting_in_b, timeout=30, what="the waiting signal in region-b")
            # B writes it as an event when it takes the run over
            await graceful_failover(rs.config, NS, b.name, timeout_s=30)
        topic = topic_for(a.name)
        [(key, value)] = await _messages_of(rs.bootstrap, topic, "buffered_v1")
        producer = AIOKafkaProducer(bootstrap_servers=rs.bootstrap)
        await producer.start()
        try:
            await producer.send_and_wait(topic, value=value, key=key)
        finally:
            await producer.stop()

        async def applied() -> bool:
            return await caught_up(rs.config, a.name, b.name, NS)

        await eventually(applied, timeout=30, what="region-b to apply the late copy")
        history = await client.get_workflow_handle("busy").history()
        signals = [e for e in history if e["event_type"] == "WorkflowExecutionSignaled"]
        assert len(signals) == 1, history
        assert await list_conflicts(rs.config, NS, b.name) == []
