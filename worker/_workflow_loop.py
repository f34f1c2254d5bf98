"""The deterministic asyncio event loop workflow code runs on.

Workflow code is ordinary asyncio code, so ``asyncio.sleep``,
``asyncio.wait_for``, ``asyncio.gather``, tasks and futures all work; what
makes it replayable is this loop: its clock is history time, its timers are
durable timers (StartTimer commands the server fires as TimerFired events),
its ready queue runs in a fixed order and is drained only while a workflow
task is being activated, and anything that does I/O or uses threads raises.
"""

from __future__ import annotations

import asyncio
import collections
import contextvars
import logging
import math
import weakref
from collections.abc import Callable
from typing import Any, Protocol

_log = logging.getLogger(__name__)


class LoopOwner(Protocol):
    """What the loop needs from the workflow instance driving it."""

    activating: bool

    def start_timer(self, timer: DurableTimer, delay: float) -> None:
        """Issue StartTimer for ``timer`` (assigning ``timer.timer_id``)."""

    def cancel_timer(self, timer: DurableTimer) -> None:
        """Issue CancelTimer for a timer that has not fired."""

    def callback_failed(self, exc: BaseException) -> None:
        """A plain callback (not a task) raised during an activation."""


class DurableTimer(asyncio.TimerHandle):
    """A timer backed by a StartTimer command; it runs when TimerFired is delivered."""

    timer_id: str = ""
    fired: bool = False

    def cancel(self) -> None:
        # asyncio.sleep cancels its handle in a ``finally`` even after the
        # timer ran; only a timer still pending in history needs CancelTimer.
        if not self.fired and not self.cancelled():
            loop = self._loop  # type: ignore[attr-defined]
            assert isinstance(loop, WorkflowLoop)
            loop.owner.cancel_timer(self)
        super().cancel()


class _Call:
    """A ready callback of the runtime itself: the part of ``asyncio.Handle``
    run_ready uses, without its bookkeeping (a replay queues thousands).

    Like a Handle it runs in a copy of the context current when it was queued.
    The callback must handle its own errors.
    """

    __slots__ = ("_args", "_context", "_fn")

    def __init__(self, fn: Callable[..., object], args: tuple[Any, ...]) -> None:
        self._fn = fn
        self._args = args
        self._context = contextvars.copy_context()

    def cancelled(self) -> bool:
        return False

    def _run(self) -> None:
        self._context.run(self._fn, *self._args)


