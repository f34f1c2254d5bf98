"""Replication figures: how far each region's applier is behind each source.

Read straight from the region databases (applier progress, outbox backlog) and
from Kafka (each topic partition's end offset), so it works whether or not the
servers are up.
"""

from __future__ import annotations

import contextlib
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from replication.publisher import topic_for
from replication.sql import QUERIES as Q
from store import db
from store.config import BatonConfig


@dataclass(frozen=True)
class Lag:
    """How far ``region`` (the applier) is behind ``source`` (the publisher)."""

    region: str
    source: str
    consumer_lag_messages: int | None
    time_lag_s: float | None
    source_outbox_backlog: int | None
    applied_partitions: int
    partitions: int
    dead_letters: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


async def end_offsets(bootstrap: str, topics: list[str]) -> dict[tuple[str, int], int]:
    """The end offset of every partition of ``topics``."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None
    )
    await consumer.start()
    try:
        cluster = await consumer._client.fetch_all_metadata()
        tps = [
            TopicPartition(t, p)
            for t in topics
            for p in sorted(cluster.partitions_for_topic(t) or ())
        ]
        ends = await consumer.end_offsets(tps) if tps else {}
        return {(tp.topic, tp.partition): off for tp, off in ends.items()}
    finally:
        with contextlib.suppress(Exception):
            await consumer.stop()


async def _region_rows(
    dsn: str, region: str, sources: list[str], namespace: str | None
) -> dict[str, Any]:
    conn = await db.connect(dsn)
    try:
        backlog = await conn.fetchval(Q["outbox_backlog_of"], namespace)
        progress = {}
        for source in sources:
            rows = await conn.fetch(Q["progress"], source, topic_for(source))
            progress[source] = {r["kafka_partition"]: r for r in rows}
        dead = {
            r["source_region"]: r["n"]
            for r in await conn.fetch(Q["dead_letters_by_source"], namespace)
        }
        return {"backlog": int(backlog), "progress": progress, "dead": dead}
    finally:
        await conn.close()


async def replication_status(config: BatonConfig, namespace: str | None = None) -> list[Lag]:
    """Lag of every region behind every other region (None where unreachable).

    With ``namespace``: only the namespace's regions, and its own outbox
    backlog and dead letters. Kafka lag is the topic's, which every namespace
    of a source region shares.
    """
    regions = list(config.regions)
    if namespace is not None:
        from replication.failover import namespace_row

        _, row = await namespace_row(config, namespace)
        regions = [r for r in regions if r in row["regions"]]
    if not config.kafka_bootstrap or len(regions) < 2:
        return []
    ends = await end_offsets(config.kafka_bootstrap, [topic_for(r) for r in regions])
    per_region: dict[str, dict[str, Any] | None] = {}
    for r in regions:
        try:
            per_region[r] = await _region_rows(
                config.regions[r].dsn, r, [s for s in regions if s != r], namespace
            )
        except Exception:
            per_region[r] = None  # that region's database is down
    now = datetime.now(UTC)
    out = []
    for region in regions:
        info = per_region[region]
        for source in regions:
            if source == region:
                continue
            topic = topic_for(source)
            parts = {p: off for (t, p), off in ends.items() if t == topic}
            source_info = per_region[source]
            backlog = source_info["backlog"] if source_info else None
            if info is None:
                out.append(Lag(region, source, None, None, backlog, 0, len(parts)))
                continue
            progress = info["progress"][source]
            lag = sum(
                max(0, end - (progress[p]["next_offset"] if p in progress else 0))
                for p, end in parts.items()
            )
            times = [
                row["last_source_time"]
                for row in progress.values()
                if row["last_source_time"] is not None
            ]
            time_lag = 0.0 if lag == 0 else ((now - max(times)).total_seconds() if times else None)
            out.append(
                Lag(
                    region,
                    source,
                    lag,
                    time_lag,
                    backlog,
                    len(progress),
                    len(parts),
                    int(info["dead"].get(source, 0)),
                )
            )
    return out
