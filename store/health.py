"""The database check behind ``/healthz``, bounded in time.

A probe (a load balancer, Kubernetes, ``Client.connect``) needs an answer
within its own timeout: a database that accepts connections and does not
answer (a stopped host, a pool held by stuck requests) must make ``/healthz``
answer 503 with the reason, not hang until the probe gives up.
"""

from __future__ import annotations

import asyncio

import asyncpg

from store.errors import Unavailable

__all__ = ["HEALTH_CHECK_TIMEOUT_S", "check_database"]

#: How long ``/healthz`` waits for the region database to answer ``SELECT 1``.
HEALTH_CHECK_TIMEOUT_S = 2.0

#: Checks still waiting on a database that did not answer in time: kept so
#: they are not collected mid-flight, and so the next probes do not pile more
#: of them onto the pool while one is still waiting.
_waiting: set[asyncio.Task[None]] = set()


async def _select_one(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        await conn.fetchval("SELECT 1")


def _forget(task: asyncio.Task[None]) -> None:
    _waiting.discard(task)
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
    stuck = next(iter(_waiting), None)
    task = stuck or asyncio.create_task(_select_one(pool))
    done, _ = await asyncio.wait({task}, timeout=timeout_s)
    if not done:
        if task not in _waiting:
            _waiting.add(task)
            task.add_done_callback(_forget)
        raise Unavailable(
            f"region {region}'s database did not answer a health check within {timeout_s:g} s "
            "(the database or its host is stuck, or every connection of the server's pool is "
            "held): check the database and the server's requests in flight"
        )
    task.result()  # its error (the database is down) answers as any request's does
