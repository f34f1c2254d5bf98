"""A real single-node Kafka broker from ops/kafka.py, used through aiokafka.

Checks the exact client settings Baton relies on: an idempotent producer with
acks=all, and a consumer that handles offsets itself (no auto-commit,
``assign()`` to explicit partitions, ``seek()``, explicit commits).
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition  # type: ignore[import-untyped]

from ops import kafka

pytestmark = pytest.mark.integration

TOPIC = "baton.test.events"
KEYS = [f"workflow-{i}" for i in range(10)]
PER_KEY = 10  # 10 keys x 10 messages = 100


async def test_broker_round_trip_keeps_per_key_order(tmp_path: Path) -> None:
    """Start a broker, produce 100 keyed messages, read them back in order."""
    # First run on a machine resolves the jars with Maven (about 20 s);
    # afterwards this returns from the cache at once.
    lib = await asyncio.to_thread(kafka.ensure_jars)
    port, controller_port = kafka.free_ports(2)
    data_dir = tmp_path / "kafka"
    kafka.write_config(data_dir, port, controller_port)
    assert await asyncio.to_thread(kafka.format_storage, data_dir, lib) is True
    # Formatting again must be a no-op, so restarts keep their data.
    assert kafka.format_storage(data_dir, lib) is False

    pid = kafka.start(data_dir, lib)
    bootstrap = f"127.0.0.1:{port}"
    try:
        assert kafka.read_pid(data_dir) == pid
        await kafka.wait_ready(bootstrap, 60.0, pid=pid, data_dir=data_dir)
        async with asyncio.timeout(45):
            await kafka.create_topics(bootstrap, [TOPIC], partitions=2)
            # An existing topic is fine.
            await kafka.create_topics(bootstrap, [TOPIC], partitions=2)
            await _produce(bootstrap)
            await _consume_and_check(bootstrap)
    finally:
        assert kafka.stop(pid) is True
    assert not kafka.is_running(pid)


async def _produce(bootstrap: str) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, acks="all")
    await producer.start()
    try:
        # Interleave keys so per-key order is not trivially the send order of
        # one batch; send() only enqueues, so all 100 are in flight together.
        futures = [
            await producer.send(TOPIC, key=key.encode(), value=f"{key}:{seq}".encode())
            for seq in range(PER_KEY)
            for key in KEYS
        ]
        results = await asyncio.gather(*futures)
    finally:
        await producer.stop()
    assert len(results) == len(KEYS) * PER_KEY


async def _consume_and_check(bootstrap: str) -> None:
    partitions = [TopicPartition(TOPIC, 0), TopicPartition(TOPIC, 1)]
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id="baton-kafka-broker-test",
        enable_auto_commit=False,
        auto_offset_reset="none",  # every position below is set by seek()
    )
    await consumer.start()
    try:
        consumer.assign(partitions)
        for tp in partitions:
            consumer.seek(tp, 0)

        # The idempotent producer must not have written duplicates.
        end = await consumer.end_offsets(partitions)
        assert sum(end.values()) == len(KEYS) * PER_KEY
        assert all(end[tp] > 0 for tp in partitions), "both partitions should get keys"

        seen: dict[str, list[int]] = defaultdict(list)
        partition_of: dict[str, set[int]] = defaultdict(set)
        count = 0
        while count < len(KEYS) * PER_KEY:
            batch = await consumer.getmany(timeout_ms=2000)
            assert batch, f"no messages after {count}"
            for tp, messages in batch.items():
                for msg in messages:
                    assert msg.key is not None and msg.value is not None
                    key = msg.key.decode()
                    value_key, _, seq = msg.value.decode().partition(":")
                    assert value_key == key
                    seen[key].append(int(seq))
                    partition_of[key].add(tp.partition)
                    count += 1

        assert count == len(KEYS) * PER_KEY
        assert sorted(seen) == sorted(KEYS)
        for key in KEYS:
            assert seen[key] == list(range(PER_KEY)), f"{key} out of order: {seen[key]}"
            assert len(partition_of[key]) == 1, f"{key} spread over {partition_of[key]}"

        # Manual offset handling: commit explicit positions and read them back.
        await consumer.commit({tp: end[tp] for tp in partitions})
        for tp in partitions:
            assert await consumer.committed(tp) == end[tp]

        # seek() backwards re-reads from exactly that offset.
        consumer.seek(partitions[0], 1)
        again = await consumer.getmany(partitions[0], timeout_ms=5000, max_records=1)
        assert [m.offset for m in again[partitions[0]]] == [1]
    finally:
        await consumer.stop()
