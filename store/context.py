"""What every store operation needs: the pool, the region, the config."""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar

import asyncpg

from store import db
from store.config import BatonConfig
from store.errors import Conflict
from store.loop_lag import LoopLag
from store.matching import Matcher
from store.notify import Notifier
from store.run_cache import RunCache

if TYPE_CHECKING:
    from store.namespaces import Namespace

T = TypeVar("T")

#: Races an unlocked write may lose in a row before it takes the run's lock.
UNLOCKED_CONFLICTS = 2


@dataclass
class Store:
    """The history store of one region, as one server process sees it."""

    pool: asyncpg.Pool
    region: str
    config: BatonConfig
    notifier: Notifier
    #: When this process last recorded each versioned poller (polls are a hot
    #: path: the row is written at most every few seconds per poller).
    poller_seen: dict[tuple[str, ...], float] = field(default_factory=dict)
    #: The workers (namespace, task queue, identity, instance) this process
    #: has seen poll for workflow tasks, oldest first (store/tasks.py).
    workers_seen: dict[tuple[str, str, str, str], None] = field(default_factory=dict)
    #: Where each namespace was active when a long-poll last looked, with the
    #: notifier's namespace epoch of that read (any namespace change, or a
    #: lost listener, moves the epoch on and the entry is read again).
    namespace_seen: dict[str, tuple[int, Namespace]] = field(default_factory=dict)
    #: The long-polls of this process a writer may hand a new task to.
    matcher: Matcher = field(default_factory=Matcher)
    #: Each namespace as a start of this process last read it, with the
    #: notifier's namespace epoch then and the row's xmin (store/starts.py).
    start_namespaces: dict[str, tuple[int, Namespace, int]] = field(default_factory=dict)
    #: The runs this process wrote last, written again without a read.
    run_cache: RunCache = field(default_factory=RunCache)
    #: Speculative workflow tasks this process recorded ("accepted") or
    #: refused (by reason), see store/speculation.py.
    speculation: Counter[str] = field(default_factory=Counter)
    #: How late this process's event loop wakes what is ready (store/loop_lag.py).
    loop_lag: LoopLag = field(default_factory=LoopLag)

    def __post_init__(self) -> None:
        # a run closed by this process wakes its result long-polls here at
        # once, with the outcome in hand (store/workflows.get_result)
        def awaited(ns: str, wid: str) -> bool:
            return self.notifier.has_waiters("baton_closed_v1", f"{ns}/{wid}")

        def on_close(ns: str, wid: str) -> None:
            self.notifier.wake("baton_closed_v1", f"{ns}/{wid}")

        self.run_cache.awaited = awaited
        self.run_cache.on_close = on_close

    @property
    def region_urls(self) -> dict[str, str]:
        return {name: r.url for name, r in self.config.regions.items()}

    async def txn(self, fn: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
        """Run ``fn`` in one transaction, retrying lost races; its writes
        notify once it committed (:meth:`Notifier.after_commit`)."""
        with self.notifier.after_commit():
            return await db.run_txn(self.pool, fn)

    async def checked_write(
        self,
        unlocked: Callable[[asyncpg.Connection], Awaitable[T | None]],
        locked: Callable[[asyncpg.Connection], Awaitable[T]],
    ) -> T:
        """Write one run by ``unlocked`` (a read without a transaction and one
        checked write, see ``RunTxn.read_unlocked``), or by ``locked`` in a
        transaction when ``unlocked`` returns None (the write needs the lock)
        or loses :data:`UNLOCKED_CONFLICTS` races in a row: a run that keeps
        changing between the read and the write (a flood of signals) is then
        waited for instead of raced, so the write always gets through."""
        with self.notifier.after_commit():
            try:
                done = await db.run_unlocked(self.pool, unlocked, conflicts=UNLOCKED_CONFLICTS)
            except Conflict:
                done = None
            if done is not None:
                return done
            return await db.run_txn(self.pool, locked)
