"""The applier: applies other regions' history batches to this region's database.

Each batch is applied in one transaction together with the partition's next
offset, so a crash never applies a batch twice nor loses one: on restart the
consumer seeks to the stored offsets. Batches already applied (the local run
is past them) are skipped; the overlapping part of a batch is trimmed. The
standby keeps history and execution state but creates no tasks or timers: it
does not run the workflows until it becomes active.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from datetime import datetime
from typing import Any

import aiohttp
import asyncpg
import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from replication.publisher import MESSAGE_TYPE, topic_for
from replication.sql import QUERIES as Q
from store.context import Store
from worker._http import wf_path

log = logging.getLogger("baton.applier")


class ReplicationGap(Exception):
    """A batch starts past the local history: earlier batches are missing."""

    def __init__(self, message: str, *, next_local: int):
        super().__init__(message)
        self.next_local = next_local


async def apply_batch_txn(conn: asyncpg.Connection, msg: dict[str, Any]) -> None:
    """Apply one history batch inside the caller's transaction.

    A batch the local run is already past is skipped; the part of a batch it
    already holds is trimmed.
    """
    ns, wid, rid = msg["namespace"], msg["workflow_id"], uuid.UUID(msg["run_id"])
    info = msg["namespace_info"]
    local_version = await conn.fetchval(Q["local_namespace"], ns)
    if local_version is None or local_version < info["failover_version"]:
        await conn.execute(Q["replace_namespace"], info)
    next_local = await conn.fetchval(Q["lock_local_execution"], ns, wid, rid) or 1
    first, last = msg["first_event_id"], msg["last_event_id"]
    if last < next_local:
        return
    if first > next_local:
        raise ReplicationGap(
            f"{ns}/{wid} run {rid}: batch starts at event {first} but local history ends at "
            f"{next_local - 1}",
            next_local=next_local,
        )
    events = [e for e in msg["events"] if e["event_id"] >= next_local]
    await conn.execute(Q["apply_events"], ns, wid, rid, events)
    execution = dict(msg["execution"])
    # The snapshot was read when the batch was shipped and may be ahead of it:
    # the local row never claims events it does not hold.
    execution["next_event_id"] = min(int(execution["next_event_id"]), last + 1)
    await conn.execute(Q["delete_execution"], ns, wid, rid)
    await conn.execute(Q["insert_execution_json"], execution)
    if execution["status"] == "running" or execution.get("continued_to_run_id") is None:
        await conn.execute(Q["replace_current"], ns, wid, rid, execution["status"])
    await conn.execute(Q["notify_applied"], f"{ns}/{wid}", execution["status"] != "running")


class Applier:
    """Consumes every other region's replication topic into this region's database."""

    def __init__(self, store: Store):
        self.store = store
        self.bootstrap = store.config.kafka_bootstrap
        self.sources = [r for r in store.config.regions if r != store.region]
        self._http: aiohttp.ClientSession | None = None

    async def run(self) -> None:
        if not self.bootstrap or not self.sources:
            return
        while True:
            try:
                await self._consume()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Kafka or the database is away: retry from stored offsets
                log.warning("applier of %s stopped (%r); retrying", self.store.region, exc)
                await asyncio.sleep(1.0)

    async def _consume(self) -> None:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            enable_auto_commit=False,
            group_id=None,
            auto_offset_reset="earliest",
            max_partition_fetch_bytes=16 * 1024 * 1024,
            fetch_max_bytes=64 * 1024 * 1024,
        )
        await consumer.start()
        try:
            partitions: list[TopicPartition] = []
            # aiokafka's consumer only tracks metadata of subscribed topics; read
            # the whole cluster's to learn the partitions to assign.
            cluster = await consumer._client.fetch_all_metadata()
            for source in self.sources:
                topic = topic_for(source)
                parts = cluster.partitions_for_topic(topic) or set()
                partitions += [TopicPartition(topic, p) for p in sorted(parts)]
            if not partitions:
                raise ConnectionError("no replication topics yet")
            consumer.assign(partitions)
            log.info(
                "applier of %s consumes %s",
                self.store.region,
                ", ".join(f"{tp.topic}[{tp.partition}]" for tp in partitions),
            )
            async with self.store.pool.acquire() as conn:
                for source in self.sources:
                    topic = topic_for(source)
                    stored = {
                        r["kafka_partition"]: r["next_offset"]
                        for r in await conn.fetch(Q["progress"], source, topic)
                    }
                    for tp in partitions:
                        if tp.topic != topic:
                            continue
                        if tp.partition in stored:
                            consumer.seek(tp, stored[tp.partition])
                        else:
                            await consumer.seek_to_beginning(tp)
            while True:
                batches = await consumer.getmany(timeout_ms=500, max_records=500)
                # Partitions are independent: apply them side by side, each
                # partition's records in order.
                await asyncio.gather(
                    *(self._apply_records(tp, records) for tp, records in batches.items())
                )
        finally:
            with contextlib.suppress(Exception):
                await consumer.stop()
            if self._http is not None:
                await self._http.close()

    async def _fetch_events(
        self, source: str, msg: dict[str, Any], first: int, last: int
    ) -> list[dict[str, Any]]:
        """Events ``first..last`` of the message's run, read from the source region."""
        if self._http is None or self._http.closed:
            self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
        url = wf_path(msg["namespace"], msg["workflow_id"], "/history")
        base = self.store.config.region(source).url
        events: list[dict[str, Any]] = []
        nxt = first
        while nxt <= last:
            async with self._http.get(
                base + url,
                params={
                    "run_id": msg["run_id"],
                    "from_event_id": str(nxt),
                },
            ) as resp:
                if resp.status != 200:
                    raise ConnectionError(
                        f"source region {source} answered {resp.status} for missing events"
                    )
                body = orjson.loads(await resp.read())
            page = [e for e in body["events"] if e["event_id"] <= last]
            if not page:
                raise ConnectionError(f"source region {source} has no events from {nxt}")
            events += page
            nxt = page[-1]["event_id"] + 1
        return events

    async def _apply_records(self, tp: TopicPartition, records: list[Any]) -> None:
        """Apply a partition's records in one transaction with their last offset.

        One commit for many batches keeps up with a busy source.
        """
        source = tp.topic.removeprefix("baton.replication.")
        msgs = [orjson.loads(r.value) for r in records]

        async def txn(conn: asyncpg.Connection) -> None:
            for msg in msgs:
                if msg.get("type") != MESSAGE_TYPE:
                    continue
                try:
                    await apply_batch_txn(conn, msg)
                except ReplicationGap as gap:
                    # The batch overtook an earlier one of its workflow (their
                    # transactions settled out of order): fetch the missing
                    # events from the source region and apply them with it.
                    missing = await self._fetch_events(
                        source, msg, gap.next_local, msg["first_event_id"] - 1
                    )
                    await apply_batch_txn(
                        conn,
                        {
                            **msg,
                            "first_event_id": gap.next_local,
                            "events": missing + list(msg["events"]),
                        },
                    )
            last = msgs[-1]
            source_time = (
                datetime.fromisoformat(last["source_time"]) if "source_time" in last else None
            )
            await conn.execute(
                Q["set_progress"],
                source,
                tp.topic,
                tp.partition,
                records[-1].offset + 1,
                source_time,
            )

        await self.store.txn(txn)
