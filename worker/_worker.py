"""The worker: polls a task queue, runs workflow tasks and activities.

Workflow tasks run on cached :class:`WorkflowInstance` objects so a task only
applies the events that are new since the last one; when the cache cannot
serve a task (evicted, or another worker ran the previous task) the worker
fetches the full history and replays it. Completions ask the server to hand
back the next task directly (eager activities, and the workflow task an
activity result schedules), which saves a poll round trip per step.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from worker._activity_runner import ActivityRunner, NotRegistered
from worker._definition import ActivityDefinition, WorkflowDefinition
from worker._failure import exception_to_failure
from worker._http import ns_path, wf_path
from worker._payloads import transform
from worker._workflow_instance import WorkflowInstance, WorkflowTaskError
from worker.client import Client
from worker.errors import BatonError, NonDeterminismError, TaskNotFoundError
from worker.wire import Failure, HistoryEvent, Payload

log = logging.getLogger("baton.worker")


class Worker(ActivityRunner):
    """Runs the given workflows and activities from one task queue.

    Args:
        client: The client whose endpoints and namespace the worker uses.
        task_queue: The task queue to poll.
        workflows: Workflow classes decorated with ``@workflow.defn``.
        activities: Activity functions decorated with ``@activity.defn``.
        max_cached_workflows: Runs kept in memory between their tasks.
        max_concurrent_workflow_tasks: Workflow tasks run at once.
        max_concurrent_activities: Activity attempts run at once.
        identity: Name of this worker in history (defaults to pid@host).
        eager_activities: Ask for activities this worker schedules to be
            handed back in the completion response.
    """

    def __init__(
        self,
        client: Client,
        *,
        task_queue: str,
        workflows: Sequence[type] = (),
        activities: Sequence[Any] = (),
        max_cached_workflows: int = 1000,
        max_concurrent_workflow_tasks: int = 100,
        max_concurrent_activities: int = 100,
        workflow_pollers: int = 4,
        activity_pollers: int = 4,
        identity: str | None = None,
        eager_activities: bool = True,
        build_id: str | None = None,
    ):
        self.client = client
        self.task_queue = task_queue
        self.identity = identity or f"{client.identity}/{uuid.uuid4().hex[:6]}"
        self.build_id = build_id
        self._workflows = {d.name: d for d in map(WorkflowDefinition.from_class, workflows)}
        self._activities = {d.name: d for d in map(ActivityDefinition.from_callable, activities)}
        self._cache: OrderedDict[str, WorkflowInstance] = OrderedDict()
        self._max_cached = max_cached_workflows
        self._run_locks: dict[str, asyncio.Lock] = {}
        self._wf_slots = asyncio.Semaphore(max_concurrent_workflow_tasks)
        self._act_slots = asyncio.Semaphore(max_concurrent_activities)
        self._wf_pollers = workflow_pollers if self._workflows else 0
        self._act_pollers = activity_pollers if self._activities else 0
        self._eager = max_concurrent_activities if (eager_activities and self._activities) else 0
        self._tasks: set[asyncio.Task[Any]] = set()
        self._pollers: list[asyncio.Task[None]] = []
        self._stopping = asyncio.Event()
        self.converter = client.data_converter
        if not self._workflows and not self._activities:
            raise ValueError("a worker needs at least one workflow or activity")

    # ------------------------------------------------------------------ lifecycle

    async def run(self) -> None:
        """Poll until :meth:`shutdown` is called (or the task is cancelled)."""
        self._pollers = [
            asyncio.create_task(self._poll_workflows(i)) for i in range(self._wf_pollers)
        ]
        self._pollers += [
            asyncio.create_task(self._poll_activities(i)) for i in range(self._act_pollers)
        ]
        try:
            await self._stopping.wait()
        finally:
            await self._stop()

    async def shutdown(self) -> None:
        self._stopping.set()

    async def _stop(self) -> None:
        for t in self._pollers:
            t.cancel()
        for t in list(self._tasks):
            t.cancel()
        await asyncio.gather(*self._pollers, *self._tasks, return_exceptions=True)

    async def __aenter__(self) -> Worker:
        self._runner = asyncio.create_task(self.run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.shutdown()
        with contextlib.suppress(asyncio.CancelledError):
            await self._runner

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _call(self, path: str, body: Any, **params: Any) -> Any:
        return await self.client.call(
            "POST", ns_path(self.client.namespace, path), body, params=params or None
        )

    # ------------------------------------------------------------------ polling

    async def _poll_loop(self, kind: str, slots: asyncio.Semaphore, handle: Any) -> None:
        body = {
            "task_queue": self.task_queue,
            "identity": self.identity,
            "wait_s": 30.0,
            "build_id": self.build_id,
        }
        backoff = 0.1
        while not self._stopping.is_set():
            await slots.acquire()
            try:
                res = await self._call(f"/{kind}-tasks/poll", body)
                backoff = 0.1
            except asyncio.CancelledError:
                slots.release()
                raise
            except BatonError as exc:
                slots.release()
                log.warning("%s poll failed: %s", kind, exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            task = res.get("task") if res else None
            if task is None:
                slots.release()
                continue
            self._spawn(self._with_slot(slots, handle(task)))

    @staticmethod
    async def _with_slot(slots: asyncio.Semaphore, coro: Any) -> None:
        try:
            await coro
        finally:
            slots.release()

    async def _poll_workflows(self, _i: int) -> None:
        await self._poll_loop("workflow", self._wf_slots, self._handle_workflow_task)

    async def _poll_activities(self, _i: int) -> None:
        await self._poll_loop("activity", self._act_slots, self._run_activity)

    # ------------------------------------------------------------------ workflow tasks

    def _lock(self, run_id: str) -> asyncio.Lock:
        lock = self._run_locks.get(run_id)
        if lock is None:
            lock = self._run_locks[run_id] = asyncio.Lock()
        return lock

    def _evict(self, run_id: str) -> None:
        inst = self._cache.pop(run_id, None)
        if inst is not None:
            inst.dispose()

    def _cache_put(self, inst: WorkflowInstance) -> None:
        self._cache[inst.run_id] = inst
        self._cache.move_to_end(inst.run_id)
        while len(self._cache) > self._max_cached:
            old, evicted = self._cache.popitem(last=False)
            evicted.dispose()
            self._run_locks.pop(old, None)

    async def _handle_workflow_task(self, task: dict[str, Any]) -> None:
        run_id = task["run_id"]
        async with self._lock(run_id):
            next_task: dict[str, Any] | None = task
            while next_task is not None:
                current = next_task
                try:
                    next_task = await self._workflow_task(current)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception(
                        "workflow task of %s failed in the worker", current.get("workflow_id")
                    )
                    self._evict(run_id)
                    next_task = None
        if run_id not in self._cache:
            self._run_locks.pop(run_id, None)

    async def _fetch_history(self, task: dict[str, Any], upto: int) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        nxt = 1
        while nxt < upto:
            res = await self.client.call(
                "GET",
                wf_path(task["namespace"], task["workflow_id"], "/history"),
                params={"run_id": task["run_id"], "from_event_id": nxt},
            )
            page = [e for e in res["events"] if e["event_id"] < upto]
            if not page:
                break
            events.extend(page)
            nxt = events[-1]["event_id"] + 1
        return events

    def _new_instance(self, task: dict[str, Any]) -> WorkflowInstance:
        defn = self._workflows.get(task["workflow_type"])
        if defn is None:
            raise NotRegistered(
                f"workflow type {task['workflow_type']!r} is not registered on this worker "
                f"(it has: {', '.join(sorted(self._workflows)) or 'none'})"
            )
        return WorkflowInstance(
            definition=defn,
            namespace=task["namespace"],
            workflow_id=task["workflow_id"],
            run_id=task["run_id"],
            converter=self.converter.payload_converter,
        )

    async def _instance_for(
        self, task: dict[str, Any]
    ) -> tuple[WorkflowInstance, list[dict[str, Any]]]:
        """The instance to run ``task`` on and the events it still has to apply."""
        events = task["events"]
        inst = self._cache.get(task["run_id"])
        if inst is not None and _goes_on_from(inst, task):
            return inst, events
        self._evict(task["run_id"])
        first = events[0]["event_id"] if events else task["started_event_id"] + 1
        earlier = await self._fetch_history(task, first) if first > 1 else []
        return self._new_instance(task), earlier + events

    async def _workflow_task(self, task: dict[str, Any]) -> dict[str, Any] | None:
        if task.get("query"):
            await self._query_task(task)
            return None
        token = task["task_token"]
        inst: WorkflowInstance | None = None
        try:
            inst, raw_events = await self._instance_for(task)
            await transform(raw_events, self.converter.codec, encode=False)
            updates = await transform(task.get("updates") or [], self.converter.codec, encode=False)
            events = [HistoryEvent.model_validate(e) for e in raw_events]
            commands = inst.activate(events, updates=updates)
        except Exception as exc:
            self._evict(task["run_id"])
            if inst is not None:
                inst.dispose()
            await self._fail_workflow_task(task, exc)
            return None
        body = {
            "task_token": token,
            "commands": await transform(
                [c.model_dump(mode="json") for c in commands], self.converter.codec, encode=True
            ),
            "identity": self.identity,
            "eager_activities": self._eager_slots(),
            "return_new_workflow_task": True,
        }
        try:
            res = await self._call("/workflow-tasks/complete", body)
        except TaskNotFoundError:
            self._evict(task["run_id"])
            inst.dispose()
            return None
        except BatonError as exc:
            log.warning("completing the workflow task of %s failed: %s", task["workflow_id"], exc)
            self._evict(task["run_id"])
            inst.dispose()
            if not exc.retryable:
                await self._fail_workflow_task(task, exc)
            return None
        if inst.closed:
            self._evict(task["run_id"])
            inst.dispose()
        else:
            self._cache_put(inst)
        for act in res.get("activity_tasks") or []:
            self._spawn(self._eager_activity(act))
        nxt: dict[str, Any] | None = res.get("workflow_task")
        return nxt

    def _eager_slots(self) -> int:
        # Only ask for as many activities as there are free slots to run them.
        return min(self._eager, max(0, getattr(self._act_slots, "_value", 0)), 100)

    async def _eager_activity(self, act: dict[str, Any]) -> None:
        await self._act_slots.acquire()
        try:
            await self._run_activity(act)
        finally:
            self._act_slots.release()

    async def _fail_workflow_task(self, task: dict[str, Any], exc: BaseException) -> None:
        cause = "NonDeterminism" if isinstance(exc, NonDeterminismError) else "WorkflowTaskFailed"
        if isinstance(exc, WorkflowTaskError):
            failure = exc.failure
        else:
            failure = exception_to_failure(exc, self.converter.payload_converter)
        if isinstance(exc, NonDeterminismError):
            failure = Failure(
                message=str(exc), type="NonDeterminismError", stack_trace=failure.stack_trace
            )
        log.warning(
            "workflow task of %s (%s) failed: %s",
            task["workflow_id"],
            task["workflow_type"],
            failure.message,
        )
        body = {
            "task_token": task["task_token"],
            "failure": await transform(failure.model_dump(), self.converter.codec, encode=True),
            "cause": cause,
            "identity": self.identity,
        }
        with contextlib.suppress(TaskNotFoundError):
            await self._call("/workflow-tasks/fail", body)

    async def _query_task(self, task: dict[str, Any]) -> None:
        q = task["query"]
        result: dict[str, Any] | None = None
        failure: dict[str, Any] | None = None
        try:
            inst = self._cache.get(task["run_id"])
            if inst is None or not _goes_on_from(inst, task):
                events = await self._fetch_history(task, task["history_length"] + 1)
                await transform(events, self.converter.codec, encode=False)
                inst = self._new_instance(task)
                inst.activate([HistoryEvent.model_validate(e) for e in events], run_final=False)
            args = await transform(q.get("input") or [], self.converter.codec, encode=False)
            answer = inst.query(q["name"], [Payload.model_validate(a) for a in args])
            result = (await transform([answer.model_dump()], self.converter.codec, encode=True))[0]
        except Exception as exc:
            failure = exception_to_failure(exc, self.converter.payload_converter).model_dump()
        with contextlib.suppress(TaskNotFoundError):
            await self._call(
                "/query-tasks/respond",
                {"task_token": task["task_token"], "result": result, "failure": failure},
            )


def _goes_on_from(inst: WorkflowInstance, task: dict[str, Any]) -> bool:
    """True if ``task`` continues the history ``inst`` has applied.

    The same event id is not enough: after a forced failover the new region
    may hold another branch's event under that id, with another version.
    """
    if inst.last_event_id != task["previous_started_event_id"]:
        return False
    version = task.get("previous_started_event_version")
    return version is None or inst.last_event_version == version
