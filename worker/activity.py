"""Activities: the functions workflows call to do I/O.

Define one with :func:`defn`; inside a running activity, :func:`info`,
:func:`heartbeat` and :func:`is_cancelled` reach the attempt being run.

The worker loop runs each attempt inside an :class:`_ActivityContext` set with
:func:`_set_context` and cleared with :func:`_reset_context`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable, MutableMapping, Sequence
from contextvars import ContextVar, Token
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar, overload

from worker._definition import ActivityDefinition, define_activity
from worker.converter import PayloadConverter
from worker.wire import ActivityTask

if TYPE_CHECKING:
    from worker.client import Client

__all__ = [
    "ActivityDefinition",
    "ActivityInfo",
    "client",
    "defn",
    "heartbeat",
    "in_activity",
    "info",
    "is_cancelled",
    "is_worker_shutdown",
    "logger",
    "payload_converter",
    "raise_complete_async",
    "wait_for_cancelled",
    "wait_for_cancelled_sync",
    "wait_for_worker_shutdown",
    "wait_for_worker_shutdown_sync",
]

F = TypeVar("F", bound=Callable[..., Any])


@overload
def defn(fn: F, /) -> F: ...


@overload
def defn(*, name: str | None = None, dynamic: bool = False) -> Callable[[F], F]: ...


def defn(
    fn: F | None = None, /, *, name: str | None = None, dynamic: bool = False
) -> F | Callable[[F], F]:
    """Make a function an activity, named ``name`` or after the function.

    Use as ``@activity.defn`` or ``@activity.defn(name="Other")``. The function
    may be ``async def`` (run on the worker's event loop) or plain (run in a
    thread by the worker). As in Temporal, ``dynamic=True`` makes it run every
    activity type the worker has no other activity of: it takes one
    ``args: Sequence[RawValue]`` (decode each with :func:`payload_converter`)
    and reads its type from ``info().activity_type``.

    Raises:
        TypeError: Not a function, or decorated twice.
        ValueError: An empty name.
    """

    def decorate(f: F) -> F:
        define_activity(f, name, dynamic)
        return f

    if fn is not None:
        return decorate(fn)
    return decorate


@dataclasses.dataclass(frozen=True)
class ActivityInfo:
    """What an activity attempt knows about itself."""

    namespace: str
    """Namespace of the workflow that scheduled it."""

    workflow_id: str
    """Id of the workflow that scheduled it."""

    run_id: str
    """Run id of the workflow that scheduled it."""

    workflow_type: str
    """Type name of the workflow that scheduled it."""

    activity_id: str
    """Id of the activity, unique within the workflow run."""

    activity_type: str
    """The activity's type name."""

    task_queue: str
    """Task queue the attempt was dispatched on."""

    attempt: int
    """Attempt number, 1 for the first."""

    heartbeat_details: Sequence[Any]
    """Decoded details of the last heartbeat of an earlier attempt (empty if none)."""

    scheduled_time: datetime
    """When the activity was first scheduled (UTC), whatever the attempt: its
    schedule-to-close deadline is ``scheduled_time + schedule_to_close_timeout``
    (Temporal's ``scheduled_time``)."""

    current_attempt_scheduled_time: datetime
    """When this attempt was scheduled (UTC): after a retry's backoff, the
    end of it."""

    started_time: datetime
    """When this attempt started (UTC)."""

    start_to_close_timeout: timedelta | None
    """Time allowed for one attempt, if set: the configured value, as Temporal
    reports it, even when less of the schedule-to-close time is left."""

    schedule_to_close_timeout: timedelta | None
    """Time allowed for all attempts together, if set."""

    heartbeat_timeout: timedelta | None
    """Longest gap allowed between heartbeats, if set."""

    task_token: bytes = b""
    """Names this attempt to :meth:`worker.Client.get_async_activity_handle`,
    which completes it after :func:`raise_complete_async` (as in Temporal)."""

    _flags: dict[str, bool] = dataclasses.field(default_factory=dict, repr=False, compare=False)

    @property
    def workflow_run_id(self) -> str:
        """``run_id`` under the name Temporal's ``activity.Info`` gives it."""
        return self.run_id

    @property
    def workflow_namespace(self) -> str:
        """``namespace`` under the name Temporal's ``activity.Info`` gives it."""
        return self.namespace

    @property
    def paused(self) -> bool:
        """An operator paused the activity (or its retry policy did): this attempt
        may finish, but no new one starts until it is unpaused. Learnt from the
        heartbeat responses, so only an activity that heartbeats sees it."""
        return bool(self._flags.get("paused"))

    @staticmethod
    def from_task(task: ActivityTask, *, converter: PayloadConverter) -> ActivityInfo:
        """Build the info of an activity task whose payloads are codec-decoded."""
        return ActivityInfo(
            namespace=task.namespace,
            workflow_id=task.workflow_id,
            run_id=task.run_id,
            workflow_type=task.workflow_type,
            activity_id=task.activity_id,
            activity_type=task.activity_type,
            task_queue=task.task_queue,
            attempt=task.attempt,
            heartbeat_details=tuple(converter.from_payloads(task.heartbeat_details or [])),
            # a server of an earlier release sends no first schedule time
            scheduled_time=_parse_time(task.first_scheduled_time or task.scheduled_time),
            current_attempt_scheduled_time=_parse_time(task.scheduled_time),
            started_time=_parse_time(task.started_time),
            start_to_close_timeout=_seconds(task.start_to_close_s),
            schedule_to_close_timeout=_seconds(task.schedule_to_close_s),
            heartbeat_timeout=_seconds(task.heartbeat_s),
            task_token=task.task_token.encode(),
        )


