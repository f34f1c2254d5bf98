"""A Baton server process for one region: API, dispatch and background loops."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import gc
import logging
import socket
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from typing import Any

import uvicorn

from store import clock, db
from store.api import create_app
from store.batch.system_worker import run_system_worker
from store.config import BatonConfig
from store.context import Store
from store.errors import InvalidArgument, Unavailable
from store.migrations import require_current
from store.mutable_state import RunTxn
from store.notify import Notifier
from store.retention import RetentionSweeper
from store.run_cache import RunCache
from store.timers import TimerLoop
from store.update_tasks import SuggestAt

log = logging.getLogger("baton.server")

#: Longest pause between a starting server's attempts to reach its database.
STARTUP_RETRY_MAX_S = 2.0
#: How often a server waiting for its database says so again.
STARTUP_LOG_EVERY_S = 30.0


@contextlib.asynccontextmanager
async def open_store(
    config: BatonConfig, region: str, *, pool_size: int = 20, wait: bool = False
) -> AsyncIterator[Store]:
    """Connect to the region database, check its schema, listen for notifications.

    A server (``wait``) waits for a database that is down; an operator's
    command gets ``Unavailable`` at once, naming the region."""
    dsn = config.region(region).dsn
    RunTxn.buffered_inputs_max = config.buffered_inputs_max
    RunTxn.suggest_continue_as_new_events = config.suggest_continue_as_new_events
    SuggestAt.history_bytes = config.history_bytes_warn
    while True:
        await _wait_for_database(config, region, wait=wait)
        # the database may go down again before the pool and the listener
        # have their connections: then a server waits for it once more
        try:
            pool = await db.create_pool(
                dsn,
                max_size=pool_size,
                acquire_timeout_s=config.db_acquire_timeout_s,
                statement_timeout_s=config.db_statement_timeout_s,
            )
        except Unavailable:
            if not wait:
                raise
            continue
        notifier = Notifier(dsn)
        try:
            await notifier.start()
        except Unavailable:
            pool.terminate()
            if not wait:
                raise
            continue
        break
    try:
        yield Store(
            pool=pool,
            region=region,
            config=config,
            notifier=notifier,
            run_cache=RunCache(config.run_cache_runs),
        )
    finally:
        await notifier.close()
        await pool.close()


async def _wait_for_database(config: BatonConfig, region: str, *, wait: bool) -> None:
    """Wait until the region's database takes a connection, then check its schema.

    A server started while its database is down (a restart during the
    database's own, a host booting both) waits for it, as a running server
    rides out an outage, rather than exit and leave the region without a
    server once the database is back. A schema older than this code needs is
    refused at once.
    """
    delay, waited, told = 0.2, 0.0, -1.0
    while True:
        try:
            conn = await db.connect_region(config, region)
        except Unavailable as exc:
            if not wait:
                raise
            if waited - told >= STARTUP_LOG_EVERY_S or told < 0:
                log.warning(
                    "waiting for the database of %s (%.0f s so far): %s", region, waited, exc
                )
                told = waited
            await asyncio.sleep(delay)
            waited += delay
            delay = min(delay * 2, STARTUP_RETRY_MAX_S)
            continue
        try:
            await require_current(conn)
        finally:
            await conn.close()
        if told >= 0:
            log.warning("the database of %s answers after %.0f s", region, waited)
        return


#: A background loop of a server: called with the open store, runs until cancelled.
LoopFactory = Callable[[Store], Coroutine[Any, Any, None]]


@contextlib.asynccontextmanager
async def running_store(
    config: BatonConfig,
    region: str,
    loops: Sequence[LoopFactory] = (),
    before: Sequence[LoopFactory] = (),
) -> AsyncIterator[Store]:
    """An open store with its background loops running: timers, and ``loops``.

    The layers above the store (replication) hand in their loops here, so the
    store never imports them, and the checks ``before`` to await first: what
    they find holds before a timer fires or a request is served.
    """
    if config.test_clock:
        clock.enable()
    async with open_store(config, region, wait=True) as store:
        for check in before:
            await check(store)
        tasks = [
            asyncio.create_task(TimerLoop(store).run(), name="baton-timers"),
            asyncio.create_task(RetentionSweeper(store).run(), name="baton-retention"),
            asyncio.create_task(run_system_worker(store), name="baton-system-worker"),
            asyncio.create_task(store.loop_lag.run(), name="baton-loop-lag"),
            *(asyncio.create_task(factory(store)) for factory in loops),
        ]
        try:
            yield store
        finally:
            for t in tasks:
                t.cancel()
            for t in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await t


def listen_socket(host: str, port: int) -> socket.socket:
    """A listening socket with SO_REUSEPORT.

    Several server processes of one region can then share its port, and the
    kernel spreads connections over them: a region scales past one core by
    running more `baton server` processes, as ARCHITECTURE describes.
    """
    sock = bound_socket(host, port)
    sock.listen(LISTEN_BACKLOG)
    return sock


#: Connections the kernel holds for a server process before it accepts them.
LISTEN_BACKLOG = 2048


def bound_socket(host: str, port: int) -> socket.socket:
    """The socket of :func:`listen_socket`, bound but not yet listening: the
    address is taken (a clash shows at once) while the kernel sends it no
    connections, which go to the region's other servers until it listens."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def tune_gc() -> None:
    """Collect cyclic garbage less often.

    A request allocates many short-lived objects and almost no cycles; the
    default thresholds ran the collector often enough to show in profiles.
    Objects alive at startup (modules, the app) are frozen out of collections.
    """
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)


