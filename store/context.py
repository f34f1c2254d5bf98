"""What every store operation needs: the pool, the region, the config."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

import asyncpg

from store import db
from store.config import BatonConfig
from store.notify import Notifier

T = TypeVar("T")


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

    @property
    def region_urls(self) -> dict[str, str]:
        return {name: r.url for name, r in self.config.regions.items()}

    async def txn(self, fn: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
        """Run ``fn`` in one transaction, retrying lost races."""
        return await db.run_txn(self.pool, fn)

    async def unlocked(self, fn: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
        """Run ``fn`` outside a transaction (one checked write), retrying lost races."""
        return await db.run_unlocked(self.pool, fn)
