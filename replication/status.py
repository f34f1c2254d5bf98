"""Replication figures: how far each region's applier is behind each source.

Read straight from the region databases (applier progress, outbox backlog,
dead letters) and from Kafka, so it works whether or not the servers are up.

Two kinds of row, both for a region (the applier) behind a source region:

* the source's whole topic (``namespace`` None): consumer lag is the end
  offsets minus the stored offsets, exact and cheap;
* one namespace: a source topic carries every namespace of that region, so
  the namespace's own lag is counted by reading the keys of the messages the
  region has not applied yet, at most ``scan_limit`` per partition. Past that
  the count is a lower bound (``lag_exact`` false, as it is when no count
  could be made: the figure is then None).

Time lag is the issue's definition: now minus the source commit time of the
last batch applied from the partitions that still hold something to apply
(zero when nothing is pending). A partition with nothing applied yet counts
from its oldest pending message.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from replication.publisher import topic_for
from replication.sql import QUERIES as Q
from replication.versions import row_rank
from store import db
from store.config import BatonConfig

#: Messages read per partition to count one namespace's share of the lag.
SCAN_LIMIT = 10_000
#: Seconds the whole scan of one (region, source) pair may take.
SCAN_SECONDS = 5.0


@dataclass(frozen=True)
class Lag:
    """How far ``region`` (the applier) is behind ``source`` (the publisher).

    ``namespace`` None is the source's whole topic; None in a figure means the
    database or broker it comes from could not be reached.
    """

    namespace: str | None
    region: str
    source: str
    consumer_lag_messages: int | None
    time_lag_s: float | None
    source_outbox_backlog: int | None
    applied_partitions: int | None
    partitions: int | None
    dead_letters: int | None = None
    lag_exact: bool = True

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _Pending:
    """What one partition holds past a region's stored offset."""

    start: int
    end: int
    last_applied_time: datetime | None
    # (namespace, source time) of each message read, oldest first
    read: list[tuple[str, datetime]] = field(default_factory=list)
    complete: bool = False  # read up to the end offset

    @property
    def lag(self) -> int:
        return max(0, self.end - self.start)


async def _consumer(bootstrap: str) -> AIOKafkaConsumer:
    """A started consumer; one that cannot start is closed before the error
    goes on (else aiokafka warns of an unclosed consumer)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        group_id=None,
        auto_offset_reset="earliest",
        request_timeout_ms=5000,
    )
    try:
        await consumer.start()
    except BaseException:
        with contextlib.suppress(Exception):
            await consumer.stop()
        raise
    return consumer


async def end_offsets(bootstrap: str, topics: list[str]) -> dict[tuple[str, int], int]:
    """The end offset of every partition of ``topics``."""
    consumer = await _consumer(bootstrap)
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


async def read_pending(
    bootstrap: str, topic: str, pending: dict[int, _Pending], limit: int, seconds: float
) -> None:
    """Read the keys of the pending messages of ``topic`` into ``pending``."""
    for part in pending.values():
        part.complete = part.lag == 0
    todo = {p: part for p, part in pending.items() if not part.complete}
    if not todo:
        return
    consumer = await _consumer(bootstrap)
    try:
        tps = {p: TopicPartition(topic, p) for p in todo}
        consumer.assign(list(tps.values()))
        for p, tp in tps.items():
            consumer.seek(tp, todo[p].start)
        deadline = time.monotonic() + seconds
        while todo and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=200, max_records=2000)
            for tp, records in batches.items():
                s = todo.get(tp.partition)
                if s is None:
                    continue
                for rec in records:
                    if rec.offset >= s.end or len(s.read) >= limit:
                        break
                    ns = (rec.key or b"").decode(errors="replace").split("/", 1)[0]
                    s.read.append((ns, datetime.fromtimestamp(rec.timestamp / 1000, UTC)))
                    s.complete = rec.offset >= s.end - 1
                if s.complete or len(s.read) >= limit:
                    consumer.pause(tp)
                    del todo[tp.partition]
    finally:
        with contextlib.suppress(Exception):
            await consumer.stop()


def _time_lag(parts: list[_Pending], now: datetime, namespace: str | None) -> float | None:
    """Now minus the last applied source time of the partitions still behind."""
    behind = [
        s
        for s in parts
        if s.lag > 0
        and (namespace is None or not s.complete or any(ns == namespace for ns, _ in s.read))
    ]
    if not behind:
        return 0.0
    times = []
    for s in behind:
        if s.last_applied_time is not None:
            times.append(s.last_applied_time)
        elif s.read:
            mine = [t for ns, t in s.read if namespace is None or ns == namespace]
            times.append(mine[0] if mine else s.read[0][1])
        else:
            return None
    return max(0.0, (now - min(times)).total_seconds())


async def _region_rows(config: BatonConfig, region: str, sources: list[str]) -> dict[str, Any]:
    conn = await db.connect_region(config, region)
    try:
        progress = {}
        for source in sources:
            rows = await conn.fetch(Q["progress"], source, topic_for(source))
            progress[source] = {r["kafka_partition"]: r for r in rows}
        backlog = {
            r["namespace"]: int(r["n"]) for r in await conn.fetch(Q["outbox_backlog_by_namespace"])
        }
        dead: dict[tuple[str, str], int] = {
            (r["source_region"], r["namespace"]): int(r["n"])
            for r in await conn.fetch(Q["dead_letters_by_source_and_namespace"])
        }
        namespaces = {r["name"]: r for r in await conn.fetch(Q["replicated_namespaces"])}
        return {"progress": progress, "backlog": backlog, "dead": dead, "namespaces": namespaces}
    finally:
        await conn.close()


def _namespace_regions(per_region: dict[str, dict[str, Any] | None]) -> dict[str, list[str]]:
    """Each replicated namespace's regions, from the newest row any region holds."""
    newest: dict[str, tuple[str, Any]] = {}
    for region, info in per_region.items():
        for name, row in (info or {}).get("namespaces", {}).items():
            if name not in newest or row_rank(region, row) > row_rank(*newest[name]):
                newest[name] = (region, row)
    return {name: list(row["regions"]) for name, (_, row) in sorted(newest.items())}


