"""The threads workflow code runs on: deadlock detection, stuck threads, shutdown."""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import timedelta

import pytest

from worker._workflow_instance import DeadlockError
from worker._workflow_threads import WorkflowThreads, deadlock_timeout_seconds


class Code:
    """An occupant that records what the threads did to it."""

    def __init__(self) -> None:
        self.progress_at = 0.0
        self.abandoned: str | None = None
        self.torn_down_on: str | None = None
        self.back = threading.Event()

    def abandon(self, reason: str) -> None:
        self.abandoned = reason

    def finish_abandoned(self) -> None:
        self.torn_down_on = threading.current_thread().name
        self.back.set()


async def wait_for(event: threading.Event, timeout: float = 5.0) -> None:
    assert await asyncio.to_thread(event.wait, timeout), "not within the time"


async def test_code_runs_off_the_event_loop_and_answers() -> None:
    pool = WorkflowThreads(2, timeout=1.0)
    loop_thread = threading.get_ident()
    assert await pool.run(Code(), lambda: threading.get_ident() != loop_thread, what="x")
    with pytest.raises(KeyError):
        await pool.run(Code(), lambda: {}["missing"], what="x")
    pool.close()


async def test_a_busy_loop_is_a_deadlock_and_its_thread_is_interrupted() -> None:
    pool = WorkflowThreads(1, timeout=0.2)
    code = Code()

    def spin() -> None:
        while True:
            pass

    began = time.monotonic()
    with pytest.raises(DeadlockError, match=r"workflow W did not yield within 0\.2 s") as info:
        await pool.run(code, spin, what="workflow W")
    assert time.monotonic() - began < 2.0
    assert "while True" in info.value.stack or "spin" in info.value.stack
    assert code.abandoned is not None and "DeadlockError" in code.abandoned
    # the interrupt ends the loop: the thread tears the instance down and is back
    await wait_for(code.back)
    assert code.torn_down_on is not None and code.torn_down_on.startswith("baton-workflow")
    await asyncio.sleep(0.05)
    assert pool.stuck == 0
    assert await pool.run(Code(), lambda: "served again", what="x") == "served again"
    pool.close()


async def test_code_that_keeps_making_progress_is_not_a_deadlock() -> None:
    """A replay of many tasks is timed per task (progress_at), not as a whole."""
    pool = WorkflowThreads(1, timeout=0.2)
    code = Code()

    def long_replay() -> str:
        for _ in range(6):  # 0.6 s in all, 0.1 s a task
            code.progress_at = time.monotonic()
            time.sleep(0.1)
        return "replayed"

    assert await pool.run(code, long_replay, what="x") == "replayed"
    assert code.abandoned is None
    pool.close()


async def test_a_stuck_thread_is_replaced_up_to_the_bound() -> None:
    release = threading.Event()
    pool = WorkflowThreads(1, timeout=0.1, max_stuck=1)
    first, second = Code(), Code()
    try:
        with pytest.raises(DeadlockError):
            await pool.run(first, lambda: release.wait(10), what="x")
        # a new thread took the stuck one's place
        assert await pool.run(Code(), lambda: 1, what="x") == 1
        with pytest.raises(DeadlockError):
            await pool.run(second, lambda: release.wait(10), what="x")
        assert pool.stuck == 2
        # past the bound no thread replaces it: work waits for a stuck one to return
        waiting = asyncio.ensure_future(pool.run(Code(), lambda: 2, what="x"))
        await asyncio.sleep(0.3)
        assert not waiting.done()  # queued, and not taken for a deadlock either
        release.set()
        assert await asyncio.wait_for(waiting, 5) == 2
        await wait_for(first.back)
        await wait_for(second.back)
    finally:
        release.set()
        pool.close()


async def test_cancelling_the_wait_abandons_the_code_and_close_does_not_wait() -> None:
    release = threading.Event()
    pool = WorkflowThreads(1, timeout=60.0)
    code = Code()
    try:
        task = asyncio.ensure_future(pool.run(code, lambda: release.wait(10), what="x"))
        await asyncio.sleep(0.1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert code.abandoned is not None
        began = time.monotonic()
        pool.close()
        assert time.monotonic() - began < 0.5
        with pytest.raises(RuntimeError, match="closed"):
            await pool.run(Code(), lambda: 1, what="x")
    finally:
        release.set()
    await wait_for(code.back)


async def test_without_a_timeout_code_runs_inline_for_a_debugger() -> None:
    pool = WorkflowThreads(1, timeout=None)
    assert await pool.run(Code(), threading.get_ident, what="x") == threading.get_ident()


@pytest.mark.parametrize("value", [0, -1, float("inf"), float("nan"), True, "2"])
def test_a_deadlock_timeout_must_be_positive_and_finite(value: object) -> None:
    with pytest.raises(ValueError, match="deadlock_timeout must be a positive number"):
        deadlock_timeout_seconds(value)  # type: ignore[arg-type]


def test_a_deadlock_timeout_takes_seconds_or_a_timedelta() -> None:
    assert deadlock_timeout_seconds(timedelta(milliseconds=500)) == 0.5
    assert deadlock_timeout_seconds(3) == 3.0
    assert deadlock_timeout_seconds(None) is None
