"""Races between the event loop giving up on workflow code and the thread in it."""

from __future__ import annotations

import asyncio
import gc
import io
import logging
import threading
import time

import pytest

from worker._workflow_instance import DeadlockError
from worker._workflow_threads import WorkflowThreads


class Code:
    def __init__(self) -> None:
        self.progress_at = 0.0
        self.abandoned: list[str] = []
        self.back = threading.Event()
        self.on_abandon: list[asyncio.Task[object]] = []

    def abandon(self, reason: str) -> None:
        self.abandoned.append(reason)
        for task in self.on_abandon:
            # shutdown's cancel, in the loop turn that fails the future
            asyncio.get_running_loop().call_soon(task.cancel)

    def finish_abandoned(self) -> None:
        self.back.set()


async def test_a_cancel_right_after_the_deadlock_verdict_counts_one_stuck_thread() -> None:
    """The cancel reaches the task after the timer failed its future: the job is
    given up once, so the pool counts one stuck thread, not two, and is whole
    again when the thread is back."""
    pool = WorkflowThreads(2, timeout=0.2)
    code = Code()
    release = threading.Event()

    def stuck() -> None:
        while not release.is_set():
            time.sleep(0.01)

    task = asyncio.ensure_future(pool.run(code, stuck, what="workflow W"))
    code.on_abandon.append(task)  # type: ignore[arg-type]
    with pytest.raises(asyncio.CancelledError):
        await task
    assert len(code.abandoned) == 1
    assert pool.stuck == 1
    assert await asyncio.to_thread(code.back.wait, 5.0)
    await asyncio.sleep(0.1)
    assert pool.stuck == 0
    with pool._lock:
        assert pool._serving <= pool.size
    # every thread serves: two jobs that wait on each other both run
    both = threading.Barrier(2, timeout=2.0)
    assert await asyncio.gather(
        pool.run(Code(), both.wait, what="x"), pool.run(Code(), both.wait, what="y")
    ) in ([0, 1], [1, 0])
    pool.close()


async def test_a_thread_interrupted_holding_a_logging_lock_lets_it_go() -> None:
    """An interrupt landing between ``acquire()`` and ``try`` in
    ``logging.Handler.handle`` (code that logs in a loop: about one interrupt in
    thirty) left the handler's lock held by the thread for ever, and the next
    record the event loop logged through it froze the worker. The code here
    holds the lock when interrupted, as the thread then does."""
    handler = logging.StreamHandler(io.StringIO())
    pool = WorkflowThreads(1, timeout=0.1)
    code = Code()

    def log_in_a_loop() -> None:
        handler.acquire()  # where the interrupt lands in handle()
        while True:
            pass

    try:
        with pytest.raises(DeadlockError):
            await pool.run(code, log_in_a_loop, what="workflow W")
        assert await asyncio.to_thread(code.back.wait, 5.0)
        await asyncio.sleep(0.05)
        lock = handler.lock
        assert lock is not None

        def free() -> bool:
            if not lock.acquire(True, 1.0):
                return False
            lock.release()
            return True

        assert await asyncio.to_thread(free), "the handler's lock is left held"
    finally:
        handler.close()
        pool.close()


class _SlowToLetGo:
    """The pool's lock, released slowly by the event loop's thread: the code's
    thread gets to finish between the loop's ``with`` and what follows it."""

    def __init__(self, loop_thread: int) -> None:
        self._lock = threading.Lock()
        self._loop_thread = loop_thread

    def __enter__(self) -> bool:
        return self._lock.__enter__()

    def __exit__(self, *exc: object) -> None:
        self._lock.__exit__(None, None, None)
        if threading.get_ident() == self._loop_thread:
            time.sleep(0.1)


async def test_code_done_just_after_the_loop_began_to_await_it_answers_once() -> None:
    """The code raised right after the loop made its future: the loop answered
    the error at once and the thread failed the future too, which nobody
    awaited, so asyncio logged "Future exception was never retrieved"."""
    loop = asyncio.get_running_loop()
    unhandled: list[dict[str, object]] = []
    loop.set_exception_handler(lambda _loop, context: unhandled.append(context))
    pool = WorkflowThreads(1, timeout=1.0)
    pool._lock = _SlowToLetGo(threading.get_ident())  # type: ignore[assignment]

    def fails_a_little_later() -> None:
        time.sleep(pool.handoff_s * 4)
        raise ValueError("nondeterminism")

    try:
        with pytest.raises(ValueError, match="nondeterminism"):
            await pool.run(Code(), fails_a_little_later, what="x")
        await asyncio.sleep(0.2)  # the thread's answer reaches the loop
        pool.close()  # the thread lets go of its last job
        await asyncio.sleep(0.2)
        gc.collect()
        await asyncio.sleep(0)
        assert unhandled == []
    finally:
        loop.set_exception_handler(None)
        pool.close()
