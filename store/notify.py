"""LISTEN/NOTIFY fan-out: one listening connection per server process.

Long-polls wait on a key (a task queue, a workflow, an update, a query); the
listener wakes every waiter of the key named by a notification. Notifications
are sent by triggers or inside transactions, so they arrive only after the
change committed. If the listening connection drops, every waiter is woken so
it re-reads the database instead of sleeping through a lost notification.

A run's history writes notify after they committed instead (see
:data:`AFTER_COMMIT`): a NOTIFY inside a transaction holds PostgreSQL's
cluster-wide notify lock from pre-commit until the commit's WAL flush ends, so
notifying commits ran one at a time. The process that committed wakes its own
waiters at once and sends the notifications for the other processes from one
connection, every key gathered while the last send was out in one statement.
A process killed between a commit and that send leaves other processes'
waiters to their own timeouts (the publisher's idle wait, a long-poll's end).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Iterator
from contextvars import ContextVar

import asyncpg

from store import db

log = logging.getLogger("baton.notify")

#: Channels whose notifications each announce one unit of work: waking every
#: poller would send all of them racing for one task row.
WAKE_ONE = frozenset({"baton_tasks_v1"})


#: Notifications of the writes of the operation in progress, sent once it
#: committed (:meth:`Notifier.after_commit`); None: a write notifies inside
#: its own transaction, as every write of an earlier release did.
class PendingNotifications(list[tuple[str, str]]):
    """The notifications an operation's writes left to send once it ended;
    closed then (a task the operation started that writes later, holding a
    copy of the context, notifies inside its own transactions instead)."""

    closed = False


AFTER_COMMIT: ContextVar[PendingNotifications | None] = ContextVar(
    "baton_after_commit", default=None
)

#: Keys a sender keeps while its database cannot take them; past this the
#: oldest go (their waiters end at their own timeouts).
SEND_BACKLOG_MAX = 50_000

#: How long a stopping process tries to send its last notifications.
CLOSE_SEND_TIMEOUT_S = 5.0

_SEND = "SELECT pg_notify(c, k) FROM unnest($1::text[], $2::text[]) AS t(c, k)"

CHANNELS = (
    "baton_tasks_v1",
    "baton_history_v1",
    "baton_closed_v1",
    "baton_updates_v1",
    "baton_queries_v1",
    "baton_timers_v1",
    "baton_namespaces_v1",
)


class Notifier:
    """Wakes waiters of ``(channel, key)`` when a notification for it arrives."""

    def __init__(self, dsn: str):
        self._dsn = dsn
        self._conn: asyncpg.Connection | None = None
        # dicts keep insertion order: the first waiter is the longest waiting.
        self._waiters: dict[tuple[str, str], dict[asyncio.Event, None]] = defaultdict(dict)
        self._callbacks: dict[str, list[Callable[[str], None]]] = defaultdict(list)
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self.draining = False
        self.namespace_epoch = 0
        self.connected = asyncio.Event()
        #: Task queue keys (store/tasks.py) a take of this process found empty,
        #: with the monotonic time it did. A notification of one that finds
        #: every poller of it here awake drops it: a task may wait that no poll
        #: of this process reads for. A lost listener drops them all.
        self.found_empty: dict[str, float] = {}
        #: When a task of each queue key was last announced here (a
        #: notification, or a poll handing its wake-up on): a take that began
        #: before it may not mark the queue empty (store/tasks.py).
        self.task_noticed: dict[str, float] = {}
        #: notifications committed here, still to send to other processes
        self._outgoing: dict[tuple[str, str], None] = {}
        self._send = asyncio.Event()
        self._sender: asyncpg.Connection | None = None
        self._sender_pid = 0
        self._send_task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self._connect()
        self._task = asyncio.create_task(self._watch(), name="baton-notifier")
        self._send_task = asyncio.create_task(self._send_loop(), name="baton-notify-sender")

    @property
    def sender_pid(self) -> int:
        """The backend of the connection this process sends its writes'
        notifications from (0 before the first send)."""
        return self._sender_pid

    @contextlib.contextmanager
    def after_commit(self) -> Iterator[None]:
        """Within: a run's writes leave their notifications to be sent once
        the block ended, with an exception too: a write without a transaction
        commits as it returns, before what follows it in the block may fail
        (a write that rolled back only wakes waiters that read again)."""
        pending = PendingNotifications()
        token = AFTER_COMMIT.set(pending)
        try:
            yield
        finally:
            AFTER_COMMIT.reset(token)
            pending.closed = True
            if pending:
                self.publish(pending)

    def publish(self, items: list[tuple[str, str]]) -> None:
        """Notifications of changes this process committed: its own waiters
        wake now, the other processes' once the sender sent them."""
        for channel, key in items:
            self._on_notify(None, 0, channel, key)
            self._outgoing[(channel, key)] = None
        while len(self._outgoing) > SEND_BACKLOG_MAX:
            del self._outgoing[next(iter(self._outgoing))]
        self._send.set()

    async def _send_loop(self) -> None:
        while True:
            await self._send.wait()
            self._send.clear()
            if not self._outgoing:
                continue
            items = list(self._outgoing)
            self._outgoing.clear()
            try:
                await self._send_items(items)
            except asyncio.CancelledError:
                # (a stop: :meth:`close` sends them, again if this send got through)
                self._outgoing = dict.fromkeys(items) | self._outgoing
                raise
            except Exception as exc:  # the database is away: send them when it is back
                log.warning("cannot send notifications (%d kept): %s", len(items), exc)
                self._outgoing = dict.fromkeys(items) | self._outgoing
                self._drop_sender()
                await asyncio.sleep(0.5)
                self._send.set()

    async def _send_items(self, items: list[tuple[str, str]]) -> None:
        if self._sender is None or self._sender.is_closed():
            self._sender = await db.connect(self._dsn)
            self._sender_pid = self._sender.get_server_pid()
        await self._sender.execute(_SEND, [c for c, _ in items], [k for _, k in items])

    def _drop_sender(self) -> None:
        if self._sender is not None:
            self._sender.terminate()
            self._sender = None
        # (its backend's pid may go to another process's connection: hear all)
        self._sender_pid = 0

    async def _connect(self) -> None:
        conn = await db.connect(self._dsn)
        for ch in CHANNELS:
            await conn.add_listener(ch, self._on_notify)
        conn.add_termination_listener(lambda _c: self._on_lost())
        self._conn = conn
        self.connected.set()

    def _on_lost(self) -> None:
        # a namespace change, or a task, may go unheard until the listener is back
        self.namespace_epoch += 1
        self.found_empty.clear()
        self.connected.clear()
        self.wake_all()

    async def _watch(self) -> None:
        # Reconnect after the listening connection is lost (database restart).
        while not self._closing:
            await asyncio.sleep(1.0)
            if self._conn is None or self._conn.is_closed():
                self._on_lost()
                try:
                    await self._connect()
                    self.wake_all()
                    log.info("notification listener reconnected")
                except Exception as exc:  # keep trying: the database may be restarting
                    log.warning("notification listener cannot reconnect: %s", exc)

    async def close(self) -> None:
        self._closing = True
        for task in (self._task, self._send_task):
            if task:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if self._outgoing:
            # What this process committed last, also before its first send
            # (no sender connection yet) or while a send was out: other
            # processes' waiters of it would sleep to their timeouts.
            items = list(self._outgoing)
            self._outgoing.clear()
            try:
                await asyncio.wait_for(self._send_items(items), CLOSE_SEND_TIMEOUT_S)
            except Exception as exc:  # (the database is away: their timeouts end them)
                log.warning("cannot send the last %d notifications: %s", len(items), exc)
                self._drop_sender()
        if self._sender is not None and not self._sender.is_closed():
            await self._sender.close()
        if self._conn and not self._conn.is_closed():
            await self._conn.close()
        self.wake_all()

    def _on_notify(self, _conn: object, pid: int, channel: str, payload: str) -> None:
        if pid and pid == self._sender_pid:
            return  # this process's own, whose waiters :meth:`publish` woke
        if channel == "baton_namespaces_v1":
            # A namespace moved: every long-poll re-checks where it may run.
            self.namespace_epoch += 1
            self.wake_all()
        if channel in WAKE_ONE:
            self.wake_one(channel, payload)
        else:
            for ev in self._waiters.get((channel, payload), ()):
                ev.set()
        for cb in self._callbacks.get(channel, ()):
            cb(payload)

    def wake_one(self, channel: str, key: str, *, skip: asyncio.Event | None = None) -> None:
        """Wake the longest-waiting idle waiter of ``key`` (one task, one poller).

        ``skip`` is the caller's own event, when a waiter hands its wake-up on.
        With no waiter idle, the queue is no longer known empty here.
        """
        if len(self.task_noticed) >= 10_000:
            self.task_noticed.clear()  # sticky queues come and go
        self.task_noticed[key] = time.monotonic()
        for ev in self._waiters.get((channel, key), ()):
            if ev is not skip and not ev.is_set():
                ev.set()
                return
        self.found_empty.pop(key, None)

    def drain(self) -> None:
        """End every long-poll now: the server is shutting down."""
        self.draining = True
        self.wake_all()

    def wake_all(self) -> None:
        for evs in self._waiters.values():
            for ev in evs:
                ev.set()

    def has_waiters(self, channel: str, key: str) -> bool:
        return (channel, key) in self._waiters

    def wake(self, channel: str, key: str) -> None:
        """Wake the waiters of ``key`` as its notification would (a change
        this process committed; the notification itself follows)."""
        for ev in self._waiters.get((channel, key), ()):
            ev.set()

    def on(self, channel: str, callback: Callable[[str], None]) -> None:
        """Call ``callback(payload)`` for every notification on ``channel``."""
        self._callbacks[channel].append(callback)

    @contextlib.asynccontextmanager
    async def subscribe(
        self, channel: str, key: str, ev: asyncio.Event | None = None
    ) -> AsyncIterator[asyncio.Event]:
        """An event set whenever ``key`` is notified on ``channel``.

        Subscribe before reading the database, then wait: a notification that
        lands between the read and the wait is not lost. Pass the event of
        another subscription as ``ev`` to be woken by either.
        """
        ev = ev or asyncio.Event()
        waiters = self._waiters[(channel, key)]
        waiters[ev] = None
        try:
            yield ev
        finally:
            waiters.pop(ev, None)
            if not waiters:
                self._waiters.pop((channel, key), None)


async def wait_event(ev: asyncio.Event, timeout: float) -> bool:
    """Wait for ``ev`` up to ``timeout`` seconds; True if it was set. Clears it."""
    if timeout <= 0:
        return ev.is_set()
    try:
        await asyncio.wait_for(ev.wait(), timeout)
    except TimeoutError:
        return False
    ev.clear()
    return True
