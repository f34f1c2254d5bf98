"""The run cache's bookkeeping (store/run_cache.py), on plain data."""

from __future__ import annotations

import asyncio
from typing import Any

from store.namespaces import Namespace
from store.run_cache import CachedRun, RunCache

NS = Namespace(
    name="default",
    regions=["region-a"],
    active_region="region-a",
    failover_version=1,
    state="active",
    retention_days=7,
    description="",
)


def _entry(xmin: int = 10, activities: dict[int, Any] | None = None) -> CachedRun:
    return CachedRun({"next_event_id": 5}, NS, xmin, 1, activities or {})


def test_it_keeps_the_most_recently_used_runs_up_to_its_capacity() -> None:
    cache = RunCache(2)
    for wid in ("a", "b"):
        cache.remember(("default", wid, "r"), _entry())
    assert cache.lookup(("default", "a", "r")) is not None  # a is now the most recent
    cache.remember(("default", "c", "r"), _entry())
    assert len(cache) == 2
    assert cache.lookup(("default", "b", "r")) is None
    assert cache.lookup(("default", "a", "r")) is not None
    assert cache.stats.hits == 2 and cache.stats.misses == 1


def test_an_activity_completion_needs_the_activity_remembered() -> None:
    cache = RunCache()
    cache.remember(("default", "a", "r"), _entry(activities={5: (10, {"attempt": 1})}))
    assert cache.lookup(("default", "a", "r"), 5) is not None
    assert cache.lookup(("default", "a", "r"), 6) is None


def test_a_capacity_of_zero_remembers_nothing() -> None:
    cache = RunCache(0)
    cache.remember(("default", "a", "r"), _entry())
    assert len(cache) == 0 and cache.lookup(("default", "a", "r")) is None


def test_forget_everywhere_reaches_every_cache_of_the_process() -> None:
    one, two = RunCache(), RunCache()
    for cache in (one, two):
        cache.remember(("default", "a", "r"), _entry())
    RunCache.forget_everywhere(("default", "a", "r"))
    assert one.lookup(("default", "a", "r")) is None
    assert two.lookup(("default", "a", "r")) is None


def test_it_steps_aside_while_most_remembered_writes_are_refused() -> None:
    """Several server processes writing the same runs in turn: each refused
    write costs a call, so past a quarter refused the cache is only probed."""
    cache = RunCache()
    key = ("default", "a", "r")
    cache.remember(key, _entry())
    for _ in range(40):
        cache.written(refused=True)
    found = [cache.lookup(key) is not None for _ in range(64)]
    assert sum(found) == 2  # every 32nd lookup probes
    assert cache.stats.bypassed == 62
    for _ in range(60):
        cache.written(refused=False)
    assert all(cache.lookup(key) is not None for _ in range(10))


async def test_a_waiter_woken_before_the_closing_write_answers_gets_its_outcome() -> None:
    cache = RunCache()
    cache.awaited = lambda _ns, _wid: True
    woken: list[tuple[str, str]] = []
    cache.on_close = lambda ns, wid: woken.append((ns, wid))
    key = ("default", "a", "r")
    cache.closing(key)
    since = cache.close_seq
    waiter = asyncio.create_task(cache.closed_here(key, since))
    await asyncio.sleep(0)
    assert not waiter.done()
    cache.closed(key, {"status": "completed", "result": 1})
    assert (await waiter) == {"status": "completed", "result": 1}
    assert woken == [("default", "a")]
    assert await cache.closed_here(key, since) == {"status": "completed", "result": 1}
    # a waiter that read the run after that close does not take it: the close
    # may have been undone since (a forced failover that discarded it)
    assert await cache.closed_here(key, cache.close_seq) is None


async def test_a_closing_write_that_failed_leaves_the_waiter_to_read() -> None:
    cache = RunCache()
    cache.awaited = lambda _ns, _wid: True
    key = ("default", "a", "r")
    cache.closing(key)
    waiter = asyncio.create_task(cache.closed_here(key, 0))
    await asyncio.sleep(0)
    cache.closed(key, None)
    assert await waiter is None
    assert await cache.closed_here(key, 0) is None


async def test_a_close_nobody_awaits_is_not_kept() -> None:
    cache = RunCache()
    key = ("default", "a", "r")
    cache.closing(key)
    cache.closed(key, {"status": "completed", "result": 1})
    assert await cache.closed_here(key, 0) is None


def test_it_keeps_its_runs_within_a_byte_budget() -> None:
    """Memos count at their size: large runs push older ones out, and a run
    larger than a sixteenth of the budget is not kept at all."""
    cache = RunCache()
    cache.bytes_budget = 16_000
    for n in range(20):
        entry = _entry()
        entry.size = 1_000
        cache.remember(("default", f"w{n}", "r"), entry)
    assert len(cache) == 16
    assert cache.lookup(("default", "w3", "r")) is None
    assert cache.lookup(("default", "w4", "r")) is not None
    huge = _entry()
    huge.size = 1_001
    cache.remember(("default", "w4", "r"), huge)
    assert cache.lookup(("default", "w4", "r")) is None  # and the old entry is gone
    assert len(cache) == 15
