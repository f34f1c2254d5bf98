"""Workflows: deterministic async classes whose every step is recorded.

Define one with :func:`defn` and :func:`run`, add :func:`signal`,
:func:`query` and :func:`update` handlers, and call the functions of this
module from its code: they reach the workflow instance being activated (the
"current runtime") and turn into commands the server records.

Workflow code must be deterministic: replaying the same history must issue the
same commands in the same order. Use :func:`now`, :func:`random`,
:func:`uuid4` and :func:`sleep` (or ``asyncio.sleep``, which is durable here)
instead of the clock, ``random`` and real sleeps, and do I/O in activities.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random as _random
import uuid as _uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, NoReturn, TypeVar, overload

from worker._call_args import NO_ARG, call_args
from worker._definition import (
    QUERY,
    SIGNAL,
    UPDATE,
    VersioningBehavior,
    WorkflowDefinition,
    define_workflow,
    mark_handler,
    mark_run,
    workflow_definition,
)
from worker._last_run import (
    get_last_completion_result,
    get_last_failure,
    has_last_completion_result,
)
from worker._search_attributes import normalized_attributes
from worker._workflow_activities import (
    execute_activity,
    execute_activity_method,
    execute_local_activity,
    execute_local_activity_method,
    start_activity,
    start_activity_method,
    start_local_activity,
    start_local_activity_method,
)
from worker._workflow_api import (
    ActivityHandle,
    ContinueAsNewError,
    WorkflowInfo,
    _current_runtime,
    _is_zero,
    _ReplaySafeLogger,
    _runtime,
    _to_seconds,
)
from worker._workflow_handler_api import (
    _NO_DEFAULT,
    get_dynamic_query_handler,
    get_dynamic_signal_handler,
    get_dynamic_update_handler,
    get_query_handler,
    get_signal_handler,
    get_update_handler,
    memo_payload_value,
    set_dynamic_query_handler,
    set_dynamic_signal_handler,
    set_dynamic_update_handler,
    set_query_handler,
    set_signal_handler,
    set_update_handler,
)
from worker._workflow_temporal import NondeterminismError as NondeterminismError
from worker._workflow_temporal import as_completed as as_completed
from worker._workflow_temporal import init as init
from worker._workflow_temporal import wait as wait
from worker._workflow_unsafe import unsafe as unsafe
from worker.common import ActivityCancellationType
from worker.common import RetryPolicy as RetryPolicy
from worker.converter import PayloadConverter
from worker.errors import InvalidArgumentError

__all__ = [
    "ActivityCancellationType",
    "ActivityHandle",
    "ContinueAsNewError",
    "NondeterminismError",
    "VersioningBehavior",
    "WorkflowDefinition",
    "WorkflowInfo",
    "all_handlers_finished",
    "as_completed",
    "continue_as_new",
    "continue_as_new_suggested",
    "defn",
    "deprecate_patch",
    "execute_activity",
    "execute_activity_method",
    "execute_local_activity",
    "execute_local_activity_method",
    "get_dynamic_query_handler",
    "get_dynamic_signal_handler",
    "get_dynamic_update_handler",
    "get_last_completion_result",
    "get_last_failure",
    "get_query_handler",
    "get_signal_handler",
    "get_update_handler",
    "has_last_completion_result",
    "in_workflow",
    "info",
    "init",
    "logger",
    "memo",
    "memo_value",
    "now",
    "patched",
    "pause",
    "payload_converter",
    "query",
    "random",
    "run",
    "search_attributes",
    "set_dynamic_query_handler",
    "set_dynamic_signal_handler",
    "set_dynamic_update_handler",
    "set_query_handler",
    "set_signal_handler",
    "set_update_handler",
    "signal",
    "sleep",
    "start_activity",
    "start_activity_method",
    "start_local_activity",
    "start_local_activity_method",
    "time",
    "time_ns",
    "unsafe",
    "update",
    "upsert_memo",
    "upsert_search_attributes",
    "uuid4",
    "wait",
    "wait_condition",
]

C = TypeVar("C", bound=type)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
F = TypeVar("F", bound=Callable[..., Any])

# --------------------------------------------------------------------------- decorators


@overload
def defn(cls: C, /) -> C: ...


@overload
def defn(
    *,
    name: str | None = None,
    versioning_behavior: VersioningBehavior | None = None,
    failure_exception_types: Sequence[type[BaseException]] = (),
    dynamic: bool = False,
    sandboxed: bool = True,
) -> Callable[[C], C]: ...


def defn(
    cls: C | None = None,
    /,
    *,
    name: str | None = None,
    versioning_behavior: VersioningBehavior | str | None = None,
    failure_exception_types: Sequence[type[BaseException]] = (),
    dynamic: bool = False,
    sandboxed: bool = True,
) -> C | Callable[[C], C]:
    """Make a class a workflow, named ``name`` or after the class.

    ``versioning_behavior`` says where its runs go on a versioned worker
    (``Worker(deployment=...)``): ``"pinned"`` keeps a run on the build that
    started it until it closes; ``"auto-upgrade"`` moves it to its
    deployment's current build at its next workflow task.
    ``failure_exception_types`` (as in Temporal) fail the run, like an
    ``ApplicationError``, where another exception fails its workflow task.
    As in Temporal, ``dynamic=True`` (without a name) makes it run every
    workflow type the worker has no other workflow of: its run method takes
    one ``args: Sequence[RawValue]`` (decode each with
    :func:`payload_converter`) and ``info().workflow_type`` names the type.
    ``sandboxed`` is taken as Temporal code writes it and changes nothing:
    Baton runs workflow code without a sandbox.

    Raises:
        TypeError: Not a class.
        ValueError: No ``@run`` method, more than one, or two handlers of the
            same kind sharing a name.
    """

    def decorate(c: C) -> C:
        define_workflow(c, name, versioning_behavior, failure_exception_types, dynamic)
        return c

    if cls is not None:
        return decorate(cls)
    return decorate


def run(fn: F) -> F:
    """Mark the ``async def`` method that is the workflow's entry point.

    Raises:
        TypeError: The method is not ``async def``.
    """
    mark_run(fn)
    return fn


def _handler_decorator(
    kind: str, fn: F | None, name: str | None, dynamic: bool = False
) -> F | Callable[[F], F]:
    def decorate(f: F) -> F:
        mark_handler(kind, f, name, dynamic)
        return f

    if fn is not None:
        return decorate(fn)
    return decorate


@overload
def signal(fn: F, /) -> F: ...


@overload
def signal(*, name: str | None = None, dynamic: bool = False) -> Callable[[F], F]: ...


def signal(
    fn: F | None = None, /, *, name: str | None = None, dynamic: bool = False
) -> F | Callable[[F], F]:
    """Mark a method (sync or async) as a signal handler named ``name`` or after it.

    Signals that arrive before their handler exists (see
    :func:`set_signal_handler`) are buffered and delivered when it is set.
    ``dynamic=True`` (as in Temporal) takes every signal no handler of its
    name takes: the method takes ``(self, name: str, args: Sequence[RawValue])``.
    """
    return _handler_decorator(SIGNAL, fn, name, dynamic)


@overload
def query(fn: F, /) -> F: ...


@overload
def query(*, name: str | None = None, dynamic: bool = False) -> Callable[[F], F]: ...


def query(
    fn: F | None = None, /, *, name: str | None = None, dynamic: bool = False
) -> F | Callable[[F], F]:
    """Mark a plain (not async) method as a query handler; it must only read state.

    ``dynamic=True`` takes every query no handler of its name takes, as a
    dynamic signal handler does.
    """
    return _handler_decorator(QUERY, fn, name, dynamic)


@overload
def update(fn: F, /) -> F: ...


@overload
def update(*, name: str | None = None, dynamic: bool = False) -> Callable[[F], F]: ...


def update(
    fn: F | None = None, /, *, name: str | None = None, dynamic: bool = False
) -> F | Callable[[F], F]:
    """Mark a method as an update handler; ``@handler.validator`` adds a validator.

    The validator (a plain method with the same parameters) runs before the
    update is accepted; raising rejects the update and records nothing.
    ``dynamic=True`` takes every update no handler of its name takes, as a
    dynamic signal handler does (its validator takes the same arguments).
    """
    return _handler_decorator(UPDATE, fn, name, dynamic)


def in_workflow() -> bool:
    """Whether the caller runs inside workflow code."""
    return _current_runtime.get() is not None


def all_handlers_finished() -> bool:
    """Whether every signal and update handler that started has returned, as
    in Temporal: ``await workflow.wait_condition(workflow.all_handlers_finished)``
    before the run returns or continues as new lets an update in flight
    finish (a run that closes fails the updates it leaves open)."""
    return _runtime().all_handlers_finished()


def info() -> WorkflowInfo:
    """The current run's info."""
    return _runtime().info()


