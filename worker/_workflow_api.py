"""The workflow API's types: what a run knows of itself, and the runtime it calls.

:mod:`worker.workflow` re-exports the public ones; the worker's runtime
(:mod:`worker._workflow_runtime`) implements :class:`_Runtime`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import math
import random as _random
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, MutableMapping
from contextvars import ContextVar
from datetime import datetime, timedelta
from typing import Any

from worker.common import ActivityCancellationType, RetryPolicy
from worker.converter import PayloadConverter
from worker.wire import MAX_DURATION_S, RetryPolicyWire


@dataclasses.dataclass(frozen=True)
class WorkflowInfo:
    """What a workflow run knows about itself."""

    namespace: str
    """Namespace of the run."""

    workflow_id: str
    """The workflow id."""

    run_id: str
    """This run's id."""

    workflow_type: str
    """The workflow type name."""

    task_queue: str
    """Task queue the run's workflow tasks go to."""

    attempt: int
    """Attempt number of the run (retries of a whole workflow), 1 for the first."""

    first_run_id: str
    """Run id of the first run of the continue-as-new chain."""

    continued_from_run_id: str | None
    """Run id this run continued from, if it was started by continue-as-new."""

    history_length: int
    """Number of history events when the current workflow task started."""

    start_time: datetime
    """When the run started (UTC)."""

    memo: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    """The run's memo: what it was started with, and its own upserts since."""

    run_timeout: timedelta | None = None
    """How long the run may take before the server times it out; None: no limit."""

    execution_timeout: timedelta | None = None
    """How long the whole chain (this run, the runs before it and the ones
    continue-as-new or a retry give it) may take from its start; None: no limit."""

    retry_policy: RetryPolicy | None = None
    """The workflow's retry policy, from its start; None: its runs are not retried."""

    cron_schedule: str | None = None
    """The workflow's cron schedule, from its start; None: it is no cron workflow."""

    task_timeout: timedelta = timedelta(seconds=10)
    """How long a worker has for each of the run's workflow tasks."""

    search_attributes: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    """The run's custom search attributes when ``info()`` was called (with its upserts)."""

    target_version_changed: bool = False
    """Worker versioning: this run is pinned and its deployment now sends new
    work to another build. A long-running workflow can continue-as-new with
    ``versioning="auto-upgrade"`` to move there. Read at the current workflow
    task (not replayed): a guard turns it off for a run that keeps doing so
    without getting anything else done."""

    @property
    def continued_run_id(self) -> str | None:
        """``continued_from_run_id`` under the name Temporal's ``workflow.Info`` gives it."""
        return self.continued_from_run_id

    @property
    def first_execution_run_id(self) -> str:
        """``first_run_id`` under the name Temporal's ``workflow.Info`` gives it."""
        return self.first_run_id

    @property
    def parent(self) -> None:
        """Temporal's parent workflow of a child run: None, as Baton runs no
        child workflows (code that checks ``info().parent`` reads a top-level run)."""
        return None

    @property
    def root(self) -> None:
        """Temporal's root workflow of a child run: None, as for :attr:`parent`."""
        return None

    def get_current_history_length(self) -> int:
        """``history_length``, as Temporal's ``workflow.Info`` method reads it."""
        return self.history_length

    def is_continue_as_new_suggested(self) -> bool:
        """Whether the server suggests continuing as new (Temporal's ``workflow.Info`` method)."""
        rt = _current_runtime.get()
        return rt is not None and rt.continue_as_new_suggested()


def policy_of(value: Any) -> RetryPolicy | None:
    """A retry policy as history holds it (None: none)."""
    return None if not value else RetryPolicy.from_wire(RetryPolicyWire.model_validate(value))


def seconds_of(value: Any) -> timedelta | None:
    """A duration in seconds, as history holds it, as a timedelta (None: none)."""
    return None if value is None else timedelta(seconds=float(value))