def _parse_time(value: str) -> datetime:
    parsed = datetime.fromisoformat(value)
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _seconds(value: float | None) -> timedelta | None:
    return None if value is None else timedelta(seconds=value)


@dataclasses.dataclass(frozen=True)
class _ActivityContext:
    """What the worker loop provides to one running attempt.

    Attributes:
        info: The attempt's info.
        heartbeat: Called with the raw detail values of each ``heartbeat()``
            call; the worker encodes and sends them (throttled as it likes).
            It must not block: sync activities call it from their thread.
        cancelled: Set by the worker when it stops the attempt: the server
            asks for cancellation, the attempt timed out or its task is gone,
            or the worker's shutdown grace is over.
        client: The worker's client (``activity.client()``).
        worker_shutdown: Set when the worker begins to shut down.
    """

    info: ActivityInfo
    heartbeat: Callable[[tuple[Any, ...]], None]
    cancelled: asyncio.Event
    converter: PayloadConverter = dataclasses.field(default_factory=PayloadConverter)
    client: Client | None = None
    worker_shutdown: asyncio.Event | None = None


_current_context: ContextVar[_ActivityContext | None] = ContextVar(
    "baton_activity_context", default=None
)


def _set_context(ctx: _ActivityContext) -> Token[_ActivityContext | None]:
    """Make ``ctx`` the current activity context; returns the token to reset it."""
    return _current_context.set(ctx)


def _reset_context(token: Token[_ActivityContext | None]) -> None:
    """Restore the context that was current before ``_set_context``."""
    _current_context.reset(token)


def _context() -> _ActivityContext:
    ctx = _current_context.get()
    if ctx is None:
        raise RuntimeError(
            "not in an activity: activity.info(), heartbeat() and is_cancelled() may only be "
            "called from code run by a worker as an activity"
        )
    return ctx


def in_activity() -> bool:
    """Whether the caller runs inside an activity."""
    return _current_context.get() is not None


def info() -> ActivityInfo:
    """The info of the running activity attempt."""
    return _context().info


def payload_converter() -> PayloadConverter:
    """The worker's payload converter, as Temporal's ``activity.payload_converter()``:
    what decodes a dynamic activity's ``RawValue`` arguments."""
    return _context().converter


def heartbeat(*details: Any) -> None:
    """Report progress; ``details`` reach the next attempt as ``info().heartbeat_details``."""
    _context().heartbeat(details)


