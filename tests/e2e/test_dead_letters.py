"""Dead letters: a message that keeps failing to apply is set aside after bounded
retries, the partition carries on, and an operator can list, retry and purge it."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
import pytest
from aiokafka import AIOKafkaProducer

from replication.admin import (
    DeadLetterNotFound,
    ReplicationApplyFailed,
    list_dead_letters,
    purge_dead_letters,
    retry_dead_letter,
)
from replication.applier import MAX_ATTEMPTS
from replication.publisher import NIL_RUN, topic_for
from replication.status import replication_status
from store import db
from tests.conftest import RegionPair
from tests.helpers import eventually

pytestmark = pytest.mark.e2e


def namespace_message(source: str, name: str, regions: list[str]) -> dict[str, Any]:
    now = datetime.now(UTC).isoformat()
    return {
        "type": "namespace_v1",
        "source_region": source,
        "namespace": name,
        "workflow_id": "",
        "run_id": NIL_RUN,
        "first_event_id": 0,
        "last_event_id": 0,
        "version": 1,
        "source_time": now,
        "events": [],
        "execution": None,
        "activities": [],
        "conflict": None,
        "namespace_info": {
            "name": name,
            "regions": regions,
            "active_region": source,
            "failover_version": 1,
            "state": "active",
            "retention_days": 7,
            "description": "",
            "created_at": now,
            "updated_at": now,
        },
    }


async def test_a_poisoned_message_goes_to_the_dead_letter_table(regions: RegionPair) -> None:
    a, b = regions.a, regions.b
    poison = {**namespace_message(a.name, "x", [a.name, b.name]), "type": "bogus_v9"}
    producer = AIOKafkaProducer(bootstrap_servers=a.config.kafka_bootstrap, acks="all")
    await producer.start()
    try:
        # same key, so same partition: the good message waits behind the poison
        for msg in (poison, namespace_message(a.name, "after-poison", [a.name, b.name])):
            await producer.send_and_wait(topic_for(a.name), orjson.dumps(msg), key=b"poison/")
    finally:
        await producer.stop()
    conn = await db.connect(b.dsn)
    try:

        async def applied_after() -> bool:
            row = await conn.fetchrow("SELECT 1 FROM namespaces WHERE name = 'after-poison'")
            return row is not None

        await eventually(applied_after, timeout=60, what="the partition carrying on")
    finally:
        await conn.close()
    letters = await list_dead_letters(a.config, b.name)
    assert len(letters) == 1
    dead = letters[0]
    assert dead["type"] == "bogus_v9" and dead["attempts"] == MAX_ATTEMPTS
    assert "unknown replication message type" in dead["error"]
    assert dead["source_region"] == a.name
    status = {
        (s.region, s.source): s for s in await replication_status(a.config) if s.namespace is None
    }
    assert status[(b.name, a.name)].dead_letters == 1
    assert status[(b.name, a.name)].consumer_lag_messages == 0
    async with httpx.AsyncClient() as http:
        metrics = (await http.get(f"{b.url}/metrics")).text
    assert f'baton_replication_dead_letters{{region="{b.name}",source="{a.name}"}} 1' in metrics
    assert f'baton_namespace_active{{region="{b.name}",namespace="after-poison"}} 0' in metrics

    # retrying a message that still fails keeps it, and says so
    with pytest.raises(ReplicationApplyFailed):
        await retry_dead_letter(a.config, b.name, dead["id"])
    assert (await list_dead_letters(a.config, b.name))[0]["attempts"] == MAX_ATTEMPTS + 1

    # a dead letter whose cause is gone applies on retry and leaves the table
    late = namespace_message(a.name, f"late-{uuid.uuid4().hex[:6]}", [a.name, b.name])
    conn = await db.connect(b.dsn)
    try:
        late_id = await conn.fetchval(
            "INSERT INTO replication_dlq (source_region, topic, kafka_partition, kafka_offset, "
            "namespace, workflow_id, message, error, attempts) "
            "VALUES ($1, $2, 0, 1000000, $3, '', $4, 'database was read-only', 3) RETURNING id",
            a.name,
            topic_for(a.name),
            late["namespace"],
            late,
        )
        assert (await retry_dead_letter(a.config, b.name, late_id))["applied"]
        assert (
            await conn.fetchval(
                "SELECT count(*) FROM namespaces WHERE name = $1", late["namespace"]
            )
            == 1
        )
    finally:
        await conn.close()
    assert [d["id"] for d in await list_dead_letters(a.config, b.name)] == [dead["id"]]

    assert await purge_dead_letters(a.config, b.name, dead["id"], everything=False) == [dead["id"]]
    assert await list_dead_letters(a.config, b.name) == []
    with pytest.raises(DeadLetterNotFound):
        await purge_dead_letters(a.config, b.name, dead["id"], everything=False)
