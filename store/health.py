"""Database reads of the probes (``/healthz``, ``/metrics``), bounded in time.

A probe (a load balancer, Kubernetes, Prometheus, ``Client.connect``) needs an
answer within its own timeout: a database that accepts connections and does
not answer (a stopped host, a pool held by stuck requests) must make the probe
answer 503 with the reason, not hang until the prober gives up.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import asyncpg

from store.errors import Unavailable

__all__ = ["HEALTH_CHECK_TIMEOUT_S", "METRICS_TIMEOUT_S", "bounded", "check_database"]

T = TypeVar("T")

#: How long ``/healthz`` waits for the region database to answer ``SELECT 1``.
HEALTH_CHECK_TIMEOUT_S = 2.0
#: How long ``/metrics`` waits for the region database's figures (under
#: Prometheus' default scrape timeout of 10 s).
METRICS_TIMEOUT_S = 8.0

#: Per pool and probe, the read still waiting on a database that did not
#: answer in time: kept so it is not collected mid-flight, and so the next
#: probes wait on it rather than pile more reads onto the pool.
_waiting: dict[tuple[asyncpg.Pool, str], asyncio.Task[Any]] = {}


def _forget(key: tuple[asyncpg.Pool, str], task: asyncio.Task[Any]) -> None:
    if _waiting.get(key) is task:
        del _waiting[key]
    if not task.cancelled():
        task.exception()  # retrieved: the probe has long been answered


async def bounded(
    pool: asyncpg.Pool,
    what: str,
    read: Callable[[], Awaitable[T]],
    *,
    region: str,
    timeout_s: float,
) -> T:
    """``read()``'s answer, or :class:`Unavailable` once ``timeout_s`` passed.

    The read runs in a task of its own that is left to finish when the time
    is up, rather than cancelled and awaited: giving a connection back after a
    cancelled query waits for the database to take the cancel, which a hung
    database never does.
    """
    key = (pool, what)
    task = _waiting.get(key) or asyncio.ensure_future(read())
    done, _ = await asyncio.wait({task}, timeout=timeout_s)
    if not done:
        if key not in _waiting:
            _waiting[key] = task
            task.add_done_callback(functools.partial(_forget, key))
        raise Unavailable(
            f"region {region}'s database did not answer {what} within {timeout_s:g} s "
            "(the database or its host is stuck, or every connection of the server's pool is "
            "held): check the database and the server's requests in flight"
        )
    result: T = task.result()  # its error (the database is down) answers as any request's does
    return result


async def _select_one(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        await conn.fetchval("SELECT 1")


async def check_database(
    pool: asyncpg.Pool, region: str, timeout_s: float = HEALTH_CHECK_TIMEOUT_S
) -> None:
    """Raise :class:`Unavailable` unless the region database answers
    ``SELECT 1`` within ``timeout_s``."""
    await bounded(
        pool, "a health check", lambda: _select_one(pool), region=region, timeout_s=timeout_s
    )
