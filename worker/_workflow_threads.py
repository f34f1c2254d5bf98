"""The threads workflow code runs on, and the deadlock detector that watches them.

Workflow code must hand control back (await a timer, an activity, a signal,
a condition) and do nothing that blocks. Code that does (``time.sleep``, a
sync HTTP call, a loop that never awaits) would stop the whole worker if it
ran on the worker's event loop: no other run's task, no activity heartbeat,
no poll would move. So every activation and query runs on a thread of
:class:`WorkflowThreads`, and the loop only waits for it. An activation that
does not yield within the worker's ``deadlock_timeout`` fails its workflow
task with :class:`~worker._workflow_instance.DeadlockError` (the server
retries the task with backoff, so fixed code carries the run on); a query
answers the same error.

A thread cannot be killed. The one left in such code is handed an exception
at its next Python instruction (which ends busy loops, and a sleep when it
returns; a call blocked in C stays blocked), its instance is never used
again, and a new thread takes its place, up to ``max_stuck`` threads stuck at
once: past that the worker runs fewer workflow tasks at once until they
return, and says so. The threads are daemons, so neither the worker's
shutdown nor the process's exit waits for a stuck one.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import ctypes
import logging
import math
import queue
import sys
import threading
import time
import traceback
from collections.abc import Callable
from datetime import timedelta
from typing import Any, Protocol, TypeVar

from worker._workflow_instance import DeadlockError

log = logging.getLogger("baton.worker")

T = TypeVar("T")

#: Deadlock timeout of a worker that names none (Temporal's SDKs use the same).
DEFAULT_DEADLOCK_TIMEOUT_S = 2.0

_TASK_RETRIED = (
    "The workflow task is retried with backoff: fix the code and restart the worker, "
    "and the run carries on"
)
#: What comes of a query whose handler (or the replay before it) did not yield.
QUERY_FAILED = "The query failed; the run is not affected: fix the code and restart the worker"


def deadlock_timeout_seconds(value: timedelta | float | None) -> float | None:
    """The worker's ``deadlock_timeout`` option in seconds (None: off), checked."""
    if value is None:
        return None
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    else:
        seconds = math.nan
    if not 0 < seconds < math.inf:
        raise ValueError(
            "deadlock_timeout must be a positive number of seconds (or None to run workflow "
            f"code on the event loop with no limit, in a debugger), not {value!r}"
        )
    return seconds


class Occupant(Protocol):
    """What a thread runs code of: a workflow instance."""

    #: ``time.monotonic()`` when its code last began a new step (a task it
    #: activates); a replay of many tasks is timed per task, not as a whole.
    progress_at: float

    def abandon(self, reason: str) -> None:
        """A thread is stuck in it: never use it again (the thread still owns it)."""

    def finish_abandoned(self) -> None:
        """Called on the stuck thread once it left the code: tear it down there."""


class _Interrupted(BaseException):
    """Raised inside a stuck thread to end the workflow code it is caught in."""


