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
import functools
import logging
import uuid
from datetime import datetime
from typing import Any

import aiohttp
import asyncpg
import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from replication.apply import (
    NeedConfirmation,
    NeedContent,
    NeedRunCheck,
    ReplicationGap,
    apply_buffered_txn,
    apply_history_txn,
    apply_namespace_txn,
    apply_progress_txn,
    lock_namespaces_for_apply,
)
from replication.conflicts import Losing, archive_losing_batch, converge_txn
from replication.publisher import MESSAGE_TYPES, topic_for
from replication.sql import QUERIES as Q
from store import db
from store.api_guard import PEER_HEADER
from store.context import Store
from store.errors import (
    DATABASE_UNAVAILABLE,
    NamespaceInHandover,
    Unavailable,
    database_unavailable,
)
from store.leader import lead_forever
from worker._http import ns_path, wf_path

log = logging.getLogger("baton.applier")

#: Advisory lock key of the region's applier ("baton-ap").
APPLIER_LOCK = 0x6261746F6E2D6170 & 0x7FFFFFFFFFFFFFFF

#: Attempts at a failing batch before its records go one by one, and at a
#: failing record before it goes to the dead-letter table.
MAX_ATTEMPTS = 3
#: Messages handed to the database's plain apply at once (baton_apply_plain_v1
#: stops at the first it leaves to the rules, and the rest go again).
PLAIN_WINDOW = 64
RETRY_BACKOFF_S = 0.5
#: Errors of the plumbing (database or network away), retried forever from
#: the stored offsets rather than dead-lettered.
#: The database list is the one the API answers UNAVAILABLE for: a crash of
#: the standby's PostgreSQL (57P02) mid-apply must not dead-letter good messages.
INFRA_ERRORS: tuple[type[BaseException], ...] = (
    *DATABASE_UNAVAILABLE,
    Unavailable,
    NamespaceInHandover,
)


