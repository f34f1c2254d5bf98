"""The publisher: ships a region's outbox to its Kafka topic, in commit order.

One publisher per region holds the publisher advisory lock; any other server
of the region stands by and takes over within seconds when the holder dies.
It reads outbox rows whose transactions have all settled, produces one
message per history batch, or per run of a round whose batches continue each
other (key = namespace/workflow id, so one workflow's batches stay in one
partition, in order) with an idempotent ``acks=all`` producer, and moves its
ack level (deleting the acked rows) only after Kafka acknowledged every
message of the batch: in the statement that reads the next round when a
commit came in while the round shipped (the rule when writes follow each
other), else at once in one of its own. A crash between the send and the
acknowledgement re-sends the rows, perhaps grouped otherwise, and the
appliers skip the events they hold already.

A round that a commit's notification starts waits ``[kafka]
publish_gather_ms`` first (10 ms by default), so that the writes a run makes
in quick succession (a start, its first workflow task, an activity's
result) ship as one message rather than one each: every message costs the
broker, the standby's server and its PostgreSQL about the same whatever it
holds, and that cost is what replication added to a workflow at low and
middling rates. The wait bounds what it adds to the lag; a full round goes
on without it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer

from replication.sql import QUERIES as Q
from store.context import Store
from store.leader import lead_forever

log = logging.getLogger("baton.publisher")

#: Advisory lock key of the region's publisher ("baton-pu").
PUBLISHER_LOCK = 0x6261746F6E2D7075 & 0x7FFFFFFFFFFFFFFF
BATCH = 500
IDLE_WAIT_S = 1.0
#: First wait for rows held behind a running transaction (doubling, up to
#: IDLE_WAIT_S, each time the hold outlasts a whole wait).
HELD_WAIT_S = 0.005
#: A round that shipped fewer rows than this, with a commit come in
#: meanwhile, leaves its acknowledgement to the next round's read (at low
#: rates a round a write, and the acknowledgement every other statement); a
#: larger one acknowledges alone: under load, carrying it sped rounds up and
#: split runs' writes over more messages (4.3 to 4.9 a workflow), which cost
#: the standby and Kafka more than the statement saved.
CARRY_MAX_ROWS = 8
#: How long the publisher trusts its list of replicated namespaces without a
#: namespace notification (a listener that reconnected may have missed one).
REPLICATED_TTL_S = 5.0
#: Message types on a replication topic, by outbox row kind.
MESSAGE_TYPES = {
    "history": "history_v1",
    "progress": "progress_v1",
    "namespace": "namespace_v1",
    "conflict": "conflict_v1",
    "buffered": "buffered_v1",
}
NIL_RUN = "00000000-0000-0000-0000-000000000000"
#: Largest message the publisher sends (Kafka's default max.message.bytes is
#: 1048588, which includes the record batch's own overhead). Whatever does not
#: fit travels by reference: the receiver reads it from this region's API.
MAX_INLINE_BYTES = 1_000_000


def topic_for(region: str) -> str:
    """The replication topic of a source region."""
    return f"baton.replication.{region}"


def _events_by_reference(body: dict[str, Any]) -> dict[str, Any]:
    # the receiver reads the event range from this region's history API
    return {**body, "events": [], "events_by_reference": True} if body["events"] else body


def _fields_from_history(body: dict[str, Any]) -> dict[str, Any]:
    # memo, result and failure are in the run's history: the receiver reads them there
    exe = body["execution"]
    if not exe:
        return body
    slim = {**exe, "memo": {}, "result": None, "failure": None}
    return {**body, "execution": slim, "execution_fields_from_history": True}


def _details_dropped(body: dict[str, Any]) -> dict[str, Any]:
    # the receiver keeps the heartbeat details it has for these activities
    if not any(a.get("heartbeat_details") or a.get("last_failure") for a in body["activities"]):
        return body
    acts = [{**a, "heartbeat_details": None, "last_failure": None} for a in body["activities"]]
    dropped = [a["scheduled_event_id"] for a in body["activities"]]
    return {**body, "activities": acts, "details_dropped": dropped}


def _buffered_by_reference(body: dict[str, Any]) -> dict[str, Any]:
    # the receiver reads the run's waiting inputs from this region's API
    return {**body, "buffered": [], "buffered_by_reference": True} if body["buffered"] else body


def _conflict_by_reference(body: dict[str, Any]) -> dict[str, Any]:
    # the receiver reads the archive's signals and starts from this region's API
    conflict = body["conflict"]
    if not conflict or not conflict.get("events"):
        return body
    return {**body, "conflict": {**conflict, "events": []}, "conflict_by_reference": True}


_SHRINK = (
    _events_by_reference,
    _fields_from_history,
    _details_dropped,
    _buffered_by_reference,
    _conflict_by_reference,
)


def message_for(
    row: Any, region: str, max_inline_bytes: int = MAX_INLINE_BYTES
) -> tuple[bytes, bytes]:
    """(key, value) of the Kafka message for one outbox row.

    A message that would be larger than ``max_inline_bytes`` sheds its large
    parts one by one, each replaced by a reference the receiver resolves from
    this region (history events, the memo, result and failure of the run,
    heartbeat details, buffered inputs, a conflict's signals): whatever the
    API accepted can be shipped. What remains is bounded by the API's field
    limits (names, identities, the namespace description).
    """
    body = _body(row, region)
    value = orjson.dumps(body)
    for shrink in _SHRINK:
        if len(value) <= max_inline_bytes:
            break
        body = shrink(body)
        value = orjson.dumps(body)
    if len(value) > max_inline_bytes:
        log.error(
            "replication message for %s/%s is %d bytes even by reference (limit %d)",
            row["namespace"],
            row["workflow_id"],
            len(value),
            max_inline_bytes,
        )
    return _key(row), value


def messages_for(
    rows: Sequence[Any], region: str, max_inline_bytes: int = MAX_INLINE_BYTES
) -> list[tuple[bytes, bytes]]:
    """(key, value) of the Kafka messages for a round's replicated outbox rows,
    in order.

    A history row that continues the previous row of its workflow in the
    round (same run, the next event, the same failover version and namespace
    row) rides in that row's message: one message of the run's events from
    the first row's first to the last row's last, with the last row's
    execution row and time. What the receiver does is the same as for the
    rows one by one (the execution row of the first is overwritten by the
    last's in the same transaction) at a fraction of the messages: under
    load most runs write twice or more between two rounds. A merged message
    that would not fit inline goes as its rows' messages instead, so merging
    never sends events by reference that would have travelled inline.
    Grouping keeps each workflow's rows in their order: a row joins only the
    latest message of its workflow.
    """
    groups: list[list[Any]] = []
    latest: dict[tuple[str, str], list[Any]] = {}
    for row in rows:
        wf = (row["namespace"], row["workflow_id"])
        group = latest.get(wf)
        if group is not None and _continues(group[-1], row):
            group.append(row)
            continue
        latest[wf] = group = [row]
        groups.append(group)
    out = []
    for group in groups:
        if len(group) > 1:
            merged = dict(group[-1])
            merged["first_event_id"] = group[0]["first_event_id"]
            merged["events"] = [e for r in group for e in r["events"]]
            value = orjson.dumps(_body(merged, region))
            if len(value) <= max_inline_bytes:
                out.append((_key(merged), value))
                continue
        out += [message_for(r, region, max_inline_bytes) for r in group]
    return out


def _continues(prev: Any, row: Any) -> bool:
    return (
        prev["kind"] == row["kind"] == "history"
        and prev["run_id"] == row["run_id"]
        and row["first_event_id"] == prev["last_event_id"] + 1
        and prev["version"] == row["version"]
        and bool(prev["events"])
        and bool(row["events"])
        and prev["ns"] == row["ns"]
    )


def _key(row: Any) -> bytes:
    return f"{row['namespace']}/{row['workflow_id']}".encode()


def _body(row: Any, region: str) -> dict[str, Any]:
    return {
        "type": MESSAGE_TYPES[row["kind"]],
        "source_region": region,
        "namespace": row["namespace"],
        "workflow_id": row["workflow_id"],
        "run_id": str(row["run_id"]),
        "first_event_id": row["first_event_id"],
        "last_event_id": row["last_event_id"],
        "version": row["version"],
        "source_time": row["created_at"].isoformat(),
        "events": row["events"] or [],
        "execution": row["execution"],
        "activities": row["activities"] or [],
        "buffered": row.get("buffered") or [],
        "conflict": row["conflict"],
        "namespace_info": row["ns"],
    }


class Publisher:
    """Ships the outbox of this server's region while it holds the publisher lock."""

    def __init__(self, store: Store):
        self.store = store
        self.bootstrap = store.config.kafka_bootstrap
        self._wake = asyncio.Event()
        #: how long a round waits for more writes once a commit woke it
        self._gather_s = store.config.kafka_publish_gather_ms / 1000
        # Only writes of replicated namespaces active in this region leave
        # outbox rows: a write of a single-region namespace, or a batch the
        # applier wrote for a namespace active elsewhere (every applied batch
        # notifies), need not send the publisher to read the outbox (the rare
        # row such a batch leaves, a conflict's archive, is read within
        # IDLE_WAIT_S). None: not known (yet), so every write wakes it.
        self._replicated: frozenset[str] | None = None
        self._replicated_at = 0.0
        self._namespace_changes = 0
        #: ids of rows shipped (in Kafka) whose acknowledgement is still to go
        self._unacked: list[int] = []
        store.notifier.on("baton_history_v1", self._on_history)
        store.notifier.on("baton_namespaces_v1", self._on_namespace)

    def _on_history(self, key: str) -> None:
        """A write committed (``key`` is namespace/workflow id)."""
        names = self._replicated
        if names is None or key.split("/", 1)[0] in names:
            self._wake.set()

    def _on_namespace(self, _name: str) -> None:
        # a namespace gained or lost a region: read the list again, and look
        # at the outbox (the change's own row is there)
        self._namespace_changes += 1
        self._replicated = None
        self._wake.set()

    async def _refresh_replicated(self) -> None:
        loop = asyncio.get_running_loop()
        if self._replicated is not None and loop.time() - self._replicated_at < REPLICATED_TTL_S:
            return
        changes = self._namespace_changes
        async with self.store.pool.acquire() as conn:
            rows = await conn.fetch(Q["replicated_namespaces"])
        if changes == self._namespace_changes:  # else a change came in while reading
            region = self.store.region
            self._replicated = frozenset(r["name"] for r in rows if r["active_region"] == region)
            self._replicated_at = loop.time()

    async def run(self) -> None:
        await lead_forever(self.store, PUBLISHER_LOCK, "publisher", self._publish)

    async def _publish(self) -> None:
        producer: AIOKafkaProducer | None = None
        try:
            if self.bootstrap:
                producer = AIOKafkaProducer(
                    bootstrap_servers=self.bootstrap,
                    enable_idempotence=True,
                    acks="all",
                    # a round's messages are all queued before it awaits
                    # them, so they go in one request without lingering; the
                    # gathering happens before the round (_gather_s)
                    linger_ms=0,
                    max_request_size=16 * 1024 * 1024,
                )
                await producer.start()
            held_wait = 0.0
            while True:
                # Cleared before reading: a commit that notifies while a batch
                # ships wakes the next round instead of being lost.
                self._wake.clear()
                await self._refresh_replicated()
                shipped = await self._ship_batch(producer)
                if shipped >= BATCH:
                    continue
                if shipped:
                    held_wait = 0.0  # progress: a new hold starts its backoff afresh
                if self._wake.is_set():
                    await self._gather()
                    # a commit notified while this round shipped: go again.
                    # A small round's rows are acknowledged by the next read;
                    # a busy round's alone, as the time that takes lets the
                    # next round gather more of a run's writes into a message
                    if len(self._unacked) >= CARRY_MAX_ROWS:
                        await self._acknowledge()
                    continue
                if self._unacked:
                    waiting = await self._acknowledge()
                else:
                    waiting = await self._outbox_waiting()
                if waiting == "ready" and producer is not None:
                    continue  # what held rows back ended since this round read
                # rows held behind a transaction still running (whose end may
                # notify nothing): look again soon
                held_wait = (held_wait or HELD_WAIT_S) if waiting is not None else 0.0
                try:
                    await asyncio.wait_for(self._wake.wait(), held_wait or IDLE_WAIT_S)
                    await self._gather()
                except TimeoutError:
                    # the hold outlasted the whole wait: back off (a wake-up
                    # that cut the wait short says nothing of the hold)
                    held_wait = min(2 * held_wait, IDLE_WAIT_S)
        finally:
            if producer is not None:
                with contextlib.suppress(Exception):
                    await producer.stop()

    async def _gather(self) -> None:
        """Let the writes that follow a woken round's first commit join it."""
        if self._gather_s > 0:
            await asyncio.sleep(self._gather_s)

    async def _outbox_waiting(self) -> str | None:
        """'ready' (rows shippable now), 'held' (rows behind an older
        transaction still running) or None (the outbox is empty)."""
        async with self.store.pool.acquire() as conn:
            return await conn.fetchval(Q["outbox_waiting"])  # type: ignore[no-any-return]

    async def _acknowledge(self) -> str | None:
        """Acknowledge the rows shipped and not yet acknowledged; what they
        left in the outbox, as :meth:`_outbox_waiting` tells it."""
        done = self._unacked
        async with self.store.pool.acquire() as conn:
            waiting = await conn.fetchval(Q["set_ack_level"], self.store.region, max(done), done)
        self._unacked = []
        return waiting  # type: ignore[no-any-return]

    async def _ship_batch(self, producer: AIOKafkaProducer | None) -> int:
        """Ship a round: the rows it is done with, which wait in ``_unacked``
        for the next round's read (or :meth:`_acknowledge`) to acknowledge them.
        Its own read acknowledges the previous round's."""
        region = self.store.region
        acked = self._unacked
        async with self.store.pool.acquire() as conn:
            rows = await conn.fetch(
                Q["outbox_batch"], BATCH, acked, region, max(acked) if acked else None
            )
        self._unacked = []
        # a replicated namespace but no Kafka: keep its rows until there is
        done = [r["id"] for r in rows if producer is not None or not r["replicated"]]
        sends = []
        if producer is not None:
            shipped = [r for r in rows if r["replicated"]]
            limit = self.store.config.kafka_max_message_bytes
            for key, value in messages_for(shipped, region, limit):
                sends.append(await producer.send(topic_for(region), value=value, key=key))
        if sends:
            await asyncio.gather(*sends)  # every message acknowledged by the in-sync replicas
        self._unacked = done
        return len(done)
