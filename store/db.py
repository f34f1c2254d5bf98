"""Connections to the region database."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

import asyncpg
import orjson

from store.config import BatonConfig
from store.errors import (
    Conflict,
    InvalidArgument,
    StaleRun,
    Unavailable,
    database_unavailable,
    wrap_exceptions,
)
from store.sql import QUERIES

T = TypeVar("T")

#: Retries of a transaction that lost a race (serialization or deadlock).
TXN_RETRIES = 5

#: Settings of every session Baton opens. JIT off: Baton's statements are
#: short, and JIT compiles asyncpg's own type introspection (run once per new
#: connection for each type it has not seen), which then takes 0.3 to 1.5 s in
#: place of a few ms; each new pool connection stalled the request that met it.
SESSION_SETTINGS = {"jit": "off"}


async def _init_connection(conn: asyncpg.Connection) -> None:
    await conn.set_type_codec(
        "jsonb",
        encoder=lambda v: orjson.dumps(v).decode(),
        decoder=orjson.loads,
        schema="pg_catalog",
    )
    await conn.set_type_codec("json", encoder=json.dumps, decoder=orjson.loads, schema="pg_catalog")


#: How long :func:`connect` waits for a database to take a connection
#: (asyncpg's default is 60 s: a database host that drops packets held an
#: operator command a minute before it said anything).
CONNECT_TIMEOUT_S = 10.0


async def connect(
    dsn: str,
    *,
    timeout: float = CONNECT_TIMEOUT_S,
    region: str | None = None,
    role: str | None = None,
) -> asyncpg.Connection:
    """One connection with Baton's type codecs (for LISTEN and locks).

    A database that does not take it within ``timeout`` seconds is
    ``Unavailable``, as one that refuses it is; the error names the database
    (``region`` and its ``role`` in the caller's work, e.g. "the failover's
    target", when given) and what to check.
    """
    try:
        with wrap_exceptions():
            try:
                conn = await asyncpg.connect(dsn, timeout=timeout, server_settings=SESSION_SETTINGS)
            except WRONG_DSN as exc:
                raise _wrong_dsn(dsn, region, exc) from exc
    except Unavailable as exc:
        cause = exc.__cause__ or exc
        if isinstance(cause, TimeoutError):
            why = f"it did not answer within {timeout:g} s"
        else:
            why = f"{type(cause).__name__}: {cause}" if str(cause) else type(cause).__name__
        which = f"region {region}" if region else "a region"
        raise Unavailable(
            f"cannot reach the database of {which}"
            + (f", {role}," if role else "")
            + f" at {_address(dsn)}: {why}. Check that it is up and that "
            + (f"the dsn of [regions.{region}]" if region else "the region's dsn")
            + " in the config points at it (`baton dev status` for the local stack), then run "
            "this again",
            **({"region": region} if region else {}),
        ) from cause
    await _init_connection(conn)
    return conn


#: What a database answers to a dsn that names a database, role or password it
#: does not have: no retry mends it, the config must change.
WRONG_DSN = (asyncpg.InvalidCatalogNameError, asyncpg.InvalidAuthorizationSpecificationError)


def _wrong_dsn(dsn: str, region: str | None, exc: asyncpg.PostgresError) -> InvalidArgument:
    key = f"the dsn of [regions.{region}]" if region else "the region's dsn"
    what = (
        "the database name"
        if isinstance(exc, asyncpg.InvalidCatalogNameError)
        else "the user and password"
    )
    return InvalidArgument(
        f"the database of {f'region {region}' if region else 'a region'} at {_address(dsn)}"
        f" refused the connection ({exc}): check {what} in {key} in the config (or create"
        " that database and run `baton migrate up`), then run this again; nothing was started",
        **({"region": region} if region else {}),
    )


def _address(dsn: str) -> str:
    """Where ``dsn`` points (host, port, database), without its credentials."""
    try:
        parts = urlsplit(dsn)
        query = parse_qs(parts.query)
        host = parts.hostname or query.get("host", ["localhost"])[0]
        port = parts.port or query.get("port", ["5432"])[0]
    except ValueError:
        return "its dsn"
    return f"{host}:{port}/{parts.path.lstrip('/')}"


async def connect_region(
    config: BatonConfig, region: str, *, role: str | None = None
) -> asyncpg.Connection:
    """A connection to ``region``'s database within ``config.connect_timeout_s``
    (see :func:`connect`)."""
    return await connect(
        config.region(region).dsn, timeout=config.connect_timeout_s, region=region, role=role
    )


async def _keep_session(_conn: asyncpg.Connection) -> None:
    """Pool reset that does nothing.

    Baton never leaves session state on a connection (its advisory locks are
    transaction-scoped, LISTEN lives on a dedicated connection), so asyncpg's
    default reset (RESET ALL, unlock all, UNLISTEN: a round trip on every
    release) is pure cost on the hot path.
    """


class _OutageInOneLine(logging.Filter):
    """asyncpg's pool logs each failed attempt to reconnect its floor with a
    traceback (backing off up to a minute, for as long as an outage lasts):
    a database that cannot take a session is one line with the reason, as the
    requests that meet it are; anything else keeps its traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if exc is not None and database_unavailable(exc):
            why = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            record.msg = f"{record.getMessage()} (region database unavailable: {why})"
            record.args = None
            record.exc_info = None
            record.exc_text = None
        return True


logging.getLogger("asyncpg.pool").addFilter(_OutageInOneLine())


#: How long a request waits for a connection of the server's pool
#: (``[baton] db_acquire_timeout_s``) before it answers 503 UNAVAILABLE.
ACQUIRE_TIMEOUT_S = 5.0
#: How long one statement may take (``[baton] db_statement_timeout_s``)
#: before it is cancelled and its request answers 503 UNAVAILABLE.
STATEMENT_TIMEOUT_S = 10.0


class BoundedPool(asyncpg.Pool):  # type: ignore[misc]
    """A pool whose ``acquire()`` gives up after ``acquire_timeout_s`` unless
    told otherwise.

    A database that is stuck rather than down (a stopped host, locks held by
    a session that never ends) took every request's connection and held it,
    and the next requests waited on the pool with no end: each request waited
    until its client gave up, with no answer, where ``/healthz`` answered 503.
    With this bound, and the statement timeout of its connections, a request
    gets a typed 503 UNAVAILABLE the client retries. The timeout also bounds
    giving the connection back (asyncpg applies an acquire's timeout to its
    release), so a connection whose statement the database never cancels is
    closed rather than waited on.
    """

    acquire_timeout_s: float | None = ACQUIRE_TIMEOUT_S

    def acquire(self, *, timeout: float | None = None) -> Any:
        return super().acquire(timeout=self.acquire_timeout_s if timeout is None else timeout)


async def create_pool(
    dsn: str,
    *,
    min_size: int = 2,
    max_size: int = 20,
    acquire_timeout_s: float | None = ACQUIRE_TIMEOUT_S,
    statement_timeout_s: float | None = STATEMENT_TIMEOUT_S,
) -> asyncpg.Pool:
    """A pool of connections with Baton's type codecs.

    ``acquire_timeout_s`` bounds the wait for a connection and
    ``statement_timeout_s`` each statement (None: no bound); either running
    out raises ``TimeoutError``, which answers as :class:`Unavailable`.
    """
    pool = BoundedPool(
        dsn,
        connection_class=asyncpg.Connection,
        record_class=asyncpg.Record,
        min_size=min_size,
        max_size=max_size,
        max_queries=50000,
        max_inactive_connection_lifetime=300.0,
        loop=None,
        connect=None,
        setup=None,
        init=_init_connection,
        reset=_keep_session,
        server_settings=SESSION_SETTINGS,
        statement_cache_size=512,
        command_timeout=statement_timeout_s,
    )
    pool.acquire_timeout_s = acquire_timeout_s
    with wrap_exceptions():
        await pool
    return pool


@asynccontextmanager
async def transaction(pool: asyncpg.Pool) -> AsyncIterator[asyncpg.Connection]:
    """A connection inside one read-committed transaction."""
    with wrap_exceptions():
        async with pool.acquire() as conn, conn.transaction():
            yield conn


async def run_txn(pool: asyncpg.Pool, fn: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
    """Run ``fn`` in a transaction, retrying when it loses a race with another writer."""
    return await _retrying(lambda: transaction(pool), fn)


async def run_unlocked(
    pool: asyncpg.Pool,
    fn: Callable[[asyncpg.Connection], Awaitable[T]],
    *,
    conflicts: int = TXN_RETRIES,
) -> T:
    """Run ``fn`` on a connection in no transaction, retrying when it loses a race.

    For reads followed by one checked write (``RunTxn.read_unlocked``): the
    write is refused if what was read changed, and ``fn`` runs again, up to
    ``conflicts`` times in all before the Conflict is raised.
    """
    return await _retrying(lambda: _connection(pool), fn, conflicts=conflicts)


@asynccontextmanager
async def _connection(pool: asyncpg.Pool) -> AsyncIterator[asyncpg.Connection]:
    with wrap_exceptions():
        async with pool.acquire() as conn:
            yield conn


async def _retrying(
    open_conn: Callable[[], AbstractAsyncContextManager[asyncpg.Connection]],
    fn: Callable[[asyncpg.Connection], Awaitable[T]],
    *,
    conflicts: int = TXN_RETRIES,
) -> T:
    delay = 0.005
    lost = 0
    for attempt in range(TXN_RETRIES):
        try:
            async with open_conn() as conn:
                return await fn(conn)
        except StaleRun:
            # not a race lost: the run is read this time (store/run_cache.py)
            if attempt == TXN_RETRIES - 1:
                raise
            continue
        except Conflict:
            lost += 1
            if lost >= conflicts or attempt == TXN_RETRIES - 1:
                raise
        except Unavailable as exc:
            # a bound that ran out (the pool's or a statement's) has waited
            # its time already: another try would make the request wait it
            # again, where its client should hear now and retry
            if attempt == TXN_RETRIES - 1 or isinstance(exc.__cause__, TimeoutError):
                raise
        await asyncio.sleep(delay)
        delay *= 4
    raise AssertionError("unreachable")


async def wait_for_advisory_lock(
    conn: asyncpg.Connection, key: int, *, retry_s: float = 0.5
) -> None:
    """Wait until ``conn`` holds the session advisory lock ``key``.

    Background loops that must run once per region (timers, the publisher)
    hold such a lock on a dedicated connection; the other servers of the
    region wait here and take over within ``retry_s`` of the holder's death.
    """
    while True:
        if await conn.fetchval(QUERIES["try_advisory_lock"], key):
            return
        await asyncio.sleep(retry_s)