def applied_notifications(msgs: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """What the plain apply of ``msgs`` announces (baton_apply_plain_v1's
    notify_applied, sent by the applier once the batch committed): each run
    written, and each run the write closed."""
    out: list[tuple[str, str]] = []
    for m in msgs:
        if m.get("type") != "history_v1" or not m.get("namespace") or not m.get("workflow_id"):
            continue
        key = f"{m['namespace']}/{m['workflow_id']}"
        out.append(("baton_history_v1", key))
        if ((m.get("execution") or {}).get("status") or "running") != "running":
            out.append(("baton_closed_v1", key))
    return out


def is_infra_error(exc: BaseException) -> bool:
    """Whether ``exc`` is the plumbing's (retried from the stored offsets)."""
    return isinstance(exc, INFRA_ERRORS) or database_unavailable(exc)


class MissingEvents(ValueError):
    """The source region cannot give the events a message needs."""


class NeedEvents(Exception):
    """Message ``index`` needs events ``first..last`` from its source region."""

    def __init__(self, index: int, first: int, last: int):
        super().__init__(f"message {index} needs events {first}..{last}")
        self.index, self.first, self.last = index, first, last


class Applier:
    """Consumes every other region's replication topic into this region's database."""

    def __init__(self, store: Store):
        self.store = store
        self.bootstrap = store.config.kafka_bootstrap
        self.sources = [r for r in store.config.regions if r != store.region]
        self._http: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        """The session to read what a message left at its source region with."""
        if self._http is None or self._http.closed:
            # a region taken out of the namespace still answers its peers
            self._http = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=30),
                headers={PEER_HEADER: self.store.region},
            )
        return self._http

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()

    async def run(self) -> None:
        """Consume while this process holds the region's applier lock.

        One applier per region (so one per source partition): the other
        server processes of the region stand by and take over within a
        second of the holder's death. The lock only spares the work twice:
        each apply transaction also locks its partition's progress row and
        skips records below the stored offset, so a deposed or lagging
        applier can never apply a record again.
        """
        if not self.bootstrap or not self.sources:
            return
        await lead_forever(self.store, APPLIER_LOCK, "applier", self._consume)

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
                # A task group: if one partition fails, the others stop too,
                # before the consumer restarts from the stored offsets.
                async with asyncio.TaskGroup() as group:
                    for tp, records in batches.items():
                        group.create_task(self._apply_records(tp, records))
        finally:
            with contextlib.suppress(Exception):
                await consumer.stop()
            if self._http is not None:
                await self._http.close()

    async def _fetch_events(
        self, source: str, msg: dict[str, Any], first: int, last: int
    ) -> list[dict[str, Any]]:
        """Events ``first..last`` of the message's run, read from the source region."""
        events = await self._read_history(source, msg, first, last)
        if events is None or not events or events[-1]["event_id"] < last:
            have = "no run" if events is None else f"events up to {first + len(events) - 1}"
            raise MissingEvents(
                f"source region {source} has {have}, not events {first}..{last} of "
                f"{msg['namespace']}/{msg['workflow_id']}"
            )
        return events

    async def held_by(
        self, region: str, msg: dict[str, Any], first: int, last: int
    ) -> list[list[int]]:
        """(event id, version) of the events ``first..last`` of the message's run
        that ``region`` holds (none if it does not have the run)."""
        events = await self._read_history(region, msg, first, last)
        return [[int(e["event_id"]), int(e["version"])] for e in events or []]

    async def _read_history(
        self, region: str, msg: dict[str, Any], first: int, last: int
    ) -> list[dict[str, Any]] | None:
        """What ``region`` holds of events ``first..last`` of the message's run
        (fewer where its history ends; None without the run)."""
        url = wf_path(msg["namespace"], msg["workflow_id"], "/history")
        base = self.store.config.region(region).url
        events: list[dict[str, Any]] = []
        nxt = first
        while nxt <= last:
            async with self._client().get(
                base + url, params={"run_id": msg["run_id"], "from_event_id": str(nxt)}
            ) as resp:
                if resp.status >= 500:
                    raise ConnectionError(f"region {region} answered {resp.status} for history")
                raw = await resp.read()
                if resp.status == 404 and b"WORKFLOW_NOT_FOUND" in raw:
                    return None
                if resp.status != 200:
                    # not coming back by retrying: the message is poisoned
                    raise MissingEvents(
                        f"region {region} answered {resp.status} for events {nxt}..{last} of "
                        f"{msg['namespace']}/{msg['workflow_id']}"
                    )
            page = [e for e in orjson.loads(raw)["events"] if e["event_id"] <= last]
            if not page:
                break
            events += page
            nxt = page[-1]["event_id"] + 1
        return events

    async def _apply_records(self, tp: TopicPartition, records: list[Any]) -> None:
        """Apply a partition's records in one transaction with their last offset.

        One commit for many batches keeps up with a busy source. If the
        transaction keeps failing on something other than the database being
        away, the records are applied one at a time, and one that still fails
        after :data:`MAX_ATTEMPTS` goes to the dead-letter table, so one
        poisoned message never stops a partition.
        """
        source = tp.topic.removeprefix("baton.replication.")
        msgs = [orjson.loads(r.value) for r in records]
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                await self._apply_fetching(source, tp, records, msgs)
                return
            except Exception as exc:
                if is_infra_error(exc):
                    raise
                log.warning(
                    "applying %d record(s) of %s[%d] failed (attempt %d/%d): %r",
                    len(records),
                    tp.topic,
                    tp.partition,
                    attempt,
                    MAX_ATTEMPTS,
                    exc,
                )
                await asyncio.sleep(RETRY_BACKOFF_S * attempt)
        for record, msg in zip(records, msgs, strict=True):
            await self._apply_one_or_dead_letter(source, tp, record, msg)

    async def _apply_fetching(
        self, source: str, tp: TopicPartition, records: list[Any], msgs: list[dict[str, Any]]
    ) -> None:
        """Apply ``msgs`` in as few transactions as possible. What a message lacks
        (events of a gap or of a batch sent by reference, or the active region's
        word on an older batch) is fetched between transactions, never while one
        holds row locks; the messages before it are committed first, so each
        fetch replays only the rest."""
        if await self._apply_batch(source, tp, records, msgs):
            return
        # The plain messages before the first for the rules are applied, and
        # their offsets stored: each transaction below skips them.
        start, end = 0, len(msgs)
        for _ in range(3 * len(msgs) + 3):
            lo, hi = start, end
            try:
                await self.store.txn(
                    functools.partial(self._apply_txn, source, tp, records[lo:hi], msgs[lo:hi])
                )
            except NeedEvents as need:
                i = lo + need.index
                msgs[i] = await self.with_events(source, msgs[i], need.first, need.last)
                end = i if i > lo else len(msgs)
                continue
            except NeedConfirmation as need:
                i = lo + need.index
                held = await self.held_by(need.active_region, msgs[i], need.first, need.last)
                msgs[i] = {**msgs[i], "held_by_active": held}
                end = i if i > lo else len(msgs)
                continue
            except NeedRunCheck as need:
                i = lo + need.index
                rid = str(need.run_id)
                has = await self.held_by(need.active_region, {**msgs[i], "run_id": rid}, 1, 1)
                checked = {**msgs[i].get("active_holds_runs", {}), rid: bool(has)}
                msgs[i] = {**msgs[i], "active_holds_runs": checked}
                end = i if i > lo else len(msgs)
                continue
            except NeedContent as need:
                i = lo + need.index
                msgs[i] = await self.with_content(source, msgs[i])
                end = i if i > lo else len(msgs)
                continue
            if hi == len(msgs):
                return
            start, end = hi, len(msgs)
        raise RuntimeError("events kept going missing while applying a batch")

    async def _apply_batch(
        self, source: str, tp: TopicPartition, records: list[Any], msgs: list[dict[str, Any]]
    ) -> bool:
        """Apply ``msgs`` with their partition's next offset in one statement
        (baton_apply_batch_v1) up to the first for the rules; True if that is all."""
        args = (
            self.store.region,
            source,
            tp.topic,
            tp.partition,
            [r.offset for r in records],
            msgs,
        )
        done = await db.run_unlocked(
            self.store.pool, lambda conn: conn.fetchval(Q["apply_batch"], *args)
        )
        # committed: wake the long-polls of the runs it wrote, here and in the
        # region's other server processes (a message it skipped wakes nothing
        # that would not find the same history)
        self.store.notifier.publish(applied_notifications(msgs[:done]))
        return bool(done == len(msgs))

    async def with_events(
        self, source: str, msg: dict[str, Any], first: int, last: int
    ) -> dict[str, Any]:
        """``msg`` with events ``first..last`` fetched from the source region."""
        fetched = await self._fetch_events(source, msg, first, last)
        return {
            **msg,
            "first_event_id": first,
            "events": fetched + [e for e in msg["events"] if e["event_id"] > last],
            "events_by_reference": False,
        }

    async def with_content(self, source: str, msg: dict[str, Any]) -> dict[str, Any]:
        """``msg`` with the buffered inputs or conflict events it left at its source."""
        base = self.store.config.region(source).url
        if msg.get("buffered_by_reference"):
            url = base + wf_path(msg["namespace"], msg["workflow_id"], "/buffered")
            params = {"run_id": msg["run_id"]}
        else:
            url = base + ns_path(
                msg["namespace"], f"/replication-conflicts/{msg['conflict']['id']}"
            )
            params = {}
        async with self._client().get(url, params=params) as resp:
            raw = await resp.read()
            if resp.status >= 500:
                raise ConnectionError(f"region {source} answered {resp.status} for {url}")
            if resp.status != 200:
                raise MissingEvents(f"region {source} answered {resp.status} for {url}")
        body = orjson.loads(raw)
        if msg.get("buffered_by_reference"):
            return {**msg, "buffered": body["buffered"], "buffered_by_reference": False}
        conflict = {**msg["conflict"], "events": body["events"]}
        return {**msg, "conflict": conflict, "conflict_by_reference": False}

    async def _apply_one_or_dead_letter(
        self, source: str, tp: TopicPartition, record: Any, msg: dict[str, Any]
    ) -> None:
        error: Exception | None = None
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                await self._apply_fetching(source, tp, [record], [msg])
                return
            except Exception as exc:
                if is_infra_error(exc):
                    raise
                error = exc
                await asyncio.sleep(RETRY_BACKOFF_S * attempt)

        async def dead_letter(conn: asyncpg.Connection) -> None:
            await conn.execute(
                Q["insert_dead_letter"],
                source,
                tp.topic,
                tp.partition,
                record.offset,
                msg.get("namespace"),
                msg.get("workflow_id"),
                msg,
                repr(error),
                MAX_ATTEMPTS,
            )
            await conn.execute(
                Q["set_progress"], source, tp.topic, tp.partition, record.offset + 1, None
            )

        log.error(
            "%s[%d] offset %d goes to the dead-letter table after %d attempts: %r",
            tp.topic,
            tp.partition,
            record.offset,
            MAX_ATTEMPTS,
            error,
        )
        await self.store.txn(dead_letter)

    async def _apply_txn(
        self,
        source: str,
        tp: TopicPartition,
        records: list[Any],
        msgs: list[dict[str, Any]],
        conn: asyncpg.Connection,
    ) -> None:
        # Fence: lock the partition's progress and skip what it already
        # holds (another applier got there first, or this one re-reads).
        stored = await conn.fetchval(Q["lock_progress"], source, tp.topic, tp.partition)
        if stored is None:
            await conn.execute(Q["create_progress"], source, tp.topic, tp.partition)
            stored = await conn.fetchval(Q["lock_progress"], source, tp.topic, tp.partition)
        fresh = [i for i, r in enumerate(records) if r.offset >= stored]
        if not fresh:
            return
        await lock_namespaces_for_apply(conn, [msgs[i] for i in fresh])
        i = fresh[0]
        while i < len(msgs):
            # The plain messages in one round trip; the first that is not
            # goes through the rules below, one statement at a time.
            window = msgs[i : i + PLAIN_WINDOW]
            applied = await conn.fetchval(Q["apply_plain"], self.store.region, window)
            i += applied
            if applied == len(window):
                continue
            msg = msgs[i]
            if msg.get("events_by_reference"):
                raise NeedEvents(i, msg["first_event_id"], msg["last_event_id"])
            try:
                await self.apply_message(conn, source, msg)
            except (NeedConfirmation, NeedContent, NeedRunCheck) as need:
                need.index = i
                raise
            except ReplicationGap as gap:
                # The batch overtook an earlier one of its workflow (their
                # transactions settled out of order): the missing events come
                # from the source region, outside this transaction.
                raise NeedEvents(i, gap.next_local, msg["first_event_id"] - 1) from gap
            i += 1
        last = msgs[-1]
        source_time = datetime.fromisoformat(last["source_time"]) if "source_time" in last else None
        await conn.execute(
            Q["set_progress"], source, tp.topic, tp.partition, records[-1].offset + 1, source_time
        )

    async def apply_message(
        self, conn: asyncpg.Connection, source: str, msg: dict[str, Any]
    ) -> None:
        """Apply one replication message inside the caller's transaction."""
        kind = msg.get("type")
        region = self.store.region
        if kind == MESSAGE_TYPES["namespace"]:
            await apply_namespace_txn(conn, region, msg["namespace_info"])
        elif kind == MESSAGE_TYPES["progress"]:
            await apply_progress_txn(conn, region, msg)
        elif kind == MESSAGE_TYPES["buffered"]:
            await apply_buffered_txn(self.store, conn, region, msg)
        elif kind == MESSAGE_TYPES["conflict"]:
            await self._apply_conflict(conn, msg)
        elif kind == MESSAGE_TYPES["history"]:
            await apply_history_txn(self.store, conn, msg)
        else:
            raise ValueError(f"unknown replication message type {kind!r}")

    async def _apply_conflict(self, conn: asyncpg.Connection, msg: dict[str, Any]) -> None:
        """Another region archived a tail it never shipped: re-apply its signals and
        starts if the namespace is active here. Or the active region refused a
        branch: drop this region's copy of it."""
        ns = await conn.fetchrow(Q["local_namespace_full"], msg["namespace"])
        conflict = msg.get("conflict")
        if ns is None or not conflict:
            return
        if conflict.get("kind") == "rejected_batch":
            # The region active then refused a deposed region's branch: a
            # region holding a copy of it drops it (nothing to re-apply: the
            # refusing region did that).
            if ns["active_region"] != self.store.region:
                await converge_txn(self.store, conn, msg)
            return
        if ns["active_region"] != self.store.region:
            return
        if msg.get("conflict_by_reference"):
            raise NeedContent()
        if not conflict["events"]:
            return  # no signal or start in the archived tail: nothing to re-apply
        losing = Losing(
            msg["namespace"],
            msg["workflow_id"],
            uuid.UUID(msg["run_id"]),
            msg["source_region"],
            list(conflict["events"]),
            int(ns["failover_version"]),
        )
        await archive_losing_batch(self.store, conn, losing, reapply=True)
