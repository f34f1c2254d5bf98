"""Retention: what a region deletes once its namespace no longer keeps it.

One server per region holds the retention lock and sweeps every
``retention_sweep_interval_s``: closed runs past their namespace's
``retention_days`` (their history, updates, buffered inputs, activity progress
and rows), request ids kept for deduplication, conflict archives, dead
letters, and the worker pollers gone for a day. Each region sweeps its own
copy, so standbys stay bounded too. The work goes in batches, each its own
transaction, so a large backlog never holds locks for long; a pass stops when
a batch comes back short.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from store import db
from store.context import Store
from store.leader import lead_forever
from store.sql import QUERIES as Q

log = logging.getLogger("baton.retention")

#: Advisory lock key of the region's retention sweeper ("baton-re").
RETENTION_LOCK = 0x6261746F6E2D7265 & 0x7FFFFFFFFFFFFFFF
BATCH = 500
#: Days a dead letter that names no known namespace is kept.
ORPHAN_DEAD_LETTER_DAYS = 7
#: Days a worker version's poller that stopped (or went silent) is shown; the
#: last one of each version and task queue stays.
GONE_POLLER_DAYS = 1


@dataclass
class Swept:
    """What one pass deleted."""

    runs: int = 0
    request_ids: int = 0
    conflicts: int = 0
    dead_letters: int = 0
    pollers: int = 0


def _count(status: str) -> int:
    """Rows a DELETE reported (``DELETE 12``)."""
    return int(status.rsplit(" ", 1)[-1])


async def sweep(store: Store, *, batch: int = BATCH) -> Swept:
    """Delete everything past retention in this region; returns the counts."""
    swept = Swept()
    while True:
        async with db.transaction(store.pool) as conn:
            rows = await conn.fetch(Q["expired_runs"], batch)
            if rows:
                await conn.execute(
                    Q["delete_runs"],
                    [r["namespace"] for r in rows],
                    [r["workflow_id"] for r in rows],
                    [r["run_id"] for r in rows],
                )
        swept.runs += len(rows)
        if len(rows) < batch:
            break
    for name, attr in (
        ("expire_request_ids", "request_ids"),
        ("expire_conflicts", "conflicts"),
    ):
        while True:
            async with db.transaction(store.pool) as conn:
                n = _count(await conn.execute(Q[name], batch))
            setattr(swept, attr, getattr(swept, attr) + n)
            if n < batch:
                break
    while True:
        async with db.transaction(store.pool) as conn:
            n = _count(await conn.execute(Q["expire_dead_letters"], batch, ORPHAN_DEAD_LETTER_DAYS))
        swept.dead_letters += n
        if n < batch:
            break
    async with db.transaction(store.pool) as conn:
        await conn.execute(Q["expire_queries"])
        await conn.execute(Q["expire_sticky_queues"])
        swept.pollers = _count(await conn.execute(Q["expire_version_pollers"], GONE_POLLER_DAYS))
    return swept


class RetentionSweeper:
    """Sweeps while this process holds the region's retention lock."""

    def __init__(self, store: Store):
        self.store = store

    async def run(self) -> None:
        await lead_forever(
            self.store,
            RETENTION_LOCK,
            "retention sweeper",
            self._sweep_forever,
            retry_s=5.0,
            lock_retry_s=5.0,
        )

    async def _sweep_forever(self) -> None:
        while True:
            swept = await sweep(self.store)
            if swept.runs or swept.request_ids or swept.conflicts or swept.dead_letters:
                log.info(
                    "retention: deleted %d run(s), %d request id(s), %d conflict(s), "
                    "%d dead letter(s)",
                    swept.runs,
                    swept.request_ids,
                    swept.conflicts,
                    swept.dead_letters,
                )
            await asyncio.sleep(self.store.config.retention_sweep_interval_s)
