"""The matcher's rules: which poller a writer reserves, and what that poller gets."""

from __future__ import annotations

import asyncio

from store.matching import Match, Matcher

KEY = "ns/workflow/q"


async def test_the_longest_idle_poller_not_yet_woken_is_reserved_and_woken() -> None:
    m = Matcher()
    first, second = asyncio.Event(), asyncio.Event()
    with m.idle(KEY, "a", first) as a, m.idle(KEY, "b", second) as b:
        first.set()  # a notification woke it: it takes from the table
        w = m.reserve(KEY)
        assert w is b and b.reserved and second.is_set()
        assert m.reserve(KEY) is None  # nobody else sleeps
        assert not a.reserved
        assert m.reserve("ns/workflow/other") is None


async def test_a_reserved_poller_gets_the_task_only_once_the_writer_settles() -> None:
    m = Matcher()
    ev = asyncio.Event()
    with m.idle(KEY, "a", ev) as w:
        match = Match(m)
        assert match.reserve(KEY) is w
        assert match.reserve(KEY) is w  # a retried transaction keeps its poller
        outcome = asyncio.create_task(m.outcome(w))
        await asyncio.sleep(0)
        assert not outcome.done()  # not before the commit
        match.task = {"workflow_id": "x"}
        match.settle(committed=True)
        assert await outcome == {"workflow_id": "x"}
    assert m.matched == 1


async def test_a_poller_whose_writer_failed_is_let_go_with_nothing() -> None:
    m = Matcher()
    ev = asyncio.Event()
    with m.idle(KEY, "a", ev) as w:
        match = Match(m)
        match.reserve(KEY)
        match.task = {"workflow_id": "x"}  # built, but the transaction rolled back
        match.settle(committed=False)
        assert await m.outcome(w) is None
    assert (m.matched, m.released) == (0, 1)
    # and a poller that was never reserved leaves the idle set at once
    with m.idle(KEY, "b", asyncio.Event()) as w2:
        assert await m.outcome(w2) is None
        assert m.reserve(KEY) is None