def now() -> datetime:
    """History time: when the current workflow task started (UTC, tz-aware)."""
    return _runtime().now()


def time() -> float:
    """History time in seconds since the epoch: :func:`now` as a number, as
    Temporal's ``workflow.time()`` (and the workflow loop's ``time()``) reads it."""
    return now().timestamp()


def time_ns() -> int:
    """History time in whole nanoseconds since the epoch (Temporal's ``workflow.time_ns()``)."""
    return (now() - _EPOCH) // timedelta(microseconds=1) * 1000


def random() -> _random.Random:
    """A random generator seeded from the run id: the same values on every replay."""
    return _runtime().random()


def uuid4() -> _uuid.UUID:
    """A version-4 UUID drawn from :func:`random`: the same on every replay."""
    return _uuid.UUID(int=_runtime().random().getrandbits(128), version=4)


def pause(reason: str = "") -> None:
    """Pause this workflow after the current workflow task, until someone unpauses it.

    A command: its ``WorkflowExecutionPaused`` event is recorded with the
    task's other commands (so it replays). The code goes on to the end of the
    task; nothing more is dispatched to the run until ``baton workflow
    unpause`` (or ``handle.unpause()``).
    """
    _runtime().pause(reason)


def upsert_search_attributes(attributes: Mapping[str, Any]) -> None:
    """Set (or, with a None value, remove) custom search attributes of this run.

    The names must be registered in the namespace (`baton namespace
    search-attribute add`); datetimes are sent as RFC 3339 in UTC. The change is
    recorded as an UpsertWorkflowSearchAttributes event when the workflow task
    completes, in the same transaction as the run's list entry, so it replays
    and replicates like any command. A name that is not registered or a value
    of the wrong type fails the workflow task (it is retried), nothing is stored.
    """
    _runtime().upsert_search_attributes(attributes)


