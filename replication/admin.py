"""Operator views of replication: the conflict archive and the dead-letter table."""

from __future__ import annotations

from typing import Any

import asyncpg

from replication.applier import Applier
from replication.apply import NeedConfirmation, ReplicationGap, lock_namespaces_for_apply
from replication.sql import QUERIES as Q
from store import db
from store.config import BatonConfig
from store.errors import InvalidArgument, StoreError, Unavailable
from store.server import open_store
from worker.wire import ErrorCode


class DeadLetterNotFound(StoreError):
    """No dead letter with that id in that region."""

    code = ErrorCode.DEAD_LETTER_NOT_FOUND
    http_status = 404
    retryable = False


class ReplicationApplyFailed(StoreError):
    """A dead letter failed to apply again; it stays in the table."""

    code = ErrorCode.REPLICATION_APPLY_FAILED
    http_status = 409
    retryable = False


def _regions(config: BatonConfig, region: str | None) -> list[str]:
    if region is not None:
        config.region(region)
        return [region]
    return list(config.regions)


async def _fetch_each(
    config: BatonConfig,
    region: str | None,
    query: str,
    args: tuple[Any, ...],
    unreachable: list[str] | None,
) -> list[tuple[str, asyncpg.Record]]:
    """``query``'s rows in every region (or ``region``), each with its region.

    A region whose database cannot be reached is appended to ``unreachable``
    and skipped, when that list is given (and ``region`` does not name it):
    during an outage, the regions that are up are the ones worth reading.
    Otherwise it raises ``Unavailable`` naming it.
    """
    out: list[tuple[str, asyncpg.Record]] = []
    for r in _regions(config, region):
        try:
            conn = await db.connect_region(config, r)
        except Unavailable:
            if unreachable is None or region is not None:
                raise
            unreachable.append(r)
            continue
        try:
            out += [(r, row) for row in await conn.fetch(query, *args)]
        finally:
            await conn.close()
    return out


async def list_conflicts(
    config: BatonConfig,
    namespace: str | None = None,
    region: str | None = None,
    limit: int = 1000,
    *,
    unreachable: list[str] | None = None,
) -> list[dict[str, Any]]:
    """Archived losing branches, in every region (or one); see :func:`_fetch_each`
    for ``unreachable``."""
    rows = await _fetch_each(config, region, Q["list_conflicts"], (namespace, limit), unreachable)
    if namespace is not None and not rows:
        from replication.failover import namespace_row

        # a misspelt name must not read as "no conflicts": NAMESPACE_NOT_FOUND
        await namespace_row(config, namespace)
    return [{"region": r, **dict(row), "run_id": str(row["run_id"])} for r, row in rows]


async def list_dead_letters(
    config: BatonConfig, region: str | None = None, *, unreachable: list[str] | None = None
) -> list[dict[str, Any]]:
    """Dead letters in every region (or one); see :func:`_fetch_each` for ``unreachable``."""
    rows = await _fetch_each(config, region, Q["list_dead_letters"], (), unreachable)
    return [{"region": r, **dict(row)} for r, row in rows]


async def retry_dead_letter(config: BatonConfig, region: str, dlq_id: int) -> dict[str, Any]:
    """Apply a dead letter again; on success it leaves the table."""
    config.region(region)
    async with open_store(config, region, pool_size=2) as store:
        row = await store.pool.fetchrow(Q["get_dead_letter_row"], dlq_id)
        if row is None:
            raise DeadLetterNotFound(
                f"no dead letter {dlq_id} in {region}: see `baton replication dlq list`"
            )
        source, msg = row["source_region"], dict(row["message"])
        applier = Applier(store)
        try:
            if msg.get("events_by_reference"):
                msg = await applier.with_events(
                    source, msg, msg["first_event_id"], msg["last_event_id"]
                )

            async def txn(conn: Any) -> dict[str, Any]:
                if await conn.fetchrow(Q["get_dead_letter"], dlq_id) is None:
                    raise DeadLetterNotFound(f"dead letter {dlq_id} in {region} is gone")
                await lock_namespaces_for_apply(conn, [msg])
                await applier.apply_message(conn, source, msg)
                await conn.execute(Q["delete_dead_letter"], dlq_id)
                return {"region": region, "id": dlq_id, "applied": True}

            for _ in range(3):
                try:
                    return await store.txn(txn)
                except ReplicationGap as gap:
                    msg = await applier.with_events(
                        source, msg, gap.next_local, msg["first_event_id"] - 1
                    )
                except NeedConfirmation as need:
                    held = await applier.held_by(need.active_region, msg, need.first, need.last)
                    msg = {**msg, "held_by_active": held}
                except StoreError:
                    raise
                except Exception as exc:
                    await store.pool.execute(Q["dead_letter_failed_again"], dlq_id, repr(exc))
                    raise ReplicationApplyFailed(
                        f"dead letter {dlq_id} in {region} failed again: {exc!r}; it stays in "
                        "the table (fix the cause and retry, or purge it)"
                    ) from exc
            raise ReplicationApplyFailed(f"dead letter {dlq_id} in {region}: events keep missing")
        finally:
            await applier.close()


async def purge_dead_letters(
    config: BatonConfig, region: str, dlq_id: int | None, *, everything: bool
) -> list[int]:
    if dlq_id is None and not everything:
        raise InvalidArgument("name a dead letter id, or pass --all to purge every one")
    conn = await db.connect_region(config, region)
    try:
        rows = await conn.fetch(Q["purge_dead_letters"], dlq_id)
    finally:
        await conn.close()
    if dlq_id is not None and not rows:
        raise DeadLetterNotFound(f"no dead letter {dlq_id} in {region}")
    return [r["id"] for r in rows]
