"""The database check behind ``/healthz``, bounded in time.

A probe (a load balancer, Kubernetes, ``Client.connect``) needs an answer
within its own timeout: a database that accepts connections and does not
answer (a stopped host, a pool held by stuck requests) must make ``/healthz``
answer 503 with the reason, not hang until the probe gives up.
"""

from __future__ import annotations

import asyncio
import functools

import asyncpg

from store.errors import Unavailable

__all__ = ["HEALTH_CHECK_TIMEOUT_S", "check_database"]

#: How long ``/healthz`` waits for the region database to answer ``SELECT 1``.
HEALTH_CHECK_TIMEOUT_S = 2.0

#: Per pool, the check still waiting on a database that did not answer in
#: time: kept so it is not collected mid-flight, and so the next probes wait
#: on it rather than pile more checks onto the pool.
_waiting: dict[asyncpg.Pool, asyncio.Task[None]] = {}


async def _select_one(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        await conn.fetchval("SELECT 1")


def _forget(pool: asyncpg.Pool, task: asyncio.Task[None]) -> None:
    if _waiting.get(pool) is task:
        del _waiting[pool]
    if not task.cancelled():
        task.exception()  # retrieved: the probe has long been answered


async def check_database(
    pool: asyncpg.Pool, region: str, timeout_s: float = HEALTH_CHECK_TIMEOUT_S
) -> None:
    """Raise :class:`Unavailable` unless the region database answers
    ``SELECT 1`` within ``timeout_s``.

    The check runs in a task of its own that is left to finish when the time
    is up, rather than cancelled and awaited: giving a connection back after a
    cancelled query waits for the database to take the cancel, which a hung
    database never does.
    """
    task = _waiting.get(pool) or asyncio.create_task(_select_one(pool))
    done, _ = await asyncio.wait({task}, timeout=timeout_s)
    if not done:
        if pool not in _waiting:
            _waiting[pool] = task
            task.add_done_callback(functools.partial(_forget, pool))
        raise Unavailable(
            f"region {region}'s database did not answer a health check within {timeout_s:g} s "
            "(the database or its host is stuck, or every connection of the server's pool is "
            "held): check the database and the server's requests in flight"
        )
    task.result()  # its error (the database is down) answers as any request's does