class ContinueAsNewError(BaseException):
    """Raised by :func:`continue_as_new` to close the run and start a fresh one.

    It derives from ``BaseException`` so that ``except Exception`` in workflow
    code does not swallow it.
    """

    def __init__(
        self,
        args: tuple[Any, ...],
        workflow_type: str | None,
        task_queue: str | None,
        versioning: str | None = None,
        run_timeout_s: float | None = None,
        task_timeout_s: float | None = None,
        search_attributes: dict[str, Any] | None = None,
        memo: dict[str, Any] | None = None,
    ):
        super().__init__("continue as new")
        #: The new run's search attributes; None keeps this run's.
        self.search_attributes = search_attributes
        #: The new run's memo (values); None keeps this run's.
        self.memo = memo
        self.input = args
        self.workflow_type = workflow_type
        self.task_queue = task_queue
        self.versioning = versioning
        self.run_timeout_s = run_timeout_s
        self.task_timeout_s = task_timeout_s


class ActivityHandle(asyncio.Future[Any]):
    """A scheduled activity: await it for its result; ``cancel()`` asks the server to cancel it.

    Cancelling the handle (or a task awaiting it, or the run on the
    workflow's cancel request) issues RequestCancelActivity and raises in the
    awaiting code at once, as Temporal's default cancellation type does; the
    activity learns of it at its next heartbeat. What it raises is an
    :class:`~worker.errors.ActivityError` (``retry_state``
    ``cancel_requested``) whose cause is a :class:`~worker.errors.CanceledError`,
    as in Temporal, and also an ``asyncio.CancelledError``, so either
    ``except`` takes it. If the workflow lets it escape its run method
    without a cancel request of its own, the workflow fails with that error
    (as in Temporal), rather than being retried forever. A cancel from a
    timer's callback (``asyncio.timeout()``) raises a plain
    ``asyncio.CancelledError``, which that timeout turns into ``TimeoutError``.
    Its ``cancellation_type`` may wait for the activity to close first, or
    not ask the server at all.
    """

    def __init__(
        self,
        *,
        loop: asyncio.AbstractEventLoop,
        activity_id: str,
        activity_type: str,
        on_cancel: Callable[[ActivityHandle], tuple[BaseException | None, bool]],
    ) -> None:
        super().__init__(loop=loop)
        self.activity_id = activity_id
        self.activity_type = activity_type
        self._on_cancel = on_cancel

    def cancel(self, msg: Any | None = None) -> bool:
        if self.done():
            return False
        reason, as_error = self._on_cancel(self)
        if reason is None:
            return True  # resolved when the activity closes (WAIT_CANCELLATION_COMPLETED)
        if not as_error or msg is not None:
            return super().cancel(reason if msg is None else msg)
        self.set_exception(reason)
        self._log_traceback = False  # a handle nobody awaits is no unread error
        return True


