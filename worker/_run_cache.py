"""The worker's cache of workflow runs, least recently used first, and a lock per run.

A cached :class:`~worker._workflow_instance.WorkflowInstance` saves replaying a
run's history at its next workflow task. Only one coroutine may work on a run
at a time (a workflow task, a query, the workflow task an activity completion
hands back), so each run has a lock; the lock lives as long as anyone holds or
waits for it, whether or not the run is cached. Using a run makes it the most
recently used, and eviction skips runs whose lock is taken: their instance is
in use, and a run cached past the limit that way is evicted when its lock is
released.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import Any, Protocol

log = logging.getLogger("baton.worker")


class Disposable(Protocol):
    """What the cache holds: something that can be torn down when evicted."""

    def dispose(self) -> None: ...


class RunLock:
    """A run's lock that knows whether anyone holds or waits for it."""

    def __init__(self, on_idle: Callable[[], None]) -> None:
        self._lock = asyncio.Lock()
        self._users = 0
        self._on_idle = on_idle

    def locked(self) -> bool:
        """True while a coroutine holds the lock or waits for it."""
        return self._users > 0

    async def __aenter__(self) -> None:
        self._users += 1
        try:
            await self._lock.acquire()
        except BaseException:
            self._release_use()
            raise

    async def __aexit__(self, *exc: object) -> None:
        self._lock.release()
        self._release_use()

    def _release_use(self) -> None:
        self._users -= 1
        if self._users == 0:
            self._on_idle()


class RunCache:
    """Cached runs by run id, least recently used first, with their locks."""

    def __init__(self, capacity: int) -> None:
        self.capacity = max(0, capacity)
        self._runs: OrderedDict[str, Any] = OrderedDict()
        self._locks: dict[str, RunLock] = {}
        #: Workflow tasks of runs that had one before: served from the cache
        #: (hits), or by fetching and replaying the history (misses).
        self.hits = 0
        self.misses = 0

    def __contains__(self, run_id: object) -> bool:
        return run_id in self._runs

    def __len__(self) -> int:
        return len(self._runs)

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._runs))

    def lock(self, run_id: str) -> RunLock:
        """The lock of ``run_id``, the same object for as long as it is in use."""
        lock = self._locks.get(run_id)
        if lock is None:
            lock = self._locks[run_id] = RunLock(lambda: self._on_idle(run_id))
        return lock

    def busy(self, run_id: str) -> bool:
        lock = self._locks.get(run_id)
        return lock is not None and lock.locked()

    def get(self, run_id: str) -> Any:
        """The cached instance of ``run_id`` (now the most recently used), or None."""
        inst = self._runs.get(run_id)
        if inst is not None:
            self._runs.move_to_end(run_id)
        return inst

    def put(self, run_id: str, inst: Disposable) -> None:
        """Cache ``inst`` as the most recently used, evicting the oldest idle runs."""
        old = self._runs.get(run_id)
        if old is not None and old is not inst:
            old.dispose()
        self._runs[run_id] = inst
        self._runs.move_to_end(run_id)
        self._trim()

    def evict(self, run_id: str) -> None:
        """Drop ``run_id`` from the cache and dispose of its instance."""
        inst = self._runs.pop(run_id, None)
        if inst is not None:
            inst.dispose()

    def clear(self) -> None:
        """Dispose of every cached instance (the worker is stopping)."""
        while self._runs:
            _, inst = self._runs.popitem(last=False)
            inst.dispose()

    def _trim(self) -> None:
        excess = len(self._runs) - self.capacity
        if excess <= 0:
            return
        for run_id in [r for r in self._runs if not self.busy(r)][:excess]:
            self.evict(run_id)

    def _on_idle(self, run_id: str) -> None:
        self._locks.pop(run_id, None)
        self._trim()