def upsert_memo(updates: Mapping[str, Any]) -> None:
    """Set (a None value: remove) keys of this run's memo, as Temporal's does: a
    WorkflowPropertiesModified event that :func:`info`, ``describe`` and a
    continue-as-new keeping the memo see (values are payloads, as inputs are)."""
    _runtime().upsert_memo(updates)


def search_attributes() -> dict[str, Any]:
    """The run's custom search attributes: those it started with plus its upserts."""
    return _runtime().search_attributes()


def patched(patch_id: str) -> bool:
    """Whether code after a change may run: True for new runs and runs that already took it.

    The first call for ``patch_id`` in a run records a marker; on replay it is
    True only if the replayed workflow task recorded that marker. The answer is
    remembered for the rest of the run.
    """
    return _runtime().patched(patch_id)


def deprecate_patch(patch_id: str) -> None:
    """Declare that every run still open has taken ``patch_id``; its markers are then ignored."""
    _runtime().deprecate_patch(patch_id)


def continue_as_new_suggested() -> bool:
    """Whether the server suggests continuing as new (history is getting long)."""
    return _runtime().continue_as_new_suggested()


def continue_as_new(
    *positional: Any,
    arg: Any = NO_ARG,
    args: Sequence[Any] | None = None,
    workflow: str | type | Callable[..., Any] | None = None,
    task_queue: str | None = None,
    versioning: Literal["auto-upgrade"] | None = None,
    run_timeout: timedelta | None = None,
    task_timeout: timedelta | None = None,
    search_attributes: Mapping[str, Any] | None = None,
    memo: Mapping[str, Any] | None = None,
) -> NoReturn:
    """Close this run and start a new one of the same workflow id with ``args``.

    Args:
        *positional: Input of the new run.
        arg: Its one argument, by Temporal's keyword (not beside the others).
        args: The input as a list, as Temporal takes it (not beside ``*positional``).
        workflow: Workflow type of the new run (class, run method or name); this
            one's if None.
        task_queue: Task queue of the new run; this one's if None.
        run_timeout: Run timeout of the new run (up to ten years); this one's
            if None.
        task_timeout: Workflow task timeout of the new run (up to an hour);
            this one's if None.
        versioning: ``"auto-upgrade"`` sends the new run to its deployment's
            target build (where a pinned type then pins it): how a
            long-running pinned workflow moves to a new build when
            ``info().target_version_changed`` says there is one. By default a
            pinned run stays on its build.
        search_attributes: The new run's search attributes, in place of this
            run's (as Temporal's ``continue_as_new`` takes them; ``{}`` starts
            it with none); this one's if None.
        memo: The new run's memo in place of this run's (values, encoded as
            arguments are); this one's if None.

    Raises:
        ContinueAsNewError: Always; let it propagate out of the run method.
        RuntimeError: Called from a query handler or an update validator.
    """
    rt = _runtime()
    rt.check_writable("workflow.continue_as_new()")
    try:
        args = call_args(positional, args, "continue_as_new", arg)
    except InvalidArgumentError as exc:
        raise rt.misuse(exc) from None
    workflow_type: str | None
    if workflow is None or isinstance(workflow, str):
        workflow_type = workflow
    else:
        try:
            workflow_type = workflow_definition(workflow).name
        except TypeError as exc:
            raise rt.misuse(exc) from None
    if versioning not in (None, "auto-upgrade"):
        raise rt.misuse(ValueError(f"versioning {versioning!r} is not 'auto-upgrade' or None"))
    try:
        run_s = _to_seconds(run_timeout, "run_timeout")
        task_s = _to_seconds(task_timeout, "task_timeout")
        # the server's bound (ten years, _to_seconds checks): past it every
        # attempt of this task would fail
        if task_s is not None and task_s > 3600:
            raise ValueError(f"task_timeout must be at most an hour, got {task_timeout}")
        attributes = None
        if search_attributes is not None:
            if not isinstance(search_attributes, Mapping):
                raise TypeError(
                    "search_attributes must be a mapping of name to value, "
                    f"not {search_attributes!r}"
                )
            # a None or [] value sets nothing, as an upsert of one unsets it
            attributes = {
                k: v
                for k, v in normalized_attributes(search_attributes).items()
                if v is not None and v != []
            }
        if memo is not None and not isinstance(memo, Mapping):
            raise TypeError(f"memo must be a mapping of name to value, not {memo!r}")
    except (TypeError, ValueError) as exc:
        raise rt.misuse(exc) from None
    raise ContinueAsNewError(
        tuple(args),
        workflow_type,
        task_queue,
        versioning,
        run_s,
        task_s,
        search_attributes=attributes,
        memo=None if memo is None else dict(memo),
    )


