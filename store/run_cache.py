"""Runs this server process wrote last, written again without reading them.

A task completion reads its run and writes it back with one checked call
(``RunTxn.read_unlocked``): the write is refused if the run's row or its
namespace's row changed since the read (their xmin). After such a write the
server knows the row exactly as it left it: the values it wrote, the rest as
it read them, and the xmin and history size the write returns. It keeps that
here, and the run's next completion skips the read and checks the write
against the remembered xmin instead, which refuses it just as it refuses a
write after a stale read. The poll that takes a run's first workflow task
keeps the run the same way once its transaction commits. An activity
completion also needs the activity's row: the activities a remembered write
inserted as started (and not heartbeating) are kept with the write's xmin,
which the row keeps until something (a retry, a cancel) changes it. A sticky
queue closed since (its worker shut down) refuses the write too, since the
read would have dropped it. A result long-poll of this process takes the
outcome of a close it wrote from here (``closing``/``closed``/``closed_here``).

A refused write forgets the run and the completion reads it as before, so
the cache can only save reads, never change an outcome. Several server
processes writing the same runs in turn would see their writes refused more
often than not; when more than a quarter of remembered writes are refused,
the cache steps aside and only every 32nd lookup tries it, until writes get
through again.
"""

from __future__ import annotations

import asyncio
import weakref
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import orjson

if TYPE_CHECKING:
    from store.mutable_state import RunTxn
    from store.namespaces import Namespace

#: Runs one server process remembers (about 2 KB each, more with a memo).
DEFAULT_CAPACITY = 10_000
#: And at most about this many bytes of them: a run's memo and search
#: attributes count at their JSON size, the rest of its row as 2 KB.
BYTES_BUDGET = 32 * 1024 * 1024
_ROW_BYTES = 2048
_ACTIVITY_BYTES = 512
#: Above this share of refused remembered writes, the cache steps aside.
_STALE_LIMIT = 0.25
_PROBE_EVERY = 32
#: Closes kept for result long-polls of this process (only awaited runs).
_CLOSES_KEPT = 64
#: Longest a woken result long-poll waits for a closing write of its process.
_CLOSE_WAIT_S = 1.0

RunKey = tuple[str, str, str]


@dataclass(slots=True)
class CachedRun:
    """One run as its last write from this process left it."""

    #: The executions row, as ``RunTxn`` holds it after a read.
    exe: dict[str, Any]
    ns: Namespace
    run_xmin: int
    ns_xmin: int
    #: Activities that write or an earlier remembered one inserted: scheduled
    #: event id -> (the row's xmin, what a read of it gives).
    activities: dict[int, tuple[int, dict[str, Any]]] = field(default_factory=dict)
    #: About how much memory it holds (see BYTES_BUDGET).
    size: int = _ROW_BYTES


@dataclass
class RunCacheStats:
    hits: int = 0
    misses: int = 0
    #: Remembered writes refused because the run changed elsewhere.
    stale: int = 0
    #: Lookups not tried because too many remembered writes were refused.
    bypassed: int = 0


