"""Running workflow tasks and query tasks for the worker.

A mixin of :class:`worker._worker.Worker`, which polls the tasks and holds the
client, the registered workflows, the run cache and the data converter.

Workflow tasks run on cached :class:`WorkflowInstance` objects so a task only
applies the events that are new since the last one; when the cache cannot
serve a task (evicted, or another worker ran the previous task) the worker
fetches the full history and replays it. Completions ask the server to hand
back the next task directly (eager activities, and the workflow task an
activity result schedules), which saves a poll round trip per step.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import logging
import math
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from worker._activity_runner import (
    SHUTDOWN_FAILURE_TYPE,
    NotRegistered,
    shutdown_error,
)
from worker._completion_limits import CompletionLimits
from worker._definition import WorkflowDefinition
from worker._failure import exception_to_failure
from worker._gc import collector_paused
from worker._history import events_from_wire
from worker._history_pages import history_pages
from worker._limits import cut_failure, largest_over, too_large
from worker._payloads import decode_events, decode_wire, encode_wire
from worker._run_cache import RunCache, RunLock
from worker._workflow_instance import (
    DeadlockError,
    UnknownQueryError,
    WorkflowInstance,
    WorkflowTaskError,
)
from worker._workflow_threads import QUERY_FAILED, WorkflowThreads
from worker.client import Client
from worker.errors import (
    ApplicationError,
    BatonError,
    NonDeterminismError,
    PayloadTooLargeError,
    TaskNotFoundError,
)
from worker.wire import Command, CommandType, Failure, HistoryEvent, Payload
from worker.wire import EventType as Kind

log = logging.getLogger("baton.worker")

#: How long a worker stops running tasks ahead after the server refused one
#: for a reason every other would meet too: its clock (the server takes a
#: task's time only close to its own), or worker versioning in the namespace.
REFUSAL_PAUSE_S = 300.0


class WorkflowTaskRunner(CompletionLimits):
    """Runs workflow tasks (and queries) on cached or replayed instances."""

    client: Client
    _workflows: dict[str, WorkflowDefinition]
    _cache: RunCache
    sticky_task_queue: str | None
    sticky_schedule_to_start_s: float
    deployment: str | None
    build_id: str | None
    _behaviors: dict[str, str | None]
    _pause_after: Callable[[str], int | None]
    speculative_workflow_tasks: bool
    _speculation_off_until: float
    _run_ahead: collections.Counter[str]
    _threads: WorkflowThreads

    def _spawn(self, coro: Any) -> None:
        raise NotImplementedError

    def _eager_slots(self) -> int:
        raise NotImplementedError

    async def _eager_activity(self, act: dict[str, Any]) -> None:
        raise NotImplementedError

    def _version_fields(self) -> dict[str, Any]:
        if self.deployment is None:
            return {}
        return {"deployment": self.deployment, "build_id": self.build_id}

    # ------------------------------------------------------------------ cache

    def _lock(self, run_id: str) -> RunLock:
        return self._cache.lock(run_id)

    def _evict(self, run_id: str) -> None:
        self._cache.evict(run_id)

    def _cache_put(self, inst: WorkflowInstance) -> None:
        self._cache.put(inst.run_id, inst)

    # ------------------------------------------------------------------ tasks

    async def _handle_workflow_task(self, task: dict[str, Any]) -> None:
        """Run ``task`` and the tasks of the same run its completions hand back."""
        current: dict[str, Any] | None = task
        try:
            async with self._lock(task["run_id"]):
                while current is not None:
                    current = await self._workflow_task_logged(current)
        except asyncio.CancelledError:
            if current is None or not self._stopping.is_set():
                raise
            # Shutdown's grace is over: give the task back so that another
            # worker retries it now, not after its timeout. A query is left
            # to time out: a failure would reach its caller as the answer.
            if not current.get("query"):
                await self._report_shutdown(
                    self._fail_workflow_task(current, shutdown_error()), current["workflow_id"]
                )

    async def _workflow_task_logged(self, task: dict[str, Any]) -> dict[str, Any] | None:
        try:
            return await self._workflow_task(task)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("workflow task of %s failed in the worker", task.get("workflow_id"))
            self._evict(task["run_id"])
            return None

    def _new_instance(self, task: dict[str, Any]) -> WorkflowInstance:
        defn = self._workflows.get(task["workflow_type"])
        if defn is None:
            raise NotRegistered(
                f"workflow type {task['workflow_type']!r} is not registered on this worker "
                f"(it has: {', '.join(sorted(self._workflows)) or 'none'})"
            )
        inst = WorkflowInstance(
            definition=defn,
            namespace=task["namespace"],
            workflow_id=task["workflow_id"],
            run_id=task["run_id"],
            converter=self.converter.payload_converter,
        )
        timeout = self._threads.timeout
        inst.deadlock_timeout_s = math.inf if timeout is None else timeout
        if timeout is not None:
            inst.defer_teardown = functools.partial(self._teardown_later, inst)
        return inst

    def _teardown_later(self, inst: WorkflowInstance, teardown: Callable[[], None]) -> None:
        if self._threads.closed:
            teardown()  # the worker is stopping
        else:
            self._spawn(self._teardown_on_thread(inst, teardown))

    async def _teardown_on_thread(
        self, inst: WorkflowInstance, teardown: Callable[[], None]
    ) -> None:
        what = f"the teardown of workflow {inst.workflow_type} ({inst.workflow_id})"
        try:
            await self._threads.run(inst, teardown, what=what)
        except DeadlockError:
            pass  # the pool said so; the thread finishes it if it comes back
        except RuntimeError:
            teardown()  # the pool closed before it ran: the worker is stopping

    async def _activate(self, inst: WorkflowInstance, *args: Any, **kwargs: Any) -> list[Command]:
        """``inst.activate(*args, **kwargs)`` on a workflow thread, the loop free meanwhile.

        Raises:
            DeadlockError: The code did not yield in time; ``inst`` is abandoned.
        """
        what = f"workflow {inst.workflow_type} ({inst.workflow_id})"
        return await self._threads.run(
            inst, functools.partial(inst.activate, *args, **kwargs), what=what
        )

    async def _instance_for(
        self, task: dict[str, Any]
    ) -> tuple[WorkflowInstance, list[HistoryEvent]]:
        """The instance to run ``task`` on and the events before the task's own it still
        has to apply (decoded and typed).

        A run not in the cache is replayed here from its history, page by
        page, all but the last page: the task applies that one with its own.
        """
        inst = self._cache.get(task["run_id"])
        if inst is not None and _goes_on_from(inst, task):
            self._cache.hits += 1
            return inst, []
        if task.get("previous_started_event_id"):
            self._cache.misses += 1  # the run had a task before: a cache could have served it
        self._evict(task["run_id"])
        events = task["events"]
        first = events[0]["event_id"] if events else task["started_event_id"] + 1
        inst = self._new_instance(task)
        # as the task's own activation will: the earlier tasks replay with it
        inst.target_version_changed = bool(task.get("target_version_changed"))
        try:
            return inst, await self._replay_but_last(inst, task, first)
        except BaseException:
            inst.dispose()
            raise

    async def _replay_but_last(
        self, inst: WorkflowInstance, task: dict[str, Any], upto: int
    ) -> list[HistoryEvent]:
        """Replay the run's history before event ``upto`` into ``inst``, page by
        page, all but the last page, which is returned for the caller to apply.

        The collector stays paused for the whole replay: collections between
        pages cost more than the pages' short waits (a long wait resumes it).
        """
        last: list[HistoryEvent] = []
        with collector_paused():
            async with contextlib.aclosing(
                history_pages(self.client, task, upto, self.converter)
            ) as pages:
                async for page in pages:
                    if last:
                        await self._activate(inst, last, run_final=False)
                    last = page
        return last

    async def _workflow_task(self, task: dict[str, Any]) -> dict[str, Any] | None:
        if task.get("query"):
            await self._query_task(task)
            return None
        token = task["task_token"]
        inst: WorkflowInstance | None = None
        try:
            inst, earlier = await self._instance_for(task)
            await decode_events(task["events"], self.converter)
            updates = await decode_wire(task.get("updates") or [], self.converter)
            with collector_paused():
                events = earlier + events_from_wire(task["events"])
                inst.target_version_changed = bool(task.get("target_version_changed"))
                commands = await self._activate(inst, events, updates=updates)
        except (Exception, KeyboardInterrupt, SystemExit) as exc:
            # Workflow code runs on a thread of its own (or inline): an exit
            # coming out of it is the code's own, never the process's signal.
            # Left to reach the worker's event loop it would stop the worker.
            self._evict(task["run_id"])
            if inst is not None:
                inst.dispose()
            if not await self._fail_run_on_nondeterminism(task, exc):
                await self._fail_workflow_task(task, exc)
            return None
        stopping = self._stopping.is_set()
        body = {
            "task_token": token,
            "commands": await encode_wire(
                [c.model_dump(mode="json") for c in commands], self.converter
            ),
            "identity": self.identity,
            # A stopping worker takes no new work: the server dispatches it.
            "eager_activities": 0 if stopping else self._eager_slots(),
            "return_new_workflow_task": not stopping,
            "return_history_tail": not stopping and self._speculating(),
            **self._version_fields(),
        }
        if self.deployment is not None:
            body["versioning_behavior"] = self._behaviors.get(task["workflow_type"])
        if self.sticky_task_queue is not None and not stopping and not inst.closed:
            # the run stays cached here: its next tasks come to this worker first
            body["sticky_task_queue"] = self.sticky_task_queue
            body["sticky_schedule_to_start_s"] = self.sticky_schedule_to_start_s
        try:
            res = await self._complete_workflow_task(body, task)
        except TaskNotFoundError:
            self._drop(inst)
            return None
        except BatonError as exc:
            log.warning("completing the workflow task of %s failed: %s", task["workflow_id"], exc)
            self._drop(inst)
            if not exc.retryable:
                await self._fail_workflow_task(task, exc)
            return None
        if res is None:  # the commands were over a limit: the run failed or paused
            self._drop(inst)
            return None
        return self._completed(inst, res)

    async def _fail_run_on_nondeterminism(self, task: dict[str, Any], exc: BaseException) -> bool:
        """Fail the run for ``exc``, a non-determinism error, when its workflow
        lists that type (or a base of it) among its failure exception types, as
        in Temporal; whether it did."""
        defn = self._workflows.get(task["workflow_type"])
        if not isinstance(exc, NonDeterminismError) or defn is None:
            return False
        if not issubclass(NonDeterminismError, defn.failure_exception_types):
            return False
        failure = Failure(message=str(exc), type="NonDeterminismError")
        fail = Command(type=CommandType.FAIL_WORKFLOW, attributes={"failure": failure.model_dump()})
        body = {
            "task_token": task["task_token"],
            "commands": await encode_wire([fail.model_dump(mode="json")], self.converter),
            "identity": self.identity,
            **self._version_fields(),
        }
        try:
            await self._complete_workflow_task(body, task)
        except BatonError as err:
            log.warning("failing the run of %s failed: %s", task["workflow_id"], err)
            return isinstance(err, TaskNotFoundError)
        return True

    def _completed(self, inst: WorkflowInstance, res: dict[str, Any]) -> dict[str, Any] | None:
        """Keep (or drop) ``inst`` after its task's completion was recorded, start
        the eager activities the answer hands over; the next task it hands over."""
        if inst.closed:
            self._drop(inst)
        else:
            inst.history_tail = res.get("history_tail")
            self._cache_put(inst)
        for act in res.get("activity_tasks") or []:
            self._spawn(self._eager_activity(act))
        nxt: dict[str, Any] | None = res.get("workflow_task")
        return nxt

    # ------------------------------------------------------------------ speculative tasks

    async def _report_result(self, task: dict[str, Any], payload: Payload) -> dict[str, Any] | None:
        """Report an activity's result with the workflow task it schedules, run
        ahead on the cached run (see :mod:`store.speculation`), when the run is
        cached here with the history tail of its last task."""
        run_id = task["run_id"]
        if (
            not self._speculating()
            or self._stopping.is_set()
            or task.get("scheduled_event_id") is None
            or self._cache.busy(run_id)  # a task of the run is running: it moves the run on
            or getattr(self._cache.get(run_id), "history_tail", None) is None
        ):
            return await super()._report_result(task, payload)
        async with self._lock(run_id):
            inst = self._cache.get(run_id)
            tail = inst.history_tail if inst is not None else None
            if inst is None or tail is None or inst.closed:
                return await super()._report_result(task, payload)
            inst.history_tail = None  # used once, whatever comes of it
            if inst.open_activities() > 1:
                # Another result would race this one's task (a fan-out): let
                # the results land alone and their tasks take several at once.
                return await super()._report_result(task, payload)
            return await self._speculate(inst, tail, task, payload)

    def _speculating(self) -> bool:
        """Whether this worker runs tasks ahead now (see ``speculative_workflow_tasks``)."""
        return (
            self.speculative_workflow_tasks
            and self.deployment is None  # a versioned run's tasks route by version
            and time.monotonic() >= self._speculation_off_until
        )

    def _refused(self, inst: WorkflowInstance, res: dict[str, Any]) -> None:
        reason = res.get("speculation_reason")
        detail = res.get("speculation_refused")
        if reason in ("clock", "versioned"):
            # Every task would be refused, and each refusal costs a replay.
            self._speculation_off_until = time.monotonic() + REFUSAL_PAUSE_S
            hint = "is this host's clock synced?" if reason == "clock" else "a versioned namespace"
            log.warning(
                "not running workflow tasks ahead for %.0f s: %s (%s)",
                REFUSAL_PAUSE_S,
                detail,
                hint,
            )
        else:
            log.debug("the task run ahead for %s was refused: %s", inst.workflow_id, detail)

    async def _speculate(
        self,
        inst: WorkflowInstance,
        tail: dict[str, Any],
        task: dict[str, Any],
        payload: Payload,
    ) -> dict[str, Any] | None:
        events: list[dict[str, Any]] = tail["events"]
        n = int(tail["next_event_id"])
        if not events or events[0]["event_id"] != inst.last_event_id + 1:
            self._drop(inst)
            return await super()._report_result(task, payload)
        version = events[-1]["version"]
        at = datetime.now(UTC).isoformat()
        sid = task["scheduled_event_id"]
        ahead = [
            (Kind.ACTIVITY_TASK_STARTED, {"scheduled_event_id": sid, "attempt": task["attempt"]}),
            (
                Kind.ACTIVITY_TASK_COMPLETED,
                {"scheduled_event_id": sid, "result": payload.model_dump()},
            ),
            (Kind.WORKFLOW_TASK_SCHEDULED, {"attempt": 1}),
            (
                Kind.WORKFLOW_TASK_STARTED,
                {
                    "scheduled_event_id": n + 2,
                    "identity": self.identity,
                    "history_length": n + 3,
                    "suggest_continue_as_new": False,
                },
            ),
        ]
        events = events + [
            {
                "event_id": n + i,
                "event_type": kind.value,
                "event_time": at,
                "version": version,
                "attributes": attributes,
            }
            for i, (kind, attributes) in enumerate(ahead)
        ]
        try:
            await decode_events(events, self.converter)
            with collector_paused():
                commands = await self._activate(inst, events_from_wire(events))
            self._cache.hits += 1  # the cached run served the task
        except Exception as exc:
            # The real task meets the same and reports it: run it as usual.
            log.debug("running ahead the workflow task of %s failed: %s", inst.workflow_id, exc)
            self._drop(inst)
            return await super()._report_result(task, payload)
        stopping = self._stopping.is_set()
        body: dict[str, Any] = {
            "task_token": task["task_token"],
            "result": payload.model_dump(),
            "identity": self.identity,
            "workflow_task": {
                "next_event_id": n,
                "version": version,
                "started_time": at,
                "commands": await encode_wire(
                    [c.model_dump(mode="json") for c in commands], self.converter
                ),
                "eager_activities": 0 if stopping else self._eager_slots(),
            },
        }
        if self.sticky_task_queue is not None and not stopping and not inst.closed:
            body["workflow_task"]["sticky_task_queue"] = self.sticky_task_queue
            body["workflow_task"]["sticky_schedule_to_start_s"] = self.sticky_schedule_to_start_s
        try:
            res = await self._call_handing_back(
                "/activity-tasks/complete", body, return_new_workflow_task="true"
            )
        except TaskNotFoundError:
            self._drop(inst)
            log.info(
                "activity %s finished after its task closed (timed out or canceled)",
                task["activity_type"],
            )
            return None
        except PayloadTooLargeError:
            # The result or a command run ahead is over the limit, and nothing
            # was recorded: the result goes alone, and the real task deals
            # with its own commands.
            self._drop(inst)
            return await super()._report_result(task, payload)
        except BaseException:
            self._drop(inst)  # recorded or not, the instance may be ahead of history
            raise
        if (res or {}).get("speculation") != "accepted":
            # The result is recorded alone; the instance ran a task that is not history.
            self._run_ahead["refused"] += 1
            self._refused(inst, res or {})
            self._drop(inst)
            nxt: dict[str, Any] | None = (res or {}).get("workflow_task")
            return nxt
        self._run_ahead["accepted"] += 1
        return self._completed(inst, res)

    def _drop(self, inst: WorkflowInstance) -> None:
        self._evict(inst.run_id)
        inst.dispose()  # evict disposes only the instance it caches

    async def _fail_workflow_task(
        self, task: dict[str, Any], exc: BaseException, *, pause: bool = False
    ) -> None:
        cause = "NonDeterminism" if isinstance(exc, NonDeterminismError) else "WorkflowTaskFailed"
        if isinstance(exc, DeadlockError) or isinstance(exc.__cause__, DeadlockError):
            cause = "Deadlock"
        if isinstance(exc, WorkflowTaskError):
            failure = exc.failure
        elif isinstance(exc, DeadlockError):
            # where the code was stuck, not where the worker noticed it
            failure = Failure(message=str(exc), type="DeadlockError", stack_trace=exc.stack)
        else:
            failure = exception_to_failure(exc, self.converter.payload_converter)
        if isinstance(exc, NonDeterminismError):
            failure = Failure(
                message=str(exc), type="NonDeterminismError", stack_trace=failure.stack_trace
            )
        log.warning(
            "workflow task of %s (%s) failed: %s: %s",
            task["workflow_id"],
            task["workflow_type"],
            failure.type,
            failure.message,
        )
        limit = self._pause_after(task["workflow_type"])
        # A task a stopping worker gives back says nothing about the code: a
        # deploy must not pause the runs it interrupts.
        given_back = isinstance(exc, ApplicationError) and exc.type == SHUTDOWN_FAILURE_TYPE
        body = {
            "task_token": task["task_token"],
            "failure": failure.model_dump(),
            "cause": cause,
            "identity": self.identity,
            "pause": pause
            or (limit is not None and not given_back and int(task.get("attempt") or 1) >= limit),
            **self._version_fields(),
        }
        with contextlib.suppress(TaskNotFoundError):
            try:
                await self._call("/workflow-tasks/fail", await encode_wire(body, self.converter))
            except PayloadTooLargeError as exc:
                limit = await self._payload_limit(exc)
                body["failure"] = cut_failure(failure, limit or 1 << 20).model_dump()
                await self._call("/workflow-tasks/fail", await encode_wire(body, self.converter))

    async def _query_task(self, task: dict[str, Any]) -> None:
        q = task["query"]
        body: dict[str, Any] = {"task_token": task["task_token"], "result": None, "failure": None}
        replayed: WorkflowInstance | None = None
        try:
            inst = self._cache.get(task["run_id"])
            if inst is None or not _goes_on_from(inst, task):
                inst = replayed = self._new_instance(task)
                last = await self._replay_but_last(inst, task, task["history_length"] + 1)
                with collector_paused():
                    await self._activate(inst, last, run_final=False)
            args = await decode_wire(q.get("input") or [], self.converter)
            answer = await self._threads.run(
                inst,
                functools.partial(inst.query, q["name"], [Payload.model_validate(a) for a in args]),
                what=f"query {q['name']!r} of workflow {inst.workflow_type} ({inst.workflow_id})",
                then=QUERY_FAILED,
            )
            body["result"] = answer.model_dump()
        except Exception as exc:
            if isinstance(exc, DeadlockError):
                self._evict(task["run_id"])  # a thread is still in it: never used again
            if isinstance(exc, UnknownQueryError):
                # a name the caller got wrong: nothing of the worker's stack to show
                failure = Failure(message=exc.message, type="UnknownQuery", non_retryable=True)
            else:
                failure = exception_to_failure(exc, self.converter.payload_converter)
            body["failure"] = failure.model_dump()
        finally:
            # Built for this answer only: tear it down now, not when the
            # garbage collector gets to it (which would close its coroutines
            # at some random later point, maybe inside another run's activation).
            if replayed is not None:
                replayed.dispose()
        body = await encode_wire(body, self.converter)
        with contextlib.suppress(TaskNotFoundError):
            try:
                await self._call("/query-tasks/respond", body)
            except PayloadTooLargeError as exc:
                limit = await self._payload_limit(exc)
                size = None if limit is None else largest_over(body, limit)
                if limit is None or size is None:
                    raise
                kind = "answer to" if body["result"] is not None else "failure of"
                what = f"the {kind} query {q['name']!r}"
                body["result"] = None
                body["failure"] = await self._wire_failure(too_large(what, size, limit))
                await self._call("/query-tasks/respond", body)


def _goes_on_from(inst: WorkflowInstance, task: dict[str, Any]) -> bool:
    """True if ``task`` continues the history ``inst`` has applied.

    The same event id is not enough: after a forced failover the new region
    may hold another branch's event under that id, with another version.
    """
    if inst.last_event_id != task["previous_started_event_id"]:
        return False
    version = task.get("previous_started_event_version")
    return version is None or inst.last_event_version == version
