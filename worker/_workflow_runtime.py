"""The workflow-facing half of a workflow instance: state of the run and the runtime API.

:class:`WorkflowRuntime` is what ``worker.workflow`` functions reach while an
activation runs (``now()``, ``start_activity()``, timers, ``patched()``...)
and how delivered jobs (activity outcomes, signals, updates, the run's end)
change the run and turn into commands. :class:`worker._workflow_instance.WorkflowInstance`
builds on it with history: which tasks to activate, and matching the commands
issued here against the command events recorded. Signals and updates are
delivered by the :class:`worker._workflow_messages.MessageDelivery` mixin, and
an activity's failure is shaped by :mod:`worker._activity_outcome`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import random
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from worker import _history
from worker._activity_outcome import (
    ACTIVITY_CANCEL_ERROR_PATCH,
    activity_error,
    canceled_by_workflow,
    caused_by_cancel,
    uncaught_cancellation,
)
from worker._definition import QUERY, SIGNAL, UPDATE, HandlerDefinition, WorkflowDefinition
from worker._failure import exception_to_failure
from worker._history import Kind
from worker._payloads import memo_changes, memo_values, merged_memo
from worker._search_attributes import normalized_attributes
from worker._workflow_api import (
    ActivityHandle,
    ContinueAsNewError,
    WorkflowInfo,
    _Runtime,
    policy_of,
    seconds_of,
)
from worker._workflow_handlers import BufferedSignal
from worker._workflow_loop import DurableTimer, WorkflowLoop
from worker._workflow_messages import MessageDelivery, payloads_of
from worker._workflow_temporal import INIT_MARK
from worker._workflow_timers import TimerCommands
from worker.common import ActivityCancellationType, RawValue
from worker.converter import PayloadConverter, decode_input
from worker.errors import (
    FailureError,
    NonDeterminismError,
)
from worker.wire import (
    Command,
    CommandType,
    HistoryEvent,
    Payload,
    RetryPolicyWire,
)


@dataclasses.dataclass
class _Activity:
    handle: ActivityHandle
    activity_id: str
    activity_type: str
    result_type: Any
    cancellation_type: ActivityCancellationType = ActivityCancellationType.TRY_CANCEL
    cancel_requested: bool = False
    closed: bool = False  # its closing event is in history


def _seed(run_id: str) -> int:
    return int.from_bytes(hashlib.sha256(run_id.encode()).digest()[:8], "big")


class WorkflowRuntime(MessageDelivery, TimerCommands, _Runtime):
    """State of one workflow run and the runtime API its code calls.

    Attributes:
        closed: A close command (complete, fail, cancel, continue-as-new) was issued.
        activating: An activation is running (commands may be issued).
    """

    def __init__(
        self,
        *,
        definition: WorkflowDefinition,
        namespace: str,
        workflow_id: str,
        run_id: str,
        converter: PayloadConverter,
    ) -> None:
        self.closed = False
        self.activating = False
        self._defn = definition
        self._namespace = namespace
        self._workflow_id = workflow_id
        self._run_id = run_id
        self._converter = converter
        # The I/O methods mypy sees as abstract are filled in at import time.
        self._loop = WorkflowLoop(self)  # type: ignore[abstract]
        self._random = random.Random(_seed(run_id))
        self._start_event: HistoryEvent | None = None
        # Output of the current activation; ``_on_match`` runs when a
        # command's event is matched (keyed by id() of the command).
        self._commands: list[Command] = []
        self._on_match: dict[int, Callable[[HistoryEvent], None]] = {}
        self._task_failure: BaseException | None = None
        # History-derived context of the current activation.
        self._replaying = False
        self._now = datetime.fromtimestamp(0, UTC)
        self._history_length = 0
        self._suggest_can = False
        #: Set by the worker from each workflow task (not part of replay).
        self.target_version_changed = False
        self._task_patches: frozenset[str] = frozenset()
        self._read_only = False
        self._unusable: str | None = None
        # State of the run.
        self._object: Any = None
        self._run_task: asyncio.Task[Any] | None = None
        self._cancel_requested = False
        # True while the run is cancelled on its cancel request, or a plain
        # signal handler runs: activities cancelled then raise ActivityError.
        self._cancelling_in_code = False
        self._patches: dict[str, bool] = {}
        self._search_attributes: dict[str, Any] | None = None
        self._memo: dict[str, Any] | None = None  # payloads, with the run's upserts
        self._activities: dict[str, _Activity] = {}
        self._activities_by_event: dict[int, _Activity] = {}
        self._activity_seq = 0
        self._timers: dict[str, DurableTimer] = {}
        self._timer_seq = 0
        self._conditions: list[tuple[Callable[[], bool], asyncio.Future[None]]] = []
        self._set_handlers: dict[str, dict[str | None, HandlerDefinition]] = {
            SIGNAL: {},
            QUERY: {},
            UPDATE: {},
        }
        self._buffered_signals: dict[str, list[BufferedSignal]] = {}
        self._accepted_updates: set[str] = set()

    @property
    def namespace(self) -> str:
        """Namespace of the run."""
        return self._namespace

    @property
    def workflow_id(self) -> str:
        """Workflow id of the run."""
        return self._workflow_id

    @property
    def run_id(self) -> str:
        """Run id of the run."""
        return self._run_id

    # ================================================================== commands

    def _fail_task(self, exc: BaseException) -> None:
        if self._task_failure is None:
            self._task_failure = exc

    def _add_command(
        self, command: Command, on_match: Callable[[HistoryEvent], None] | None = None
    ) -> None:
        # Commands issued after the close (or outside an activation, e.g. by a
        # coroutine closed at eviction) are not the run's: drop them.
        if not self.activating or self.closed or self._unusable is not None:
            return
        self._commands.append(command)
        if on_match is not None:
            self._on_match[id(command)] = on_match

    def check_writable(self, what: str) -> None:
        if self._read_only:
            raise RuntimeError(
                f"{what} may not be called from a query handler or an update validator: "
                "they only read workflow state"
            )

    # ------------------------------------------------------------------ jobs

    def _instantiate(self) -> bool:
        if self._defn.dynamic and self._start_event is not None:
            # a dynamic workflow runs as the type it was started as
            wtype = str(self._start_event.attributes.get("workflow_type") or self._defn.name)
            self._defn = dataclasses.replace(self._defn, name=wtype)
        try:
            # an ``__init__`` marked ``@workflow.init`` takes the run's input
            marked = getattr(getattr(self._defn.cls, "__init__", None), INIT_MARK, False)
            self._object = self._defn.cls(*(self._run_args() if marked else ()))
        except Exception as exc:
            self._fail_task(exc)
            return False
        return True

    def _run_args(self) -> list[Any]:
        assert self._start_event is not None
        payloads = payloads_of(self._start_event.attributes.get("input"))
        if self._defn.dynamic:  # one sequence of the undecoded input, as in Temporal
            return [[RawValue(p) for p in payloads]]
        of = f"workflow {self._defn.name}"
        return decode_input(self._converter, payloads, self._defn.arg_types, of)

    def _start_run(self) -> None:
        assert self._start_event is not None
        try:
            coro = self._defn.run_fn(self._object, *self._run_args())
        except Exception as exc:
            self._fail_task(exc)
            return
        self._run_task = self._loop.create_task(coro, name=f"{self._defn.name}.run")
        self._run_task.add_done_callback(self._on_run_done)
        if self._cancel_requested:
            # A cancel that came before the first workflow task: let the run
            # method take its first step (into its try block) before the
            # cancellation lands, as Temporal does, so its cleanup runs.
            self._loop.call_soon(self._cancel_run)

    def _deliver(self, event: HistoryEvent) -> None:
        kind = event.event_type
        attrs = event.attributes
        if kind == Kind.TIMER_FIRED:
            timer = self._timers.pop(str(attrs.get("timer_id")), None)
            if timer is None:
                raise NonDeterminismError(
                    f"non-determinism at event {event.event_id}: history recorded TimerFired"
                    f"(timer_id={attrs.get('timer_id')}) but the workflow code started no "
                    "such timer"
                )
            self._loop.fire(timer)
        elif kind == Kind.WORKFLOW_EXECUTION_SIGNALED:
            self._on_signal(str(attrs.get("signal_name")), attrs.get("input") or [])
        elif kind == Kind.WORKFLOW_EXECUTION_CANCEL_REQUESTED:
            self._cancel_requested = True
            self._cancel_run()
        else:
            self._resolve_activity(event)

    def _cancel_run(self) -> None:
        """Cancel the run method on the workflow's cancel request."""
        if self._run_task is not None and not self._run_task.done():
            self._cancelling_in_code = True
            try:
                self._run_task.cancel()
            finally:
                self._cancelling_in_code = False

    def _resolve_activity(self, event: HistoryEvent) -> None:
        attrs = event.attributes
        scheduled = attrs.get("scheduled_event_id")
        act = self._activities_by_event.get(scheduled) if isinstance(scheduled, int) else None
        if act is None:
            raise NonDeterminismError(
                f"non-determinism at event {event.event_id}: history recorded "
                f"{event.event_type.value}(scheduled_event_id={scheduled}) but the workflow code "
                "scheduled no activity at that event"
            )
        act.closed = True
        if act.handle.done():
            return  # cancelled by the code already; the outcome comes too late to matter
        kind = event.event_type
        if kind == Kind.ACTIVITY_TASK_COMPLETED:
            result = attrs.get("result")
            try:
                value = (
                    None
                    if result is None
                    else self._converter.from_payload(
                        Payload.model_validate(result), act.result_type
                    )
                )
            except Exception as exc:
                act.handle.set_exception(exc)
                return
            act.handle.set_result(value)
            return
        act.handle.set_exception(
            activity_error(event, act.activity_type, act.activity_id, self._converter)
        )

    # ------------------------------------------------------------------ outcomes

    def _on_run_done(self, task: asyncio.Task[Any]) -> None:
        if self._unusable is not None:
            return
        if task.cancelled():
            if self._cancel_requested:
                self._close(Command(type=CommandType.CANCEL_WORKFLOW, attributes={"details": None}))
            else:
                # The code cancelled something (an activity, a task) and let
                # the cancellation out: like any failure it chose not to catch,
                # it fails the workflow. Failing the task would replay into the
                # same cancellation on every retry.
                self._on_workflow_exception(uncaught_cancellation(task))
            return
        exc = task.exception()
        if exc is not None:
            self._on_workflow_exception(exc)
            return
        try:
            result = self._converter.to_payload(task.result())
        except Exception as err:
            self._fail_task(err)
            return
        self._close(
            Command(type=CommandType.COMPLETE_WORKFLOW, attributes={"result": result.model_dump()})
        )

    def _on_handler_done(self, task: asyncio.Task[Any], what: str) -> None:
        if self._unusable is not None or task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            self._on_workflow_exception(exc)

    def _on_workflow_exception(self, exc: BaseException) -> None:
        if isinstance(exc, ContinueAsNewError):
            try:
                payloads = self._converter.to_payloads(exc.input)
                given: dict[str, Any] = {}
                if exc.search_attributes is not None:
                    given["search_attributes"] = exc.search_attributes
                if exc.memo is not None:
                    given["memo"] = {
                        k: self._converter.to_payload(v).model_dump() for k, v in exc.memo.items()
                    }
            except Exception as err:
                self._fail_task(err)
                return
            self._close(
                Command(
                    type=CommandType.CONTINUE_AS_NEW,
                    attributes={
                        "workflow_type": exc.workflow_type,
                        "task_queue": exc.task_queue,
                        "input": [p.model_dump() for p in payloads],
                        "task_timeout_s": exc.task_timeout_s,
                        "run_timeout_s": exc.run_timeout_s,
                        "versioning": exc.versioning,
                        # only when given: else the new run keeps this one's
                        **given,
                    },
                )
            )
        elif isinstance(exc, (FailureError, *self._defn.failure_exception_types)):
            if self._cancel_requested and caused_by_cancel(exc):
                self._close(Command(type=CommandType.CANCEL_WORKFLOW, attributes={"details": None}))
                return
            failure = exception_to_failure(exc, self._converter)
            self._close(
                Command(
                    type=CommandType.FAIL_WORKFLOW, attributes={"failure": failure.model_dump()}
                )
            )
        else:
            self._fail_task(exc)

    def _close(self, command: Command) -> None:
        if self.closed or self._task_failure is not None:
            return
        self._add_command(command)
        self.closed = True

    # ================================================================== runtime

    def info(self) -> WorkflowInfo:
        start = self._start_event
        if start is None:
            raise RuntimeError("the workflow has not started")
        attrs = start.attributes
        return WorkflowInfo(
            namespace=self._namespace,
            workflow_id=self._workflow_id,
            run_id=self._run_id,
            workflow_type=str(attrs.get("workflow_type") or self._defn.name),
            task_queue=str(attrs.get("task_queue") or ""),
            attempt=int(attrs.get("attempt") or 1),
            first_run_id=str(attrs.get("first_run_id") or self._run_id),
            continued_from_run_id=attrs.get("continued_from_run_id"),
            history_length=self._history_length,
            start_time=_history.parse_time(start.event_time),
            memo=memo_values(self.memo_payloads(), self._converter),
            run_timeout=seconds_of(attrs.get("run_timeout_s")),
            execution_timeout=seconds_of(attrs.get("execution_timeout_s")),
            retry_policy=policy_of(attrs.get("retry_policy")),
            cron_schedule=attrs.get("cron_schedule"),
            task_timeout=seconds_of(attrs.get("task_timeout_s")) or timedelta(seconds=10),
            search_attributes=self.search_attributes(),
            target_version_changed=self.target_version_changed,
        )

    def started_attributes(self) -> Mapping[str, Any]:
        return {} if self._start_event is None else self._start_event.attributes

    def open_activities(self) -> int:
        """Activities the code scheduled whose outcome the run has not applied yet."""
        return sum(1 for act in self._activities.values() if not act.handle.done())

    def now(self) -> datetime:
        return self._now

    def random(self) -> random.Random:
        if self._read_only:
            # A query must not move the run's random sequence.
            copy = random.Random()
            copy.setstate(self._random.getstate())
            return copy
        return self._random

    def is_replaying(self) -> bool:
        return self._replaying

    def search_attributes(self) -> dict[str, Any]:
        if self._search_attributes is None:
            start = self._start_event
            initial = start.attributes.get("search_attributes") if start is not None else None
            # the server keeps no attribute set to [] (see upsert below)
            self._search_attributes = {k: v for k, v in (initial or {}).items() if v != []}
        return dict(self._search_attributes)

    def pause(self, reason: str) -> None:
        self.check_writable("workflow.pause()")
        if not isinstance(reason, str):
            raise self.misuse(TypeError(f"a pause reason is a string, not {reason!r}"))
        self._add_command(Command(type=CommandType.PAUSE_WORKFLOW, attributes={"reason": reason}))

    def upsert_search_attributes(self, attributes: Mapping[str, Any]) -> None:
        self.check_writable("workflow.upsert_search_attributes()")
        if not isinstance(attributes, Mapping) or not attributes:
            raise self.misuse(ValueError("search attributes must be a non-empty mapping"))
        try:
            changes = normalized_attributes(attributes)
        except ValueError as exc:
            raise self.misuse(exc) from None
        current = self.search_attributes()
        for name, value in changes.items():
            if value is None or value == []:
                # an empty list unsets the attribute, as Temporal's upsert of one does
                current.pop(name, None)
            else:
                current[name] = value
        self._search_attributes = current
        self._add_command(
            Command(
                type=CommandType.UPSERT_SEARCH_ATTRIBUTES,
                attributes={"search_attributes": changes},
            )
        )

    def memo_payloads(self) -> dict[str, Any]:
        if self._memo is None:
            start = self._start_event
            self._memo = dict((start.attributes.get("memo") if start is not None else None) or {})
        return self._memo

    def upsert_memo(self, updates: Mapping[str, Any]) -> None:
        self.check_writable("workflow.upsert_memo()")
        try:
            changes = memo_changes(updates, self._converter)
        except ValueError as exc:
            raise self.misuse(exc) from None
        self._memo = merged_memo(self.memo_payloads(), changes)
        command = {"upserted_memo": changes}
        self._add_command(Command(type=CommandType.MODIFY_WORKFLOW_PROPERTIES, attributes=command))

    def patched(self, patch_id: str) -> bool:
        self.check_writable("workflow.patched()")
        if not isinstance(patch_id, str) or not patch_id:
            raise self.misuse(ValueError(f"patch id must be a non-empty string, got {patch_id!r}"))
        if patch_id in self._patches:
            return self._patches[patch_id]
        taken = not self._replaying or patch_id in self._task_patches
        self._patches[patch_id] = taken
        if taken:
            self._add_command(
                Command(
                    type=CommandType.RECORD_MARKER,
                    attributes={
                        "marker_name": _history.PATCH_MARKER,
                        "details": {"patch_id": patch_id},
                    },
                )
            )
        return taken

    def deprecate_patch(self, patch_id: str) -> None:
        if not isinstance(patch_id, str) or not patch_id:
            raise self.misuse(ValueError(f"patch id must be a non-empty string, got {patch_id!r}"))

    def continue_as_new_suggested(self) -> bool:
        return self._suggest_can

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
        cancellation_type: ActivityCancellationType = ActivityCancellationType.TRY_CANCEL,
    ) -> ActivityHandle:
        self.check_writable("workflow.start_activity()")
        if activity_id is None:
            self._activity_seq += 1
            while str(self._activity_seq) in self._activities:
                self._activity_seq += 1
            activity_id = str(self._activity_seq)
        elif (prev := self._activities.get(activity_id)) is not None and not prev.closed:
            # Only a pending activity's id is taken (as in Temporal), and a
            # cancelled one is pending until its cancellation is in history.
            raise self.misuse(
                ValueError(
                    f"activity id {activity_id!r} is used by an activity of this run that has "
                    "not closed: wait for it to close or give this one another id"
                )
            )
        try:
            payloads = self._converter.to_payloads(args)
        except Exception as exc:
            raise self.misuse(exc) from None
        handle = ActivityHandle(
            loop=self._loop,
            activity_id=activity_id,
            activity_type=activity_type,
            on_cancel=self._cancel_activity,
        )
        act = _Activity(handle, activity_id, activity_type, result_type, cancellation_type)
        self._activities[activity_id] = act
        command = Command(
            type=CommandType.SCHEDULE_ACTIVITY,
            attributes={
                "activity_id": activity_id,
                "activity_type": activity_type,
                "task_queue": task_queue,
                "input": [p.model_dump() for p in payloads],
                "schedule_to_close_s": schedule_to_close_s,
                "schedule_to_start_s": schedule_to_start_s,
                "start_to_close_s": start_to_close_s,
                "heartbeat_s": heartbeat_s,
                "retry_policy": None if retry_policy is None else retry_policy.model_dump(),
            },
        )
        self._add_command(
            command, on_match=lambda ev: self._activities_by_event.__setitem__(ev.event_id, act)
        )
        return handle

    def _cancel_activity(self, handle: ActivityHandle) -> tuple[BaseException | None, bool]:
        reason = canceled_by_workflow(handle.activity_type, handle.activity_id)
        # Cancelled by the workflow's code or its cancel request, the awaiting
        # code gets the ActivityError as Temporal raises it; by a timer's
        # callback (asyncio.timeout(), which on Python 3.11 turns only a bare
        # CancelledError into its TimeoutError), a plain cancellation.
        as_error = self._cancelling_in_code or asyncio.current_task(self._loop) is not None
        if as_error and self.activating and not self._read_only:
            # a run an earlier release wrote got a bare CancelledError: its
            # code may have taken another path since, so it replays with that
            as_error = self.patched(ACTIVITY_CANCEL_ERROR_PATCH)
        act = self._activities.get(handle.activity_id)
        if act is None or act.handle is not handle:
            return reason, as_error
        kind = act.cancellation_type
        if not act.cancel_requested:
            act.cancel_requested = True
            if kind is not ActivityCancellationType.ABANDON:
                self._add_command(
                    Command(
                        type=CommandType.REQUEST_CANCEL_ACTIVITY,
                        attributes={"activity_id": handle.activity_id},
                    )
                )
        if kind is ActivityCancellationType.WAIT_CANCELLATION_COMPLETED and not act.closed:
            return None, as_error  # its closing event resolves the handle
        return reason, as_error

    def callback_failed(self, exc: BaseException) -> None:
        self._fail_task(exc)

    def wait_condition(self, fn: Callable[[], bool]) -> asyncio.Future[None]:
        self.check_writable("workflow.wait_condition()")
        fut: asyncio.Future[None] = self._loop.create_future()
        self._conditions.append((fn, fut))
        return fut

    def misuse(self, exc: Exception) -> Exception:
        if self.activating and not self._read_only:
            self._fail_task(exc)
        return exc
