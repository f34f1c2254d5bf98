"""A queue marked found empty: a mark a poll may trust and sleep on, so a take
that began before a task was announced must not set it again."""

from __future__ import annotations

import time

from store.notify import Notifier
from store.tasks import _found_empty

KEY = "ns/workflow/q"


def test_a_take_that_began_before_a_task_was_announced_leaves_the_queue_unmarked() -> None:
    n = Notifier("postgresql://127.0.0.1/unused")
    began = time.monotonic()  # a take reads the table: empty so far
    # the task commits and its notification finds every poll awake: the mark goes
    n.wake_one("baton_tasks_v1", KEY)
    # the take ends empty (its snapshot was before the commit)
    _found_empty(n.found_empty, n.task_noticed, KEY, began)
    # a poll arriving now must read the table, not trust a mark and sleep
    assert KEY not in n.found_empty


def test_a_take_that_began_after_the_last_announcement_marks_the_queue() -> None:
    n = Notifier("postgresql://127.0.0.1/unused")
    n.wake_one("baton_tasks_v1", KEY)
    began = time.monotonic() + 0.001
    _found_empty(n.found_empty, n.task_noticed, KEY, began)
    assert n.found_empty[KEY] == began


def test_an_announcement_with_a_poll_asleep_wakes_it_and_is_noted() -> None:
    import asyncio

    n = Notifier("postgresql://127.0.0.1/unused")
    ev = asyncio.Event()
    n._waiters[("baton_tasks_v1", KEY)][ev] = None
    n.wake_one("baton_tasks_v1", KEY)
    assert ev.is_set() and KEY in n.task_noticed
