"""Sync match: a new workflow task handed to a long-poll waiting in this process.

A start whose task queue has an idle poller in this server process reserves
that poller before it writes, records the task as started by it in the same
transaction (no task row, no notification, no second transaction to take
it), and hands the task over only after the commit: a task a worker holds is
always in the history first. If the transaction fails, the poller is let go
and goes back to waiting. With no idle poller here the task is dispatched as
a task row, as before.

A waiter is idle only while its long-poll sleeps: one that was woken (by a
notification) or is taking a task from the table is never reserved, so a
poller gets one task at most. Reserving sets the poller's wake-up event, so
the notifier passes the next notification of the queue to another poller.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any


@dataclass(eq=False)
class Waiter:
    """One long-poll of one task queue, as the matcher sees it."""

    key: str
    identity: str
    ev: asyncio.Event
    reserved: bool = False
    task: dict[str, Any] | None = None
    settled: asyncio.Event = field(default_factory=asyncio.Event)


class Matcher:
    """The idle long-polls of this process, by task queue key."""

    def __init__(self) -> None:
        self._idle: dict[str, dict[Waiter, None]] = defaultdict(dict)
        #: Tasks handed over in memory, and reservations let go (the write failed).
        self.matched = 0
        self.released = 0
        #: Writers that found no poller of their queue asleep here: none was
        #: polling it, or every one was awake (woken, taking from the table).
        self.missed = {"no_poller": 0, "all_awake": 0}

    @contextlib.contextmanager
    def idle(self, key: str, identity: str, ev: asyncio.Event) -> Iterator[Waiter]:
        """Offer this poller to writers while it sleeps on ``ev``."""
        w = Waiter(key, identity, ev)
        self._idle[key][w] = None
        try:
            yield w
        finally:
            self._drop(w)

    def _drop(self, w: Waiter) -> None:
        waiters = self._idle.get(w.key)
        if waiters is not None:
            waiters.pop(w, None)
            if not waiters:
                del self._idle[w.key]

    def reserve(self, key: str) -> Waiter | None:
        """The longest-idle poller of ``key`` not already woken, now reserved."""
        waiters = self._idle.get(key)
        for w in waiters or ():
            if not w.ev.is_set():
                self._drop(w)
                w.reserved = True
                w.ev.set()  # the notifier wakes other pollers from now on
                return w
        self.missed["all_awake" if waiters else "no_poller"] += 1
        return None

    def deliver(self, w: Waiter, task: dict[str, Any]) -> None:
        """Hand ``task`` (committed) to the reserved poller."""
        w.task = task
        self.matched += 1
        w.settled.set()

    def release(self, w: Waiter) -> None:
        """Let a reserved poller go (the write that reserved it did not commit)."""
        self.released += 1
        w.settled.set()

    async def outcome(self, w: Waiter) -> dict[str, Any] | None:
        """After the poller woke: the task handed to it, if it was reserved."""
        self._drop(w)
        if not w.reserved:
            return None
        await w.settled.wait()
        return w.task


class Match:
    """A writer's hold on at most one reserved poller, across its retries."""

    def __init__(self, matcher: Matcher) -> None:
        self._matcher = matcher
        self.waiter: Waiter | None = None
        self.task: dict[str, Any] | None = None

    def reserve(self, key: str) -> Waiter | None:
        if self.waiter is None:
            self.waiter = self._matcher.reserve(key)
        return self.waiter

    def settle(self, committed: bool) -> None:
        """After the transaction: deliver the task it started, else let go."""
        w, self.waiter = self.waiter, None
        if w is None:
            return
        if committed and self.task is not None:
            self._matcher.deliver(w, self.task)
        else:
            self._matcher.release(w)
