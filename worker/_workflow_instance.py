"""One workflow run in a worker: history events in, workflow code run, commands out.

The worker hands :meth:`WorkflowInstance.activate` the new history events of
a run. Events are applied in order: WorkflowExecutionStarted and the input
events (activity results, timer firings, signals, cancel requests) queue jobs;
each workflow task that history shows as completed is replayed ("activated")
and the commands it issues must match the command events recorded after its
WorkflowTaskCompleted; the task being worked on now is activated last and its
commands are returned. The same instance can be kept between tasks (the
cached path): the commands it returned are matched against the events the
next call starts with.

An activation delivers its jobs in event order (signals and updates ahead of
the results of the same task, see ``_run_jobs``), then steps the deterministic
loop (:mod:`worker._workflow_loop`) until no callback is ready and no
``wait_condition`` predicate has become true. What jobs do to the run, and the
runtime API workflow code calls, live in :mod:`worker._workflow_runtime`.

Failures split three ways. A workflow failure (a
:class:`~worker.errors.FailureError` out of the run method) closes the run
with FailWorkflow. A bug (any other exception) raises
:class:`WorkflowTaskError` from ``activate`` so the worker fails the workflow
task and it is retried, after a fix if need be. A mismatch with history raises
:class:`~worker.errors.NonDeterminismError`. After either error, and after
:meth:`WorkflowInstance.dispose`, the instance is unusable.
"""

from __future__ import annotations

import asyncio
import bisect
import collections
import dataclasses
import inspect
import random
import time
from collections.abc import Mapping, Sequence
from typing import Any

from worker import _history
from worker._definition import QUERY, WorkflowDefinition
from worker._failure import exception_to_failure
from worker._history import Kind
from worker._workflow_api import _current_runtime
from worker._workflow_runtime import WorkflowRuntime, _seed
from worker._workflow_teardown import Teardown
from worker.converter import PayloadConverter, input_mismatch
from worker.errors import NonDeterminismError, QueryFailedError
from worker.wire import Command, CommandType, Failure, HistoryEvent, Payload

__all__ = [
    "DeadlockError",
    "StaleInstanceError",
    "UnknownQueryError",
    "WorkflowInstance",
    "WorkflowTaskError",
]


def _event_id(event: HistoryEvent) -> int:
    return event.event_id


#: Patch marker of runs whose activations hand signals and updates over before
#: the activity outcomes, timer firings and cancel request of the same task.
SIGNALS_FIRST_PATCH = "baton.signals-first"


class WorkflowTaskError(Exception):
    """Workflow code (or its use of the SDK) raised: fail the workflow task, not the workflow.

    ``__cause__`` is the original exception and :attr:`failure` its wire form,
    for RespondWorkflowTaskFailed. The worker discards the instance; the task
    is retried and replays from history, so fixed code carries on.
    """

    def __init__(self, message: str, *, failure: Failure) -> None:
        super().__init__(message)
        self.failure = failure


class DeadlockError(Exception):
    """Workflow code kept running without waiting on anything durable (a busy loop or a
    blocking call?): workflow code must hand control back by awaiting workflow operations.

    The workflow task fails with cause ``Deadlock`` and is retried; :attr:`stack`
    is where the code was when the worker gave up on it (empty if unknown).
    """

    stack: str = ""


class UnknownQueryError(QueryFailedError):
    """The run has no handler of the query's name: its failure's type is
    ``UnknownQuery``, as an unknown update's rejection is ``UnknownUpdate``."""


class StaleInstanceError(ValueError):
    """History shows that the task this instance last ran did not complete (it failed or
    timed out on the server): the instance's state is ahead of history. Discard it and
    replay the history in a new instance."""


@dataclasses.dataclass
class _Window:
    """The command events after one WorkflowTaskCompleted.

    For a replayed task, ``started`` is its WorkflowTaskStarted: the task runs
    when the window is complete, with the buffered command events as its
    look-ahead (patch markers, accepted updates), and they are matched then.
    """

    completed_event_id: int
    started: HistoryEvent | None
    buffered: list[HistoryEvent] = dataclasses.field(default_factory=list)


