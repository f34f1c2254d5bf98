"""Signals and updates delivered to a workflow run: decoding, validation, handlers.

A mixin of :class:`worker._workflow_runtime.WorkflowRuntime`, which holds the
state named here and issues the commands (accept, reject, complete update).
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pydantic import TypeAdapter

from worker._definition import SIGNAL, UPDATE, HandlerDefinition, WorkflowDefinition
from worker._failure import exception_to_failure
from worker._workflow_handlers import Handlers
from worker._workflow_loop import WorkflowLoop
from worker.converter import PayloadConverter, input_mismatch
from worker.errors import ApplicationError, CanceledError, FailureError
from worker.wire import Command, CommandType, Failure, HistoryEvent, Payload

_log = logging.getLogger(__name__)


_PAYLOADS = TypeAdapter(list[Payload])


def payloads_of(values: Any) -> list[Payload]:
    """Wire payloads as Payload models, validated in one call."""
    return _PAYLOADS.validate_python(values or [])


class MessageDelivery(Handlers):
    """Delivers signals and updates to the handlers of a run."""

    _defn: WorkflowDefinition
    _converter: PayloadConverter
    _loop: WorkflowLoop
    _object: Any
    _workflow_id: str
    _read_only: bool
    #: The task being applied was in history already: said the first time.
    _replaying: bool
    _unusable: str | None
    _accepted_updates: set[str]
    _task_failure: BaseException | None
    closed: bool
    #: A cancel now comes from the workflow's code, though no task runs it.
    _cancelling_in_code: bool
    #: Signal and update handlers started and not yet returned (async ones).
    _handlers_running: int = 0

    def _add_command(
        self, command: Command, on_match: Callable[[HistoryEvent], None] | None = None
    ) -> None:
        raise NotImplementedError

    def _on_handler_done(self, task: asyncio.Task[Any], what: str) -> None:
        raise NotImplementedError

    def check_writable(self, what: str) -> None:
        raise NotImplementedError

    def _run_until_quiescent(self) -> None:
        raise NotImplementedError

    def _deliver_updates(
        self, updates: Sequence[Mapping[str, Any]], *, validate: bool, at_start: bool
    ) -> list[Mapping[str, Any]]:
        """Deliver an activation's updates; with ``at_start`` (they came with the
        run's start) those no handler is set for yet are returned, for
        :meth:`_deliver_late_updates`."""
        late = []
        for update in updates:
            name = str(update.get("name"))
            if at_start and self._handler(UPDATE, name) is None:
                late.append(update)
            else:
                self._deliver_update(update, validate=validate)
        return late

    def _deliver_late_updates(self, late: Sequence[Mapping[str, Any]], *, validate: bool) -> None:
        """As in Temporal, an update that came with the run's start finds the
        handlers the run method sets (``workflow.set_update_handler``) before
        it first waits, where it was rejected as unknown. (A run written
        before rejected it, and a rejection leaves no event: a replay never
        delivers it.)"""
        if not late:
            return
        self._run_until_quiescent()
        for update in late:
            if self._task_failure is not None or self.closed:
                return  # the server rejects what a closing run leaves open
            self._deliver_update(update, validate=validate)

    def _bound(self, defn: HandlerDefinition) -> Callable[..., Any]:
        """The handler of ``defn`` to call with its arguments."""
        return defn.fn.__get__(self._object) if defn.is_method else defn.fn

    def _on_workflow_exception(self, exc: BaseException) -> None:
        raise NotImplementedError

    def all_handlers_finished(self) -> bool:
        return self._handlers_running == 0

    def _track_handler(self, task: asyncio.Task[Any], what: str) -> None:
        """Count ``task`` as a running handler until it ends, then report it."""
        self._handlers_running += 1

        def done(t: asyncio.Task[Any]) -> None:
            self._handlers_running -= 1
            self._on_handler_done(t, what)

        task.add_done_callback(done)

    def _on_signal(self, name: str, payloads: Sequence[Any]) -> None:
        """Deliver a signal; ``payloads`` as they arrived (JSON objects)."""
        defn = self._handler(SIGNAL, name)
        if defn is None:
            self._buffer_signal(name, payloads)
            return
        handler, is_async = self._bound(defn), defn.is_async
        hints: Sequence[Any] = () if defn.dynamic else defn.arg_types
        try:
            if defn.dynamic:
                args = self._handler_args(defn, name, payloads_of(payloads))
            else:
                args = _values_of(self._converter, payloads, hints)
        except Exception:
            # The same payload fails the same way on every replay, so dropping
            # it is deterministic; failing the task would retry forever.
            if not self._replaying:  # (a replay would say it again, at every eviction)
                _log.warning(
                    "dropping signal %r to workflow %s: its input cannot be decoded",
                    name,
                    self._workflow_id,
                    exc_info=True,
                )
            return
        problem = _arity_problem(handler, args) or input_mismatch(args, hints)
        if problem is not None:
            if not self._replaying:
                _log.warning(
                    "dropping signal %r to workflow %s: %s", name, self._workflow_id, problem
                )
            return
        if not is_async:
            # A plain function needs no task: it runs where the task's first
            # step would have run, so the order of everything stays the same
            # (a replay delivers thousands of signals).
            self._loop.call_soon_quietly(self._run_plain_signal_handler, handler, args, name)
            return
        task = self._loop.create_task(_call_handler(handler, args), name=f"signal {name}")
        self._track_handler(task, f"signal handler {name!r}")

    def _run_plain_signal_handler(
        self, handler: Callable[..., Any], args: Sequence[Any], name: str
    ) -> None:
        """Run a signal handler that is not a coroutine function, as its task would have.

        What a handler task did with each outcome, this does at the same point:
        a raised error reaches the run one callback later (as a task's done
        callback would), a cancellation is ignored, and an awaitable returned
        starts running at once, in a task of its own.
        """
        if self._unusable is not None:
            # torn down before it ran: a handler task would have been
            # cancelled before its first step
            return
        self._cancelling_in_code = True
        try:
            result = handler(*args)
        except asyncio.CancelledError:
            return
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:
            self._loop.call_soon(self._on_plain_handler_failed, exc)
            return
        finally:
            self._cancelling_in_code = False
        if result is not None and inspect.isawaitable(result):
            task = self._loop.start_task_now(_await(result), name=f"signal {name}")
            self._track_handler(task, f"signal handler {name!r}")

    def _on_plain_handler_failed(self, exc: BaseException) -> None:
        if self._unusable is None:
            self._on_workflow_exception(exc)

    def _deliver_update(self, update: Mapping[str, Any], *, validate: bool) -> None:
        update_id = str(update.get("update_id"))
        name = str(update.get("name"))
        if update_id in self._accepted_updates:
            return  # delivered again after it was accepted: nothing new to do
        defn = self._handler(UPDATE, name)
        if defn is None:
            if validate:
                known = self._known(UPDATE)
                self._reject_update(
                    update_id,
                    ApplicationError(
                        f"unknown update {name!r} for workflow {self._defn.name}; "
                        f"known updates: {known}",
                        type="UnknownUpdate",
                        non_retryable=True,
                    ),
                )
            # On replay the recorded acceptance then matches nothing: non-determinism.
            return
        try:
            args = self._handler_args(defn, name, payloads_of(update.get("input")))
        except Exception as exc:
            if validate:
                self._reject_update(update_id, exc)
            return
        if (problem := _arity_problem(self._bound(defn), args)) is not None:
            if validate:
                self._reject_update(update_id, TypeError(f"update {name!r}: {problem}"))
            return
        # Checked for new updates only: one accepted before this check existed replays.
        hints = () if defn.dynamic else defn.arg_types
        if validate and (problem := input_mismatch(args, hints)) is not None:
            self._reject_update(update_id, TypeError(f"update {name!r}: {problem}"))
            return
        if validate and defn.validator is not None:
            self._read_only = True
            try:
                if defn.is_method:
                    defn.validator(self._object, *args)
                else:
                    defn.validator(*args)
            except Exception as exc:
                self._reject_update(update_id, exc)
                return
            finally:
                self._read_only = False
        self._accepted_updates.add(update_id)
        self._add_command(
            Command(type=CommandType.ACCEPT_UPDATE, attributes={"update_id": update_id})
        )
        task = self._loop.create_task(
            self._run_update(update_id, defn, args), name=f"update {name}"
        )
        self._track_handler(task, f"update handler {name!r}")

    def _reject_update(self, update_id: str, exc: BaseException) -> None:
        failure = exception_to_failure(exc, self._converter)
        self._add_command(
            Command(
                type=CommandType.REJECT_UPDATE,
                attributes={"update_id": update_id, "failure": failure.model_dump()},
            )
        )

    async def _run_update(self, update_id: str, defn: HandlerDefinition, args: list[Any]) -> None:
        # as in Temporal, a listed exception type fails the update, not the run
        fails_update: tuple[type[BaseException], ...] = (
            FailureError,
            *self._defn.failure_exception_types,
        )
        try:
            result = await _call_handler(self._bound(defn), args)
        except BaseException as exc:
            if not isinstance(exc, (asyncio.CancelledError, *fails_update)):
                raise
            failed = isinstance(exc, fails_update)
            error = exc if failed else CanceledError("update handler canceled")
            failure = exception_to_failure(error, self._converter)
            self._complete_update(update_id, None, failure)
            return
        self._complete_update(update_id, self._converter.to_payload(result), None)

    def _complete_update(
        self, update_id: str, result: Payload | None, failure: Failure | None
    ) -> None:
        self._add_command(
            Command(
                type=CommandType.COMPLETE_UPDATE,
                attributes={
                    "update_id": update_id,
                    "result": None if result is None else result.model_dump(),
                    "failure": None if failure is None else failure.model_dump(),
                },
            )
        )


def _values_of(
    converter: PayloadConverter, values: Sequence[Any], hints: Sequence[Any]
) -> list[Any]:
    """The values of wire payloads (JSON objects). ``from_wire`` decides for a
    PayloadConverter and its subclasses; any other converter gets Payload
    models through its ``from_payloads``."""
    if isinstance(converter, PayloadConverter):
        return converter.from_wire(values, hints)
    return converter.from_payloads(payloads_of(values), hints)


def _arity_problem(handler: Callable[..., Any], args: Sequence[Any]) -> str | None:
    """Why ``handler`` cannot take ``args``, or None.

    A sender's mistake (wrong argument count) must not fail the workflow task
    again on every retry, so it is caught before the handler runs.
    """
    fn = getattr(handler, "__func__", None)  # a bound method: its function's signature
    target = fn if fn is not None else handler
    count = len(args) + (1 if fn is not None else 0)
    try:
        least, most = _positional_range(target)
    except (TypeError, ValueError):  # no signature to read, or an unhashable callable
        least, most = 1, 0  # an empty range: bind decides below, as it always did
    if least <= count and (most is None or count <= most):
        return None  # the common case, without building a BoundArguments
    try:
        if fn is not None:
            _signature(fn).bind(getattr(handler, "__self__", None), *args)
        else:
            _signature(handler).bind(*args)
    except TypeError as exc:
        return f"{len(args)} argument(s) do not fit the handler: {exc}"
    except ValueError:
        return None  # a builtin without a signature: let the call decide
    return None


def _signature(fn: Callable[..., Any]) -> inspect.Signature:
    """A handler's signature, worked out once (a replay delivers thousands of signals).

    A callable object that cannot be hashed (a dataclass instance with
    ``__call__``, say) cannot be cached: its signature is read each time.
    """
    try:
        return _cached_signature(fn)
    except TypeError:  # unhashable (or no signature at all: then this raises again)
        return inspect.signature(fn)


@functools.lru_cache(maxsize=1024)
def _cached_signature(fn: Callable[..., Any]) -> inspect.Signature:
    return inspect.signature(fn)


@functools.lru_cache(maxsize=1024)
def _positional_range(fn: Callable[..., Any]) -> tuple[int, int | None]:
    """How many positional arguments ``fn`` surely takes: (least, most or None).

    A required keyword-only parameter can never be given by a positional
    call, so such a function gets an empty range and :func:`_arity_problem`
    asks ``bind`` for the message.
    """
    least, most = 0, 0
    unbounded = False
    for p in _signature(fn).parameters.values():
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            most += 1
            if p.default is p.empty:
                least += 1
        elif p.kind == p.VAR_POSITIONAL:
            unbounded = True
        elif p.kind == p.KEYWORD_ONLY and p.default is p.empty:
            return 1, 0
    return least, None if unbounded else most


async def _await(result: Any) -> Any:
    return await result


async def _call_handler(handler: Callable[..., Any], args: Sequence[Any]) -> Any:
    result = handler(*args)
    if inspect.isawaitable(result):
        result = await result
    return result