class RunCache:
    """A bounded, least-recently-used map of runs to their remembered rows."""

    #: Every cache of this process (a process may serve several regions).
    _all: ClassVar[weakref.WeakSet[RunCache]] = weakref.WeakSet()

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        RunCache._all.add(self)
        self.capacity = capacity
        self.bytes_budget = BYTES_BUDGET
        self._runs: OrderedDict[RunKey, CachedRun] = OrderedDict()
        self._bytes = 0
        #: Whether a result long-poll of this process waits on (namespace,
        #: workflow id); the store sets it (see ``closed_here``).
        self.awaited: Callable[[str, str], bool] = lambda _ns, _wid: False
        #: What remembered writes that closed an awaited run left: the
        #: waiters take it instead of reading the run again.
        self._closes: OrderedDict[RunKey, tuple[int, dict[str, Any]]] = OrderedDict()
        #: Counts the closes kept: a waiter takes only one counted after it
        #: read the run (an older one may have been undone since, by a forced
        #: failover that discarded it).
        self.close_seq = 0
        #: Closing writes of this process not yet answered.
        self._closing: dict[RunKey, asyncio.Future[dict[str, Any] | None]] = {}
        #: Called with (namespace, workflow id) after such a close is kept.
        self.on_close: Callable[[str, str], None] = lambda _ns, _wid: None
        self.stats = RunCacheStats()
        self._stale_rate = 0.0
        self._skipped = 0

    def __len__(self) -> int:
        return len(self._runs)

    def lookup(self, key: RunKey, activity: int | None = None) -> CachedRun | None:
        """The remembered run (holding ``activity`` if one is named), or None."""
        if self.capacity <= 0:
            return None
        if self._stale_rate > _STALE_LIMIT:
            self._skipped += 1
            if self._skipped % _PROBE_EVERY:
                self.stats.bypassed += 1
                return None
        entry = self._runs.get(key)
        if entry is None or (activity is not None and activity not in entry.activities):
            self.stats.misses += 1
            return None
        self._runs.move_to_end(key)
        self.stats.hits += 1
        return entry

    def remember(self, key: RunKey, entry: CachedRun) -> None:
        if self.capacity <= 0 or entry.size > self.bytes_budget // 16:
            self.forget(key)  # (a run this large is read each time)
            return
        self.forget(key)
        self._runs[key] = entry
        self._bytes += entry.size
        while len(self._runs) > self.capacity or self._bytes > self.bytes_budget:
            _, old = self._runs.popitem(last=False)
            self._bytes -= old.size

    def forget(self, key: RunKey) -> None:
        entry = self._runs.pop(key, None)
        if entry is not None:
            self._bytes -= entry.size

    def closing(self, key: RunKey) -> None:
        """A write of this process that closes the run is on its way: a
        waiter woken by its notification (which may come before the write's
        own answer) waits for :meth:`closed` rather than read the run."""
        self._closing.setdefault(key, asyncio.get_running_loop().create_future())

    def closed(self, key: RunKey, outcome: dict[str, Any] | None) -> None:
        """The closing write committed with ``outcome`` (None: it did not)."""
        fut = self._closing.pop(key, None)
        if fut is not None and not fut.done():
            fut.set_result(outcome)
        if outcome is None or not self.awaited(key[0], key[1]):
            return
        self.close_seq += 1
        self._closes[key] = (self.close_seq, outcome)
        self._closes.move_to_end(key)
        while len(self._closes) > _CLOSES_KEPT:
            self._closes.popitem(last=False)
        self.on_close(key[0], key[1])

    async def closed_here(
        self, key: RunKey, since: int, timeout: float = 1.0
    ) -> dict[str, Any] | None:
        """How the run closed, if a write of this process closed it after
        ``close_seq`` was ``since`` (waiting up to ``timeout`` for one on its
        way)."""
        kept = self._closes.get(key)
        if kept is not None and kept[0] > since:
            return kept[1]
        fut = self._closing.get(key)
        if fut is None:
            return None
        try:
            return await asyncio.wait_for(asyncio.shield(fut), min(timeout, _CLOSE_WAIT_S))
        except TimeoutError:
            return None

    @classmethod
    def forget_everywhere(cls, key: RunKey) -> None:
        """This process wrote the run another way: its remembered row is old."""
        for cache in cls._all:
            cache.forget(key)

    def written(self, *, refused: bool) -> None:
        """Count the outcome of a write made from a remembered run."""
        if refused:
            self.stats.stale += 1
        self._stale_rate = 0.95 * self._stale_rate + (0.05 if refused else 0.0)


def entry_after_write(
    rt: RunTxn, run_xmin: int, history_size: int, ns_xmin: int
) -> CachedRun | None:
    """The run as ``rt``'s write left it (None: not kept), for the caller to
    remember once that write committed and nothing else changed the row in its
    transaction: an unlocked write (its own transaction), or a locked one that
    is the last change of the run before its commit.

    A closed run gets no more completions; a run with inputs buffered behind
    its started workflow task is read again, buffer and all.
    """
    e = rt.exe
    if e["status"] != "running" or e["buffered_seq"] != e["buffered_flushed_seq"]:
        return None
    exe = dict(e)
    exe["history_size_bytes"] = history_size
    exe["updated_at"] = rt.now
    exe["buffered_events"] = []
    gone = set(rt.activity_deletes)
    activities = {
        sid: act
        for sid, act in (rt.cached.activities.items() if rt.cached is not None else ())
        if sid not in gone
    }
    for row in rt.activity_inserts:
        if row["state"] != "started" or row.get("heartbeat_s"):
            # a poll will start it, or its heartbeats change its row: either
            # way its completion would find it changed, so it is read then
            continue
        sid = int(row["scheduled_event_id"])
        activities[sid] = (
            run_xmin,
            {
                "scheduled_event_id": sid,
                "attempt": row["attempt"],
                "state": row["state"],
                "started_identity": row["started_identity"],
                "last_failure": row["last_failure"],
            },
        )
    size = (
        _ROW_BYTES
        + _ACTIVITY_BYTES * len(activities)
        + len(orjson.dumps(exe.get("memo")))
        + len(orjson.dumps(exe.get("search_attributes")))
    )
    return CachedRun(exe, rt.ns, run_xmin, ns_xmin, activities, size)
