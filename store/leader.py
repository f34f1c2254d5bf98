"""Background work that runs in one server process per region at a time.

Timers, the retention sweeper, the replication publisher and the applier each
hold a session advisory lock of their own on a dedicated connection while they
work; the other server processes of the region wait for it and take over
within a second of the holder's death (its connection, and so its lock, goes
with it). If the lock's connection is lost the work is stopped at once: a
process that may no longer hold the lock must not go on as if it did.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from store import db
from store.context import Store

log = logging.getLogger("baton.leader")

#: How often a leader checks that its lock's connection is still there.
WATCH_S = 1.0


async def lead_forever(
    store: Store,
    key: int,
    what: str,
    work: Callable[[], Awaitable[None]],
    *,
    retry_s: float = 1.0,
    lock_retry_s: float = 0.5,
) -> None:
    """Run ``work`` whenever this process holds the region's lock ``key``, until cancelled.

    ``work`` runs until it returns or raises; either way (or when the database
    goes away) the lock is given up and taken again after ``retry_s``.
    """
    while True:
        try:
            await _lead(store, key, what, work, lock_retry_s)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the database or the broker is away: stand by, retry
            log.warning("%s of %s stopped (%r); retrying", what, store.region, exc)
        await asyncio.sleep(retry_s)


async def _lead(
    store: Store, key: int, what: str, work: Callable[[], Awaitable[None]], lock_retry_s: float
) -> None:
    conn = await db.connect(store.config.regions[store.region].dsn)
    try:
        await db.wait_for_advisory_lock(conn, key, retry_s=lock_retry_s)
        log.info("this server runs the %s of region %s", what, store.region)
        task = asyncio.ensure_future(work())
        try:
            while not task.done():
                await asyncio.wait({task}, timeout=WATCH_S)
                if conn.is_closed():
                    raise ConnectionError(f"{what} lock connection lost")
            task.result()
        finally:
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
    finally:
        with contextlib.suppress(Exception):
            await conn.close()