async def sleep(duration: timedelta | float) -> None:
    """Wait on a durable timer (``asyncio.sleep`` in workflow code does the same)."""
    rt = _runtime()
    seconds = duration.total_seconds() if isinstance(duration, timedelta) else duration
    if (
        isinstance(seconds, bool)
        or not isinstance(seconds, int | float)
        or not seconds >= 0  # NaN compares false
        or math.isinf(seconds)
    ):
        raise rt.misuse(
            ValueError(f"sleep duration must be a non-negative, finite duration, got {duration!r}")
        )
    await asyncio.sleep(seconds)


async def wait_condition(
    fn: Callable[[], bool],
    *,
    # A durable timer, not a wall-clock one: asyncio.timeout() would not replay.
    timeout: timedelta | float | None = None,
) -> None:
    """Wait until ``fn()`` is true; it is checked whenever the workflow has nothing else to run.

    A ``timeout`` of zero (as ``sleep`` takes) checks ``fn()`` once, without a timer.

    Raises:
        asyncio.TimeoutError: ``timeout`` (a durable timer) passed first.
    """
    rt = _runtime()
    try:
        if timeout is not None and _is_zero(timeout):
            seconds: float | None = 0.0
        else:
            seconds = _to_seconds(timeout, "wait_condition timeout")
    except (TypeError, ValueError) as exc:
        raise rt.misuse(exc) from None
    if seconds == 0.0:
        if fn():
            return
        raise TimeoutError("wait_condition timed out at once: its timeout is zero")
    fut = rt.wait_condition(fn)
    if seconds is None:
        await fut
    else:
        await asyncio.wait_for(fut, seconds)


def memo() -> Mapping[str, Any]:
    """The run's memo as values (its upserts included), as Temporal's ``workflow.memo()``."""
    return info().memo


def memo_value(key: str, default: Any = _NO_DEFAULT, *, type_hint: Any = None) -> Any:
    """One memo value decoded as ``type_hint`` (as Temporal's): ``default`` for a
    key the memo lacks, ``KeyError`` without one."""
    return memo_payload_value(_runtime(), key, default, type_hint)


def payload_converter() -> PayloadConverter:
    """The worker's payload converter, as Temporal's: what decodes a dynamic
    workflow's or handler's ``RawValue`` arguments
    (``payload_converter().from_payload(raw.payload, MyType)``)."""
    return _runtime().payload_converter()


logger = _ReplaySafeLogger(logging.getLogger("baton.workflow"), {})
"""A logger for workflow code that stays quiet while history is replayed."""
