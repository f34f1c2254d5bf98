"""The end of a workflow instance: disposal, and abandonment by a stuck thread.

An instance is unusable after a failed activation, after
:meth:`Teardown.dispose` (eviction) and after :meth:`Teardown.abandon`: its
workflow code did not yield and a thread is still in it (see
:mod:`worker._workflow_threads`). Teardown cancels what still runs so user
coroutines finish their ``finally`` blocks now, not at some garbage collection
inside a later activation; it runs on the thread that owns the instance, so an
abandoned instance is torn down by its stuck thread when (if) it comes back.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from worker._workflow_loop import WorkflowLoop

_log = logging.getLogger("worker._workflow_instance")

# Teardown runs cancelled user code to its end; code that keeps rescheduling
# itself is cut off after this many callbacks.
_TEARDOWN_MAX_STEPS = 10_000


class Teardown:
    """Mixin of :class:`~worker._workflow_instance.WorkflowInstance`: making it unusable."""

    _loop: WorkflowLoop
    _conditions: list[Any]
    _unusable: str | None
    _workflow_id: str
    activating: bool
    #: A thread left running in its code (abandoned): only that thread may tear it down.
    _abandoned: bool = False
    _torn_down: bool = False
    #: ``time.monotonic()`` when its code last began a task (read by the deadlock detector).
    progress_at: float = 0.0
    #: Where a teardown that runs workflow code goes (the worker: a workflow
    #: thread, as user ``finally`` blocks may block); None: right here.
    defer_teardown: Callable[[Callable[[], None]], None] | None = None

    def dispose(self) -> None:
        """Cancel what still runs and make the instance unusable (eviction).

        An abandoned instance is only marked: its stuck thread tears it down.
        """
        if self._abandoned or self._unusable is not None:
            return
        self._unusable = "disposed"
        if self.defer_teardown is not None and any(not t.done() for t in self._loop.tasks()):
            self.defer_teardown(self._teardown)
        else:
            self._teardown()  # nothing of the code runs: no need to go elsewhere

    def abandon(self, reason: str) -> None:
        """Its code did not yield and a thread is still in it: never use it again.

        Called from the worker's event loop; touches nothing the thread uses
        but the flag that makes every later call refuse.
        """
        self._abandoned = True
        if self._unusable is None:
            self._unusable = reason

    def finish_abandoned(self) -> None:
        """On the stuck thread, once it left the code: tear the instance down."""
        if self._unusable is None:  # pragma: no cover - abandon() set it
            self._unusable = "abandoned"
        self._teardown()

    def _check_usable(self) -> None:
        if self._unusable is not None:
            raise RuntimeError(
                f"this workflow instance can no longer be used ({self._unusable}); "
                "discard it and replay the history in a new instance"
            )

    def _make_unusable(self, exc: BaseException | None) -> None:
        if self._unusable is not None:
            return
        self._unusable = "disposed" if exc is None else f"{type(exc).__name__}: {exc}"
        if not self._abandoned:
            self._teardown()

    def _teardown(self) -> None:
        if self._torn_down:
            return
        self._torn_down = True
        outer_loop = asyncio.events._get_running_loop()
        asyncio.events._set_running_loop(self._loop)
        self.activating = True
        try:
            for task in self._loop.tasks():
                task.cancel()
            steps = 0
            while self._loop.has_ready() and steps < _TEARDOWN_MAX_STEPS:
                self._loop.run_ready(lambda: True)
                steps += 1
        except Exception:
            _log.debug("error while tearing down workflow %s", self._workflow_id, exc_info=True)
        finally:
            self.activating = False
            asyncio.events._set_running_loop(outer_loop)
            self._loop.clear()
            self._conditions.clear()