def is_cancelled() -> bool:
    """Whether the attempt is being stopped: cancellation was requested, the
    server no longer waits for it (timed out), or the worker's shutdown grace
    is over. A sync (``def``) activity, whose thread cannot be interrupted,
    should check it and return or raise soon after it turns true: the worker
    waits a few seconds for that before it reports the attempt."""
    return _context().cancelled.is_set()


async def wait_for_cancelled() -> None:
    """Wait until cancellation of this activity is requested."""
    await _context().cancelled.wait()


def wait_for_cancelled_sync(timeout: timedelta | float | None = None) -> None:
    """:func:`wait_for_cancelled` for a plain (``def``) activity's thread, as
    Temporal's: block until :func:`is_cancelled` or ``timeout`` seconds."""
    _wait_sync(_context().cancelled, timeout)


def client() -> Client:
    """The client of the worker running this attempt, as Temporal's
    ``activity.client()`` (to start or signal a workflow, or complete another
    activity)."""
    c = _context().client
    if c is None:
        raise RuntimeError("this attempt was not run by a worker: it has no client")
    return c


def is_worker_shutdown() -> bool:
    """Whether the worker running this attempt has begun to shut down, as
    Temporal's: the attempt has the shutdown's grace to finish, then it is
    cancelled (:func:`is_cancelled`) and handed back for another worker."""
    event = _context().worker_shutdown
    return event is not None and event.is_set()


async def wait_for_worker_shutdown() -> None:
    """Wait until the worker running this attempt begins to shut down."""
    event = _context().worker_shutdown
    await (event.wait() if event is not None else asyncio.Event().wait())


def wait_for_worker_shutdown_sync(timeout: timedelta | float | None = None) -> None:
    """:func:`wait_for_worker_shutdown` for a plain (``def``) activity's thread:
    block until the worker begins to shut down or ``timeout`` seconds."""
    event = _context().worker_shutdown
    _wait_sync(event if event is not None else asyncio.Event(), timeout)


def _wait_sync(event: asyncio.Event, timeout: timedelta | float | None) -> None:
    # The event belongs to the worker's loop: a thread may read it, not await it.
    limit = timeout.total_seconds() if isinstance(timeout, timedelta) else timeout
    deadline = None if limit is None else time.monotonic() + limit
    while not event.is_set():
        left = None if deadline is None else deadline - time.monotonic()
        if left is not None and left <= 0:
            return
        time.sleep(0.05 if left is None else min(0.05, left))


class _CompleteAsyncError(BaseException):
    """Raised by :func:`raise_complete_async`: the worker reports nothing."""


def raise_complete_async() -> NoReturn:
    """End this attempt's code without completing the activity, as in Temporal.

    The worker reports no outcome: the activity stays running until a client
    completes, fails or cancels it with
    ``client.get_async_activity_handle(task_token=info().task_token)`` (or by
    workflow, run and activity id), heartbeating meanwhile if it has a
    heartbeat timeout; its start-to-close timeout still counts.
    """
    _context()  # only inside an activity
    raise _CompleteAsyncError()


class _ActivityLogger(logging.LoggerAdapter):  # type: ignore[type-arg]
    """Tags each record with the attempt that logged it (Temporal's ``activity.logger``)."""

    def process(
        self, msg: Any, kwargs: MutableMapping[str, Any]
    ) -> tuple[Any, MutableMapping[str, Any]]:
        ctx = _current_context.get()
        if ctx is not None:
            i = ctx.info
            tags = {
                "activity_id": i.activity_id,
                "activity_type": i.activity_type,
                "attempt": i.attempt,
                "workflow_id": i.workflow_id,
                "run_id": i.run_id,
                "namespace": i.namespace,
            }
            kwargs["extra"] = {**tags, **(kwargs.get("extra") or {})}
        return msg, kwargs


logger = _ActivityLogger(logging.getLogger("baton.activity"), {})
"""A logger for activity code: its records carry the activity, attempt and workflow."""