class WorkflowInstance(Teardown, WorkflowRuntime):
    """One workflow run in a worker; see the module docstring.

    Attributes:
        last_event_id: Id of the last history event applied (0 before any).
        last_event_version: Failover version of that event (None before any).
        closed: A close command (complete, fail, cancel, continue-as-new) was issued.
    """

    #: Wall-clock seconds one activation may run before it fails the task with
    #: DeadlockError. Checked here between steps, so it catches code that keeps
    #: rescheduling itself; a step that blocks outright is caught by the worker
    #: (:mod:`worker._workflow_threads`). The worker sets its ``deadlock_timeout``.
    deadlock_timeout_s: float = 2.0

    def __init__(
        self,
        *,
        definition: WorkflowDefinition,
        namespace: str,
        workflow_id: str,
        run_id: str,
        converter: PayloadConverter,
    ) -> None:
        super().__init__(
            definition=definition,
            namespace=namespace,
            workflow_id=workflow_id,
            run_id=run_id,
            converter=converter,
        )
        self.last_event_id = 0
        self.last_event_version: int | None = None
        # Input events not yet delivered, the WorkflowTaskStarted whose fate
        # is not known yet, the task run live whose completion is awaited, and
        # the commands still waiting for their events.
        self._jobs: list[HistoryEvent] = []
        self._pending_started: HistoryEvent | None = None
        self._live_started_id: int | None = None
        #: The events the server wrote after this instance's last completed
        #: task (``HistoryTail`` as a dict), while nothing else happened to
        #: the run that this worker knows of: the base of the next task the
        #: worker may run ahead with an activity's result. Used once.
        self.history_tail: dict[str, Any] | None = None
        self._window: _Window | None = None
        self._pending: collections.deque[Command] = collections.deque()

    @property
    def workflow_type(self) -> str:
        """Workflow type of the run (its definition's name)."""
        return self._defn.name

    # ================================================================== worker API

    def activate(
        self,
        events: Sequence[HistoryEvent],
        *,
        updates: Sequence[Mapping[str, Any]] = (),
        run_final: bool = True,
    ) -> list[Command]:
        """Apply the next history events and run the workflow code they call for.

        Args:
            events: Events continuing the history: ``events[0].event_id ==
                last_event_id + 1``, contiguous.
            updates: Update requests delivered with the current task
                (``{"update_id", "name", "input": [Payload]}``); only used
                with ``run_final``.
            run_final: The batch ends with the WorkflowTaskStarted of the task
                being worked on: run it live and return its commands. If False
                (rebuilding state for a query), only completed tasks run.

        Returns:
            The commands of the current task (empty when ``run_final`` is False).

        Raises:
            ValueError: The batch does not continue the history (nothing applied);
                :class:`StaleInstanceError` when the last task run was not completed.
            NonDeterminismError: The code does not match history.
            WorkflowTaskError: Workflow code raised a bug.
        """
        self._check_usable()
        _history.check_batch(events, self.last_event_id, run_final=run_final)
        try:
            for index, event in enumerate(events):
                self._apply(events, index)
                self.last_event_id = event.event_id
                self.last_event_version = event.version
            if not run_final:
                return []
            started = self._pending_started
            assert started is not None and started is events[-1]
            self._pending_started = None
            self._live_started_id = started.event_id
            return self._activate_task(started, replaying=False, updates=updates)
        except BaseException as exc:
            self._make_unusable(exc)
            raise

    def end_replay(self) -> None:
        """Run the last completed task of the history applied and match its
        commands: the end of a replay that has no task to run live (a
        :class:`worker.Replayer`'s). Raises as :meth:`activate` does."""
        self._check_usable()
        try:
            self._close_window(None)
        except BaseException as exc:
            self._make_unusable(exc)
            raise

    def query(self, name: str, args: Sequence[Payload]) -> Payload:
        """Answer a query from the current state; it must not issue commands.

        Raises:
            QueryFailedError: Unknown query, bad arguments, or the handler raised.
            NonDeterminismError: Replaying the last completed task failed.
        """
        self._check_usable()
        try:
            self._flush_window()
        except BaseException as exc:
            self._make_unusable(exc)
            raise
        if self._object is None:
            raise QueryFailedError("the workflow has not started running yet: no state to query")
        defn = self._handler(QUERY, name)
        if defn is None:
            raise UnknownQueryError(
                f"unknown query {name!r} for workflow {self._defn.name}; known queries: "
                f"{self._known(QUERY)}"
            )
        handler, hints = defn.fn, () if defn.dynamic else defn.arg_types
        token = _current_runtime.set(self)
        self._read_only = True
        try:
            values = self._handler_args(defn, name, args)
            # plainly not of their annotated kinds: refused, as an update's are
            if (problem := input_mismatch(values, hints)) is not None:
                raise TypeError(f"query {name!r}: {problem}")
            result = handler(*values)
            if inspect.isawaitable(result):
                if inspect.iscoroutine(result):
                    result.close()
                raise TypeError("query handlers must be plain functions, not coroutines")
            return self._converter.to_payload(result)
        except (Exception, KeyboardInterrupt, SystemExit) as exc:
            # (the handler's own exit too: it must not stop the worker)
            # the server words it as "query NAME failed: <this>"
            raise QueryFailedError(f"{type(exc).__name__}: {exc}") from exc
        finally:
            self._read_only = False
            _current_runtime.reset(token)

    # ================================================================== history

    def _apply(self, events: Sequence[HistoryEvent], index: int) -> None:
        event = events[index]
        kind = event.event_type
        attrs = event.attributes
        if _history.is_command_event(event):
            self._on_command_event(event)
        elif kind in _history.INPUT_EVENTS:
            self._jobs.append(event)
        elif kind == Kind.WORKFLOW_EXECUTION_STARTED:
            self._start_event = event
            self._jobs.append(event)
            if attrs.get("original_run_id"):
                # a reset run replays its kept events with the seed they were
                # drawn with (the run that wrote them)
                self._random = random.Random(_seed(str(attrs["original_run_id"])))
        elif kind == Kind.WORKFLOW_TASK_SCHEDULED:
            self._close_window(event)
        elif kind == Kind.WORKFLOW_TASK_STARTED:
            self._close_window(event)
            self._pending_started = event
        elif kind == Kind.WORKFLOW_TASK_COMPLETED:
            self._close_window(event)
            started_id = attrs.get("started_event_id")
            if self._live_started_id is not None and started_id in (None, self._live_started_id):
                self._live_started_id = None
                self._window = _Window(event.event_id, started=None)
            elif self._pending_started is not None and started_id in (
                None,
                self._pending_started.event_id,
            ):
                self._window = _Window(event.event_id, started=self._pending_started)
                self._pending_started = None
            else:
                raise ValueError(
                    f"event {event.event_id}: WorkflowTaskCompleted for started event "
                    f"{started_id}, "
                    "which this instance did not see start; replay the history from event 1"
                )
        elif kind in (Kind.WORKFLOW_TASK_FAILED, Kind.WORKFLOW_TASK_TIMED_OUT):
            self._close_window(event)
            if attrs.get("cause") == "ResetWorkflow" and attrs.get("new_run_id"):
                # what runs after a reset point draws anew, as in Temporal
                self._random = random.Random(_seed(str(attrs["new_run_id"])))
            started_id = attrs.get("started_event_id")
            if self._live_started_id is not None and started_id in (None, self._live_started_id):
                raise StaleInstanceError(
                    f"event {event.event_id}: the workflow task this instance ran "
                    "(started at event "
                    f"{self._live_started_id}) ended as {kind.value}; discard the instance and "
                    "replay the history"
                )
            if self._pending_started is not None and started_id in (
                None,
                self._pending_started.event_id,
            ):
                # Its jobs carry over to the next task that completes.
                self._pending_started = None
        elif kind in (
            Kind.WORKFLOW_EXECUTION_TERMINATED,
            Kind.WORKFLOW_EXECUTION_TIMED_OUT,
        ):
            self._close_window(event)
        # ActivityTaskStarted and the like carry nothing workflow code sees.

    def _on_command_event(self, event: HistoryEvent) -> None:
        window = self._window
        if window is None:
            raise NonDeterminismError(
                f"non-determinism at event {event.event_id}: history recorded "
                f"{self._describe_event(event)} outside the command events of a completed "
                "workflow task"
            )
        if window.started is not None:
            window.buffered.append(event)
        else:
            self._match(event)
        if event.event_type in _history.CLOSE_COMMAND_EVENTS:
            # Nothing of the run follows its close, so the window is complete.
            self._close_window(event)

    def _flush_window(self) -> None:
        """Run the replayed task of the open window and match what it has buffered."""
        window = self._window
        if window is None or window.started is None:
            return
        started, window.started = window.started, None
        buffered, window.buffered = window.buffered, []
        self._activate_task(started, replaying=True, lookahead=buffered)
        for event in buffered:
            self._match(event)

    def _close_window(self, next_event: HistoryEvent | None) -> None:
        window = self._window
        if window is None:
            return
        self._flush_window()
        self._window = None
        if self._pending:
            command = self._pending[0]
            if next_event is None or _history.is_command_event(next_event):
                recorded = "no event for it"
                at = self.last_event_id
            else:
                recorded = f"{self._describe_event(next_event)} next"
                at = next_event.event_id
            raise NonDeterminismError(
                f"non-determinism at event {at}: workflow code issued "
                f"{_history.describe_command(command)} but history recorded {recorded} "
                f"(among the command events of the task completed at event "
                f"{window.completed_event_id})"
            )

    def _match(self, event: HistoryEvent) -> None:
        if _history.failed_for_size_of_commands(event):
            # The worker reported this task's commands, over the server's
            # limits, as this failure of the run (see worker._limits); an
            # update whose handler issued them was rejected, so replay runs
            # no handler for it and may issue none of them.
            for command in self._pending:
                self._on_match.pop(id(command), None)
            self._pending.clear()
            return
        if self._pending and _history.command_matches(
            self._pending[0], event, self._activity_id_of
        ):
            command = self._pending.popleft()
            on_match = self._on_match.pop(id(command), None)
            if on_match is not None:
                on_match(event)
            return
        if _history.is_patch_marker(event):
            # A patch the code no longer asks about (deprecated or removed).
            return
        issued = (
            _history.describe_command(self._pending[0]) if self._pending else "no further command"
        )
        raise NonDeterminismError(
            f"non-determinism at event {event.event_id}: workflow code issued {issued} but "
            f"history recorded {self._describe_event(event)}"
        )

    def _activity_id_of(self, scheduled_event_id: int) -> str | None:
        act = self._activities_by_event.get(scheduled_event_id)
        return None if act is None else act.activity_id

    def _describe_event(self, event: HistoryEvent) -> str:
        return _history.describe_event(event, self._activity_id_of)

    # ================================================================== activation

    def _activate_task(
        self,
        started: HistoryEvent,
        *,
        replaying: bool,
        lookahead: Sequence[HistoryEvent] = (),
        updates: Sequence[Mapping[str, Any]] = (),
    ) -> list[Command]:
        # The jobs before the task's start are its own; the rest (in event
        # order) wait for the next task.
        jobs = self._jobs
        split = bisect.bisect_left(jobs, started.event_id, key=_event_id)
        jobs, self._jobs = jobs[:split], jobs[split:]
        if self.closed:
            return []
        self.progress_at = time.monotonic()
        attrs = started.attributes
        self._now = _history.parse_time(started.event_time)
        self._replaying = replaying
        self._history_length = int(attrs.get("history_length") or started.event_id)
        self._suggest_can = bool(attrs.get("suggest_continue_as_new", False))
        if replaying:
            self._task_patches, updates = _history.scan_task_commands(lookahead)
        else:
            self._task_patches = frozenset()
        self._commands = []
        self._loop.set_time(self._now.timestamp())
        token = _current_runtime.set(self)
        outer_loop = asyncio.events._get_running_loop()
        asyncio.events._set_running_loop(self._loop)
        self.activating = True
        try:
            self._run_jobs(jobs, updates, replaying=replaying)
        finally:
            self.activating = False
            asyncio.events._set_running_loop(outer_loop)
            _current_runtime.reset(token)
        if self._task_failure is not None:
            raise self._task_error(self._task_failure)
        commands, self._commands = self._commands, []
        self._pending.extend(c for c in commands if c.type != CommandType.REJECT_UPDATE)
        return commands

    def _run_jobs(
        self,
        jobs: Sequence[HistoryEvent],
        updates: Sequence[Mapping[str, Any]],
        *,
        replaying: bool,
    ) -> None:
        """Deliver an activation's jobs and run the workflow until it waits.

        As Temporal orders an activation, the signals and updates of a task
        that also brings activity outcomes, timer firings or a cancel request
        go first, and their handlers run before the rest is delivered: code
        that a result resumes sees what the same task's signals changed, so a
        run that continues as new after an activity carries them instead of
        losing them. A cancel request lands a step after the results before
        it. Runs whose history was written delivering everything in event
        order, the cancel at once, keep that order (the
        ``SIGNALS_FIRST_PATCH`` marker says which a run's history was written
        with).
        """
        is_start = any(j.event_type == Kind.WORKFLOW_EXECUTION_STARTED for j in jobs)
        signals = [j for j in jobs if j.event_type == Kind.WORKFLOW_EXECUTION_SIGNALED]
        cancels = sum(j.event_type == Kind.WORKFLOW_EXECUTION_CANCEL_REQUESTED for j in jobs)
        results = len(jobs) - len(signals) - cancels
        mixed = not is_start and (
            (bool(signals or updates) and results + cancels > 0) or (cancels > 0 and results > 0)
        )
        # A replayed task that recorded the marker takes it whether or not it
        # looks mixed now: updates its validator rejected left no event.
        recorded = replaying and SIGNALS_FIRST_PATCH in self._task_patches
        signals_first = False
        if mixed or recorded:
            signals_first = self.patched(SIGNALS_FIRST_PATCH) and mixed
        if signals_first:
            for job in signals:
                self._deliver(job)
                if self._task_failure is not None:
                    return
            for update in updates:
                self._deliver_update(update, validate=not replaying)
            self._run_until_quiescent()
            if self._task_failure is not None or self.closed:
                return
            for job in jobs:
                if job.event_type == Kind.WORKFLOW_EXECUTION_CANCEL_REQUESTED:
                    # A step later, as Temporal does: the code a result of this
                    # task resumes takes it before the cancel lands, so it
                    # knows the activity ran (and can undo it).
                    self._cancel_requested = True
                    self._loop.call_soon(self._cancel_run)
                elif job.event_type != Kind.WORKFLOW_EXECUTION_SIGNALED:
                    self._deliver(job)
                if self._task_failure is not None:
                    return
            self._run_until_quiescent()
            return
        start = False
        for job in jobs:
            if job.event_type == Kind.WORKFLOW_EXECUTION_STARTED:
                start = self._instantiate()
            else:
                self._deliver(job)
            if self._task_failure is not None:
                return
        late = self._deliver_updates(updates, validate=not replaying, at_start=start)
        # The run method starts after this activation's signals and updates
        # are handed over, so a signal-with-start's handler runs before the
        # first line of the run method.
        if start:
            self._start_run()
        self._deliver_late_updates(late, validate=not replaying)
        self._run_until_quiescent()

    def _run_until_quiescent(self) -> None:
        deadline = time.monotonic() + self.deadlock_timeout_s

        def should_stop() -> bool:
            if self._task_failure is None and time.monotonic() > deadline:
                self._fail_task(
                    DeadlockError(
                        f"workflow {self._defn.name} ({self._workflow_id}) ran for more than "
                        f"{self.deadlock_timeout_s:g} s without waiting on a timer, activity, "
                        "signal or condition: a loop must await something, and blocking "
                        "calls such as time.sleep or sync I/O belong in activities"
                    )
                )
            return self._task_failure is not None

        while True:
            self._loop.run_ready(should_stop)
            if should_stop() or self.closed:
                return
            if not self._resolve_one_condition():
                return

    def _resolve_one_condition(self) -> bool:
        # One at a time: the waiter resumed first may make the other
        # predicates false again.
        self._conditions = [(fn, fut) for fn, fut in self._conditions if not fut.done()]
        for index, (fn, fut) in enumerate(self._conditions):
            try:
                ready = fn()
            except Exception as exc:
                fut.set_exception(exc)
                del self._conditions[index]
                return True
            if ready:
                fut.set_result(None)
                del self._conditions[index]
                return True
        return False

    def _task_error(self, exc: BaseException) -> BaseException:
        if isinstance(exc, NonDeterminismError | WorkflowTaskError):
            return exc
        error = WorkflowTaskError(
            f"workflow task failed: {type(exc).__name__}: {exc}",
            failure=exception_to_failure(exc, self._converter),
        )
        error.__cause__ = exc
        return error