def _forbidden(name: str) -> Callable[..., Any]:
    def method(self: WorkflowLoop, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError(
            f"loop.{name}() is not allowed in workflow code: workflow code must be deterministic "
            "and may not do I/O, use threads or block; do that in an activity"
        )

    method.__name__ = name
    return method


class WorkflowLoop(asyncio.AbstractEventLoop):
    """An event loop whose only input is history, stepped by the workflow instance."""

    def __init__(self, owner: LoopOwner) -> None:
        self.owner = owner
        self._ready: collections.deque[asyncio.Handle | _Call] = collections.deque()
        self._now = 0.0
        # This loop's tasks: asyncio.all_tasks() would walk every task of the
        # process (each cached workflow's among them) on every eviction.
        self._tasks: weakref.WeakSet[asyncio.Task[Any]] = weakref.WeakSet()
        self._exception_handler: (
            Callable[[asyncio.AbstractEventLoop, dict[str, Any]], object] | None
        ) = None

    # ------------------------------------------------------------------ driving

    def set_time(self, now: float) -> None:
        """Set history time (seconds since the epoch) for the next activation."""
        self._now = now

    def run_ready(self, should_stop: Callable[[], bool]) -> None:
        """Run ready callbacks, in order, until none are left or ``should_stop()``."""
        while self._ready:
            handle = self._ready.popleft()
            if handle.cancelled():
                continue
            handle._run()
            if should_stop():
                return

    def fire(self, timer: DurableTimer) -> None:
        """Deliver a TimerFired: the timer's callback becomes ready."""
        timer.fired = True
        if not timer.cancelled():
            self._ready.append(timer)

    def has_ready(self) -> bool:
        return bool(self._ready)

    def clear(self) -> None:
        self._ready.clear()

    # ------------------------------------------------------------------ asyncio API

    def time(self) -> float:
        return self._now

    def call_soon(  # type: ignore[override]
        self,
        callback: Callable[..., object],
        *args: Any,
        context: contextvars.Context | None = None,
    ) -> asyncio.Handle:
        handle = asyncio.Handle(callback, args, self, context)
        self._ready.append(handle)
        return handle

    def call_soon_quietly(self, callback: Callable[..., object], *args: Any) -> None:
        """Queue a callback of the runtime that handles its own errors (see :class:`_Call`)."""
        self._ready.append(_Call(callback, args))

    def call_later(  # type: ignore[override]
        self,
        delay: float,
        callback: Callable[..., object],
        *args: Any,
        context: contextvars.Context | None = None,
    ) -> asyncio.TimerHandle:
        if not math.isfinite(delay):
            # a timer is recorded with its duration, which JSON cannot carry
            raise ValueError(f"a workflow timer needs a finite delay, got {delay!r}")
        when = self._now + delay
        if delay <= 0:
            # Already due: no timer to record, it simply runs next.
            handle = asyncio.TimerHandle(when, callback, args, self, context)
            self._ready.append(handle)
            return handle
        timer = DurableTimer(when, callback, args, self, context)
        self.owner.start_timer(timer, float(delay))
        return timer

    def call_at(  # type: ignore[override]
        self,
        when: float,
        callback: Callable[..., object],
        *args: Any,
        context: contextvars.Context | None = None,
    ) -> asyncio.TimerHandle:
        return self.call_later(when - self._now, callback, *args, context=context)

    def _timer_handle_cancelled(self, handle: asyncio.TimerHandle) -> None:
        pass

    def create_future(self) -> asyncio.Future[Any]:
        return asyncio.Future(loop=self)

    def create_task(
        self,
        coro: Any,
        *,
        name: str | None = None,
        context: contextvars.Context | None = None,
    ) -> asyncio.Task[Any]:
        task = asyncio.Task(coro, loop=self, name=name, context=context)
        self._tasks.add(task)
        return task

    def tasks(self) -> list[asyncio.Task[Any]]:
        """The tasks created on this loop that are still referenced anywhere."""
        return list(self._tasks)

    def start_task_now(self, coro: Any, *, name: str | None = None) -> asyncio.Task[Any]:
        """A task whose first step runs now, inside the running callback.

        The same as awaiting ``coro`` inside a task at this point: it runs up
        to its first suspension before anything else that is ready.
        """
        task = self.create_task(coro, name=name)
        step = self._ready.pop()  # the first step Task() just scheduled
        step._run()
        return task

    def get_task_factory(self) -> None:
        return None

    def set_task_factory(self, factory: Any) -> None:
        raise RuntimeError("workflow code may not replace the task factory")

    def is_running(self) -> bool:
        return self.owner.activating

    def is_closed(self) -> bool:
        return False

    def get_debug(self) -> bool:
        return False

    def set_debug(self, enabled: bool) -> None:
        pass

    def get_exception_handler(self) -> Any:
        return self._exception_handler

    def set_exception_handler(self, handler: Any) -> None:
        self._exception_handler = handler

    def call_exception_handler(self, context: dict[str, Any]) -> None:
        if self._exception_handler is not None:
            try:
                self._exception_handler(self, context)
            except Exception:
                _log.exception("workflow loop exception handler raised")
            return
        self.default_exception_handler(context)

    def default_exception_handler(self, context: dict[str, Any]) -> None:
        exc = context.get("exception")
        # A callback that raises mid-activation is a bug in workflow code;
        # the rest (futures garbage-collected with an unread error, tasks
        # dropped at eviction) is only worth a debug line.
        if "handle" in context and exc is not None and self.owner.activating:
            self.owner.callback_failed(exc)
        else:
            _log.debug("workflow loop: %s", context.get("message"), exc_info=exc)

    async def shutdown_asyncgens(self) -> None:
        pass


for _name in (
    "run_forever",
    "run_until_complete",
    "stop",
    "close",
    "shutdown_default_executor",
    "call_soon_threadsafe",
    "run_in_executor",
    "set_default_executor",
    "getaddrinfo",
    "getnameinfo",
    "create_connection",
    "create_server",
    "sendfile",
    "start_tls",
    "create_unix_connection",
    "create_unix_server",
    "connect_accepted_socket",
    "create_datagram_endpoint",
    "connect_read_pipe",
    "connect_write_pipe",
    "subprocess_shell",
    "subprocess_exec",
    "add_reader",
    "remove_reader",
    "add_writer",
    "remove_writer",
    "sock_recv",
    "sock_recv_into",
    "sock_recvfrom",
    "sock_recvfrom_into",
    "sock_sendall",
    "sock_sendto",
    "sock_connect",
    "sock_accept",
    "sock_sendfile",
    "add_signal_handler",
    "remove_signal_handler",
):
    setattr(WorkflowLoop, _name, _forbidden(_name))