class _Server(uvicorn.Server):
    """Ends long-polls at once on shutdown, so a restart is not held up by them."""

    def __init__(self, store: Store, config: uvicorn.Config):
        super().__init__(config)
        self.store = store

    def handle_exit(self, sig: int, frame: object) -> None:
        self.store.notifier.drain()
        super().handle_exit(sig, frame)  # type: ignore[arg-type]


async def serve(
    config: BatonConfig,
    region: str,
    *,
    host: str | None = None,
    port: int | None = None,
    log_level: str = "warning",
    loops: Sequence[LoopFactory] = (),
    before: Sequence[LoopFactory] = (),
    stop: asyncio.Event | None = None,
) -> None:
    """Run one server of ``region`` until cancelled or signalled, or ``stop`` is set.

    Setting ``stop`` shuts the server down gracefully: long-polls answer at
    once with no task (a worker polls again, another server of the region
    answers it), requests in flight finish, then the background loops stop
    and give up their locks. A cancel drops requests in flight instead.
    """
    rc = config.region(region)
    bind_host, bind_port = host or rc.host, port if port is not None else rc.port
    # take the address before anything starts: a port another process holds
    # stops the server here, before its loops have run (timers fired, outbox
    # published); it listens once it can serve
    sock = _bind_or_explain(region, bind_host, bind_port, explicit=port is not None)
    tune_gc()
    serving: list[_Server] = []
    me = asyncio.current_task()
    assert me is not None
    watcher = asyncio.create_task(_stop_when_set(serving, stop, me)) if stop else None
    try:
        async with running_store(config, region, loops, before) as store:
            app = create_app(store)
            server = _Server(
                store,
                uvicorn.Config(
                    app,
                    host=host or rc.host,
                    port=port or rc.port,
                    log_level=log_level,
                    access_log=False,
                    # Nothing reads a client's address (no access log), so the
                    # X-Forwarded-* rewriting layer is pure cost on every request.
                    proxy_headers=False,
                    lifespan="off",
                    timeout_graceful_shutdown=1,
                    timeout_keep_alive=75,
                ),
            )
            log.info("baton server for %s on %s:%s", region, bind_host, bind_port)
            serving.append(server)
            sock.listen(LISTEN_BACKLOG)
            await server.serve(sockets=[sock])
    finally:
        sock.close()
        if watcher is not None:
            watcher.cancel()


def _bind_or_explain(region: str, host: str, port: int, *, explicit: bool) -> socket.socket:
    """:func:`bound_socket`, or a typed error saying which address and what to change."""
    where = "--port" if explicit else f"the url of [regions.{region}] in the config"
    if not 0 < port < 65536:
        raise InvalidArgument(
            f"cannot listen on port {port}: give a port from 1 to 65535 ({where})"
        )
    try:
        return bound_socket(host, port)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            why = "another process listens there (not a baton server, which would share it)"
        elif exc.errno == errno.EADDRNOTAVAIL:
            why = f"{host} is not an address of this machine (give --host, or fix the url)"
        else:
            why = exc.strerror or type(exc).__name__
        raise InvalidArgument(
            f"the server of {region} cannot listen on {host}:{port}: {why}; change {where} or "
            "free the address, then start it again; nothing was started"
        ) from exc


async def _stop_when_set(
    serving: list[_Server], stop: asyncio.Event, serve_task: asyncio.Task[Any]
) -> None:
    """Stop the server gracefully once ``stop`` is set; one still starting (its
    database not yet answering) has nothing in flight and is cancelled."""
    await stop.wait()
    if serving:
        serving[0].store.notifier.drain()
        serving[0].should_exit = True
    else:
        serve_task.cancel()