class _Job:
    __slots__ = (
        "abandoned",
        "context",
        "error",
        "fn",
        "fn_done",
        "future",
        "handoff",
        "ident",
        "interrupted",
        "loop",
        "occupant",
        "replaced",
        "skip",
        "started_at",
        "timer",
        "value",
    )

    def __init__(
        self,
        fn: Callable[[], Any],
        occupant: Occupant,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self.fn = fn
        self.occupant = occupant
        self.loop = loop
        self.context = contextvars.copy_context()
        # Released by the thread when the code returned, unless the loop
        # stopped waiting on it and awaits ``future`` instead.
        self.handoff = threading.Lock()
        self.handoff.acquire()
        self.future: asyncio.Future[Any] | None = None
        self.value: Any = None
        self.error: BaseException | None = None
        self.ident: int | None = None
        self.started_at: float | None = None
        self.fn_done = False
        self.skip = False
        self.abandoned = False
        self.interrupted = False
        self.replaced = False
        self.timer: asyncio.TimerHandle | None = None

    def outcome(self) -> Any:
        if self.error is not None:
            raise self.error
        return self.value


class WorkflowThreads:
    """A pool of daemon threads for workflow code, with a deadlock detector.

    Args:
        size: Threads that run code at once (the worker's workflow task concurrency).
        timeout: Seconds an activation may run without yielding; None runs
            the code inline on the event loop instead, with no limit (for a
            debugger's breakpoints and stepping).
        max_stuck: Stuck threads replaced by new ones (default: ``size``).
    """

    def __init__(
        self,
        size: int,
        *,
        timeout: float | None = DEFAULT_DEADLOCK_TIMEOUT_S,
        max_stuck: int | None = None,
        name: str = "baton-workflow",
    ) -> None:
        self.size = size
        self.timeout = timeout
        self.max_stuck = size if max_stuck is None else max_stuck
        #: How long the loop waits for code right away before it awaits it.
        self.handoff_s = sys.getswitchinterval()
        self._name = name
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._serving = 0  # threads that take jobs (stuck ones not replaced included)
        self._idle = 0  # of those, waiting for one
        self._waiting = 0  # jobs queued and not taken yet
        self._stuck = 0
        self._started = 0
        self._closed = False

    @property
    def closed(self) -> bool:
        """:meth:`close` was called: no more code runs here."""
        return self._closed

    @property
    def stuck(self) -> int:
        """Threads left in workflow code that did not yield, not back yet."""
        return self._stuck

    async def run(
        self,
        occupant: Occupant,
        fn: Callable[[], T],
        *,
        what: str,
        then: str = _TASK_RETRIED,
    ) -> T:
        """Run ``fn`` (code of ``occupant``) on a thread and return what it returns.

        ``what`` names the code in a DeadlockError's message, ``then`` says
        what comes of it.

        Raises:
            DeadlockError: It did not yield within the timeout; ``occupant``
                is abandoned (never to be used again).
        """
        if self.timeout is None:
            return fn()
        loop = asyncio.get_running_loop()
        job = _Job(fn, occupant, loop)
        self._submit(job)
        # Most activations take well under a millisecond: wait for those
        # right here, which hands the thread the GIL at once and costs two
        # thread switches. A thread running Python code would hold the loop
        # off for a switch interval at a time anyway.
        if job.handoff.acquire(True, self.handoff_s):
            return job.outcome()  # type: ignore[no-any-return]
        with self._lock:
            # Decided under the lock: code done after it is answered by the
            # future (set by the thread), never by both.
            done = job.fn_done
            if not done:
                job.future = future = loop.create_future()
        if done:
            return job.outcome()  # type: ignore[no-any-return]
        job.timer = loop.call_later(self.timeout, self._watch, job, what, then)
        try:
            result: T = await future
            return result
        except asyncio.CancelledError:
            # The worker gave up on it (shutdown): a thread still in the code
            # keeps the instance, which is never used again.
            if self._give_up(job):
                occupant.abandon("its workflow task was cancelled while its code ran")
            raise
        finally:
            job.timer.cancel()

    def close(self) -> None:
        """Let the threads end; none is waited for (a stuck one may never return)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            serving = self._serving
        for _ in range(serving):
            self._jobs.put(None)

    # ------------------------------------------------------------------ the event loop's side

    def _submit(self, job: _Job) -> None:
        with self._lock:
            if self._closed:
                raise RuntimeError("the worker's workflow threads are closed (it is stopping)")
            self._waiting += 1
            spawn = self._waiting > self._idle and self._serving < self.size
            if spawn:
                self._serving += 1
                self._started += 1
                number = self._started
        self._jobs.put(job)
        if spawn:
            threading.Thread(target=self._serve, name=f"{self._name}-{number}", daemon=True).start()

    def _watch(self, job: _Job, what: str, then: str) -> None:
        """The timer of a running job: a deadlock, or a later look."""
        assert job.future is not None
        if job.future.done():
            return
        assert self.timeout is not None
        started = job.started_at
        if started is None:  # queued behind busy threads: its time has not begun
            job.timer = job.loop.call_later(self.timeout, self._watch, job, what, then)
            return
        since = max(started, job.occupant.progress_at)
        left = since + self.timeout - time.monotonic()
        if left > 0:
            job.timer = job.loop.call_later(left, self._watch, job, what, then)
            return
        stack = self._stack_of(job)
        if not self._give_up(job):
            return  # it returned just now: its result is on its way
        error = DeadlockError(
            f"{what} did not yield within {self.timeout:g} s: blocking calls such as "
            f"time.sleep or sync I/O belong in activities, and a loop must await something. {then}"
        )
        error.stack = stack
        job.occupant.abandon(f"DeadlockError: {error}")
        log.warning(
            "%s did not yield within %g s: its thread is left behind (%d stuck now)%s",
            what,
            self.timeout,
            self._stuck,
            ""
            if job.replaced
            else "; no new thread takes its place: this worker now runs "
            "fewer workflow tasks at once until stuck threads return (restart it after "
            "fixing the code)",
        )
        job.future.set_exception(error)

    def _give_up(self, job: _Job) -> bool:
        """Abandon ``job`` if its code still runs (True); False if it never started
        (it never will), already returned or was given up already."""
        with self._lock:
            if job.started_at is None:
                job.skip = True  # the thread that takes it skips it
                return False
            # A cancel can reach the task after the timer gave up on the job
            # in the same loop turn: its thread is stuck once, not twice.
            if job.fn_done or job.abandoned:
                return False
            job.abandoned = True
            self._stuck += 1
            if self._stuck <= self.max_stuck:
                job.replaced = True
                self._serving -= 1
                spawn = self._waiting > self._idle and not self._closed
                if spawn:
                    self._serving += 1
                    self._started += 1
                    number = self._started
            else:
                spawn = False
            assert job.ident is not None
            job.interrupted = _raise_in(job.ident, _Interrupted) == 1
        if spawn:
            threading.Thread(target=self._serve, name=f"{self._name}-{number}", daemon=True).start()
        return True

    @staticmethod
    def _stack_of(job: _Job) -> str:
        frame = sys._current_frames().get(job.ident or 0)
        if frame is None:
            return ""
        return "".join(traceback.format_stack(frame))

    # ------------------------------------------------------------------ the threads' side

    def _serve(self) -> None:
        ident = threading.get_ident()
        while True:
            with self._lock:
                self._idle += 1
            job = self._jobs.get()
            with self._lock:
                self._idle -= 1
                if job is None:
                    self._serving -= 1
                    return
                self._waiting -= 1
            if not self._run(job, ident):
                return

    def _run(self, job: _Job, ident: int) -> bool:
        """Run one job; False if this thread must end (it was replaced while stuck)."""
        try:
            # An interrupt can only be sent once the job has started, and
            # from then on it lands in this try, wherever it lands.
            with self._lock:
                if job.skip:  # given up before it started
                    return True
                job.ident = ident
                job.started_at = time.monotonic()
            job.value = job.context.run(job.fn)
        except BaseException as exc:
            job.error = exc
        while True:
            # An interrupt sent as the code returned may land anywhere up to
            # the point _finish clears it.
            try:
                abandoned, future = self._finish(job)
                break
            except _Interrupted:
                continue
        if abandoned:
            return self._come_back(job, job.error)
        if future is None:
            job.handoff.release()
        else:
            # A closed loop raises: nobody waits for the answer any more.
            with contextlib.suppress(RuntimeError):
                job.loop.call_soon_threadsafe(_settle, future, job.value, job.error)
        return True

    def _finish(self, job: _Job) -> tuple[bool, asyncio.Future[Any] | None]:
        with self._lock:
            job.fn_done = True
            if job.interrupted:
                _raise_in(threading.get_ident(), None)  # clear one not delivered yet
            return job.abandoned, job.future

    def _come_back(self, job: _Job, error: BaseException | None) -> bool:
        """A stuck thread left the code: tear its instance down, then serve again
        unless another thread took its place and the pool is full."""
        started = job.started_at or time.monotonic()
        if job.interrupted:
            _release_logging_locks()
        log.info(
            "a workflow thread stuck in code for %.1f s is back (%s)",
            time.monotonic() - started,
            "interrupted" if isinstance(error, _Interrupted) else "it returned",
        )
        try:
            job.occupant.finish_abandoned()
        except BaseException:
            log.debug("tearing down an abandoned workflow instance failed", exc_info=True)
        with self._lock:
            self._stuck -= 1
            if not job.replaced:
                return not self._closed or self._serving_drop()
            if self._closed or self._serving >= self.size:
                return False
            self._serving += 1
            return True

    def _serving_drop(self) -> bool:
        # Closed while this thread was stuck (and kept its place): it ends.
        self._serving -= 1
        return False


def _settle(future: asyncio.Future[Any], value: Any, error: BaseException | None) -> None:
    if future.done():
        return
    if error is None:
        future.set_result(value)
    else:
        future.set_exception(error)


def _release_logging_locks() -> None:
    """Release the logging locks the calling thread still holds once out of the code.

    An interrupt can land between a handler's ``acquire()`` and the ``try``
    that releases it (``logging.Handler.handle``): the thread would keep the
    handler's lock for ever, and the next record any other thread (the event
    loop) logs through that handler would block it for good.
    """
    locks: list[Any] = [getattr(logging, "_lock", None)]
    for ref in list(getattr(logging, "_handlerList", ())):
        handler = ref()
        if handler is not None:
            locks.append(handler.lock)
    for lock in locks:
        owned = getattr(lock, "_is_owned", None)
        while owned is not None and owned():
            lock.release()


def _raise_in(ident: int, exc_type: type[BaseException] | None) -> int:
    """Have the thread ``ident`` raise ``exc_type`` at its next Python instruction
    (None clears one not raised yet); the number of threads it reached."""
    target = ctypes.py_object(exc_type) if exc_type is not None else None
    return int(ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(ident), target))