async def replication_status(
    config: BatonConfig,
    namespace: str | None = None,
    *,
    per_namespace: bool = True,
    scan_limit: int = SCAN_LIMIT,
    scan_seconds: float = SCAN_SECONDS,
) -> list[Lag]:
    """Lag of every region behind every other region (None where unreachable).

    Rows for each source's whole topic come first, then (``per_namespace``) a
    row per replicated namespace and pair of its regions. With ``namespace``:
    only that namespace's rows.
    """
    regions = list(config.regions)
    if namespace is not None:
        from replication.failover import namespace_row

        _, row = await namespace_row(config, namespace)
        regions = [r for r in regions if r in row["regions"]]
    if not config.kafka_bootstrap or len(regions) < 2:
        return []
    ends: dict[tuple[str, int], int] | None
    try:
        ends = await end_offsets(config.kafka_bootstrap, [topic_for(r) for r in regions])
    except Exception:
        ends = None  # the broker is down: the database figures still stand
    per_region: dict[str, dict[str, Any] | None] = {}
    for r in regions:
        try:
            per_region[r] = await _region_rows(config, r, [s for s in regions if s != r])
        except Exception:
            per_region[r] = None  # that region's database is down
    ns_regions = _namespace_regions(per_region)
    if namespace is not None:
        ns_regions = {namespace: ns_regions.get(namespace, regions)}
    now = datetime.now(UTC)
    topic_rows: list[Lag] = []
    ns_rows: list[Lag] = []
    for region in regions:
        info = per_region[region]
        for source in regions:
            if source == region:
                continue
            wanted = [
                n for n, rs in ns_regions.items() if per_namespace and region in rs and source in rs
            ]
            src = per_region[source]
            topic = topic_for(source)
            progress = info["progress"][source] if info else {}
            pending: dict[int, _Pending] | None = None
            if ends is not None and info is not None:
                pending = {
                    p: _Pending(
                        start=progress[p]["next_offset"] if p in progress else 0,
                        end=end,
                        last_applied_time=(
                            progress[p]["last_source_time"] if p in progress else None
                        ),
                    )
                    for (t, p), end in ends.items()
                    if t == topic
                }
                if wanted:
                    with contextlib.suppress(Exception):
                        await read_pending(
                            config.kafka_bootstrap, topic, pending, scan_limit, scan_seconds
                        )
            parts = list(pending.values()) if pending is not None else []
            # how many partitions the topic has: unknown with the broker down
            topic_partitions = None if ends is None else sum(1 for t, _ in ends if t == topic)
            if namespace is None:
                topic_rows.append(
                    Lag(
                        None,
                        region,
                        source,
                        sum(s.lag for s in parts) if pending is not None else None,
                        _time_lag(parts, now, None) if pending is not None else None,
                        sum(src["backlog"].values()) if src else None,
                        len(progress) if info else None,
                        topic_partitions,
                        sum(n for (s, _), n in info["dead"].items() if s == source)
                        if info
                        else None,
                        pending is not None,
                    )
                )
            for ns in wanted:
                # a lag not counted (the broker or the region's database down) is not exact
                exact = pending is not None and all(s.complete for s in parts)
                ns_rows.append(
                    Lag(
                        ns,
                        region,
                        source,
                        sum(1 for s in parts for n, _ in s.read if n == ns)
                        if pending is not None
                        else None,
                        _time_lag(parts, now, ns) if pending is not None else None,
                        src["backlog"].get(ns, 0) if src else None,
                        len(progress) if info else None,
                        topic_partitions,
                        info["dead"].get((source, ns), 0) if info else None,
                        exact,
                    )
                )
    return topic_rows + sorted(ns_rows, key=lambda x: (x.namespace or "", x.region, x.source))