class _Runtime(ABC):
    """What the workflow instance being activated provides to this module."""

    @abstractmethod
    def info(self) -> WorkflowInfo: ...

    @abstractmethod
    def now(self) -> datetime: ...

    @abstractmethod
    def random(self) -> _random.Random: ...

    @abstractmethod
    def is_replaying(self) -> bool: ...

    @abstractmethod
    def upsert_search_attributes(self, attributes: Mapping[str, Any]) -> None: ...

    @abstractmethod
    def upsert_memo(self, updates: Mapping[str, Any]) -> None: ...

    @abstractmethod
    def memo_payloads(self) -> dict[str, Any]: ...

    @abstractmethod
    def pause(self, reason: str) -> None: ...

    @abstractmethod
    def search_attributes(self) -> dict[str, Any]: ...

    @abstractmethod
    def patched(self, patch_id: str) -> bool: ...

    @abstractmethod
    def deprecate_patch(self, patch_id: str) -> None: ...

    @abstractmethod
    def continue_as_new_suggested(self) -> bool: ...

    @abstractmethod
    def all_handlers_finished(self) -> bool: ...

    @abstractmethod
    def start_activity(
        self,
        *,
        activity_type: str,
        args: tuple[Any, ...],
        task_queue: str | None,
        activity_id: str | None,
        schedule_to_close_s: float | None,
        schedule_to_start_s: float | None,
        start_to_close_s: float | None,
        heartbeat_s: float | None,
        retry_policy: RetryPolicyWire | None,
        result_type: Any,
        cancellation_type: ActivityCancellationType,
    ) -> ActivityHandle: ...

    @abstractmethod
    def wait_condition(self, fn: Callable[[], bool]) -> asyncio.Future[None]: ...

    @abstractmethod
    def set_signal_handler(self, name: str | None, handler: Callable[..., Any] | None) -> None: ...

    @abstractmethod
    def set_query_handler(self, name: str | None, handler: Callable[..., Any] | None) -> None: ...

    @abstractmethod
    def get_handler(self, kind: str, name: str | None) -> Callable[..., Any] | None:
        """The handler of ``kind`` set for ``name`` (None: the dynamic one), or None."""

    @abstractmethod
    def payload_converter(self) -> PayloadConverter: ...

    @abstractmethod
    def started_attributes(self) -> Mapping[str, Any]: ...

    @abstractmethod
    def set_update_handler(
        self,
        name: str | None,
        handler: Callable[..., Any] | None,
        validator: Callable[..., Any] | None,
    ) -> None: ...

    @abstractmethod
    def check_writable(self, what: str) -> None:
        """Raise ``RuntimeError`` in a query handler or an update validator."""

    @abstractmethod
    def misuse(self, exc: Exception) -> Exception:
        """Record an API misuse so the workflow task fails even if user code catches it."""


_current_runtime: ContextVar[_Runtime | None] = ContextVar("baton_workflow_runtime", default=None)


def _runtime() -> _Runtime:
    """The workflow being activated, or a RuntimeError naming the misuse."""
    rt = _current_runtime.get()
    if rt is None:
        raise RuntimeError(
            "not in a workflow: workflow.* functions may only be called from workflow code "
            "while a worker runs it"
        )
    return rt


class _ReplaySafeLogger(logging.LoggerAdapter):  # type: ignore[type-arg]
    """Drops records during replay (they were logged the first time) and tags the run."""

    def isEnabledFor(self, level: int) -> bool:
        rt = _current_runtime.get()
        if rt is not None and rt.is_replaying():
            return False
        return super().isEnabledFor(level)

    def process(
        self, msg: Any, kwargs: MutableMapping[str, Any]
    ) -> tuple[Any, MutableMapping[str, Any]]:
        rt = _current_runtime.get()
        if rt is not None:
            wf = rt.info()
            tags = {
                "workflow_id": wf.workflow_id,
                "run_id": wf.run_id,
                "workflow_type": wf.workflow_type,
                "namespace": wf.namespace,
            }
            kwargs["extra"] = {**tags, **(kwargs.get("extra") or {})}
        return msg, kwargs


def _to_seconds(value: timedelta | float | None, what: str) -> float | None:
    if value is None:
        return None
    seconds = value.total_seconds() if isinstance(value, timedelta) else value
    if isinstance(seconds, bool) or not isinstance(seconds, int | float):
        raise TypeError(f"{what} must be a timedelta, got {value!r}")
    if not seconds > 0 or not math.isfinite(seconds):  # NaN compares false
        raise ValueError(f"{what} must be a positive, finite duration, got {value!r}")
    if seconds > MAX_DURATION_S:  # the server's bound: it would refuse every attempt
        raise ValueError(f"{what} must be at most ten years, got {value!r}")
    return float(seconds)


def _is_zero(value: timedelta | float) -> bool:
    """Whether a duration is zero (a bool is no duration)."""
    if isinstance(value, timedelta):
        return value == timedelta(0)
    return not isinstance(value, bool) and isinstance(value, int | float) and value == 0
