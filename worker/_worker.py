"""The worker: polls a task queue, runs workflow tasks and activities, and stops cleanly.

Workflow tasks run in :mod:`worker._workflow_tasks`, activity attempts in
:mod:`worker._activity_runner`; this module holds the lifecycle. Stopping is
a drain: polling stops at once, the work in hand gets a grace period to
finish, and what is still running then is cancelled and handed back to the
server as a retryable ``WorkerShutdown`` failure, so another worker retries it
straight away instead of after its timeout.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import logging
import signal
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from datetime import timedelta
from typing import Any

from worker._activity_runner import SHUTDOWN_REPORT_S, shutdown_error
from worker._definition import (
    ActivityDefinition,
    Registry,
    WorkflowDefinition,
    by_name,
    check_behavior,
    exception_types,
)
from worker._http import ns_path
from worker._run_cache import RunCache
from worker._start_options import checked_duration, seconds, worker_identity
from worker._worker_options import at_least_one, check_task_queue, pause_limits, version
from worker._worker_start import require_namespace
from worker._workflow_tasks import WorkflowTaskRunner
from worker._workflow_threads import (
    DEFAULT_DEADLOCK_TIMEOUT_S,
    WorkflowThreads,
    deadlock_timeout_seconds,
)
from worker.client import Client
from worker.errors import BatonError
from worker.wire.common import TASK_QUEUE_MAX_CHARS

log = logging.getLogger("baton.worker")

#: How long a stopping worker waits for the server to take each of its last reports.
STOP_REPORT_S = 5.0


def _reason(exc: BaseException) -> str:
    """Why a stopping worker's report failed (a timeout's own text is empty)."""
    if isinstance(exc, TimeoutError) and not str(exc):
        return f"the server did not answer within {STOP_REPORT_S:g} s"
    return str(exc)


#: Seconds a stopping worker lets running work finish before it gives it back.
DEFAULT_GRACEFUL_SHUTDOWN_S = 10.0


class Worker(WorkflowTaskRunner):
    """Runs the given workflows and activities from one task queue.

    Run it with ``await worker.run()`` and stop it with ``await
    worker.shutdown()``, or use it as ``async with Worker(...)``, which runs it
    in the background and shuts it down on exit. A worker process that should
    drain on SIGTERM (or Ctrl-C) calls ``await worker.run(handle_signals=True)``.

    Args:
        client: The client whose endpoints and namespace the worker uses.
        task_queue: The task queue to poll.
        workflows: Workflow classes decorated with ``@workflow.defn``.
        activities: Activity functions decorated with ``@activity.defn``.
        max_cached_workflows: Runs kept in memory between their tasks.
        max_concurrent_workflow_tasks: Workflow tasks run at once.
        max_concurrent_activities: Activity attempts run at once.
        workflow_pollers: Concurrent long-polls for workflow tasks.
        activity_pollers: Concurrent long-polls for activity tasks.
        identity: Name of this worker in history (defaults to pid@host).
        eager_activities: Ask for activities this worker schedules to be
            handed back in the completion response.
        deployment: Worker versioning: ``(deployment name, build id)`` this
            worker runs. It takes only tasks of runs routed to that version
            (see ``baton deployment``); without it, only unversioned tasks.
        pause_after_failed_workflow_tasks: Pause a workflow whose workflow task
            failed this many times in a row (the error's type, message and
            stack in the reason) instead of retrying it forever; a mapping
            sets it per workflow type. Off by default.
        workflow_failure_exception_types: Exception types that fail the run
            (an update handler's, the update) in every workflow of this worker,
            besides each ``@workflow.defn``'s ``failure_exception_types``.
        default_versioning_behavior: ``"pinned"`` or ``"auto-upgrade"`` for
            workflow types whose ``@workflow.defn`` names none. A versioned
            worker refuses to start with a type that has neither.
        sticky_queue: Keep each run's next workflow tasks on this worker while
            it caches the run (a queue of its own that it polls), so they
            apply only their new events instead of replaying the history.
            Off when ``max_cached_workflows`` is 0.
        sticky_schedule_to_start: How long the server waits for this worker
            to take such a task before any worker of ``task_queue`` may.
        speculative_workflow_tasks: When an activity of a run this worker
            caches finishes, run the workflow task its result schedules right
            away and send the commands with the result: one call and one write
            instead of two of each. The server records the task only if the
            run is as the worker assumed (otherwise the result alone, and the
            worker runs the real task). History is the same either way.
        graceful_shutdown_timeout: How long :meth:`shutdown` (and leaving
            ``async with``) lets running workflow tasks and activity attempts
            finish before it cancels them and reports them failed with
            ``WorkerShutdown``. Activities learn of it only by being
            cancelled, so keep it shorter than the deadline your deployment
            gives a process to exit (Kubernetes waits 30 s by default).
        deadlock_timeout: How long workflow code may run without yielding
            (awaiting a timer, activity, signal or condition). Workflow code
            runs on threads of the worker's own, so code that blocks
            (``time.sleep``, sync I/O, a loop that never awaits) holds up only
            its own run: past this its workflow task fails with cause
            ``Deadlock`` and is retried with backoff, and a query on it
            answers that error. ``None`` runs workflow code on the event loop
            with no limit, for stepping through it in a debugger.
        activity_executor: Taken as Temporal code passes it for plain
            (``def``) activities, and not used: the worker runs those on
            threads of its own, up to ``max_concurrent_activities``.
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
        deployment: tuple[str, str] | None = None,
        default_versioning_behavior: str | None = None,
        pause_after_failed_workflow_tasks: int | Mapping[str, int] | None = None,
        workflow_failure_exception_types: Sequence[type[BaseException]] = (),
        sticky_queue: bool = True,
        sticky_schedule_to_start: timedelta | float = 5.0,
        speculative_workflow_tasks: bool = True,
        graceful_shutdown_timeout: timedelta | float = DEFAULT_GRACEFUL_SHUTDOWN_S,
        deadlock_timeout: timedelta | float | None = DEFAULT_DEADLOCK_TIMEOUT_S,
        activity_executor: Executor | None = None,
    ):
        # A slot count or poller count of 0 is a worker that polls nothing
        # and says nothing about it.
        at_least_one(
            max_concurrent_workflow_tasks=max_concurrent_workflow_tasks,
            max_concurrent_activities=max_concurrent_activities,
            workflow_pollers=workflow_pollers,
            activity_pollers=activity_pollers,
        )
        check_task_queue(task_queue)
        self.client = client
        self.task_queue = task_queue
        self.identity = worker_identity(identity, client.identity, f"/{uuid.uuid4().hex[:6]}")
        self._instance = uuid.uuid4().hex
        self.deployment, self.build_id = version(deployment)
        default_versioning_behavior = check_behavior(
            default_versioning_behavior, "default_versioning_behavior"
        )
        self._workflows = by_name(map(WorkflowDefinition.from_class, workflows), "workflow")
        if extra := exception_types(
            workflow_failure_exception_types, "workflow_failure_exception_types"
        ):
            self._workflows = by_name(
                (
                    dataclasses.replace(
                        d, failure_exception_types=(*d.failure_exception_types, *extra)
                    )
                    for d in self._workflows.all()
                ),
                "workflow",
            )
        self._pause_after = pause_limits(pause_after_failed_workflow_tasks, self._workflows)
        self._activities = by_name(map(ActivityDefinition.from_callable, activities), "activity")
        self._cache = RunCache(max_cached_workflows)
        self._wf_slots = asyncio.Semaphore(max_concurrent_workflow_tasks)
        self._act_slots = asyncio.Semaphore(max_concurrent_activities)
        self._wf_pollers = workflow_pollers if self._workflows else 0
        # The run's own queue plus a sticky one (task queue names are free text).
        self.sticky_task_queue: str | None = None
        # (a worker that caches no run has nothing to go on from: none, as in Temporal)
        if sticky_queue and self._workflows and self._cache.capacity > 0:
            suffix = f"/sticky/{uuid.uuid4().hex}"
            # The suffix makes it unique; the prefix is for people reading it,
            # and is cut so that the name fits where the task queue's does.
            keep = TASK_QUEUE_MAX_CHARS - len(suffix)
            self.sticky_task_queue = f"{task_queue[:keep]}{suffix}"
        self.sticky_schedule_to_start_s = checked_duration(
            sticky_schedule_to_start, "sticky_schedule_to_start", above_zero=True, most=60
        )
        self.speculative_workflow_tasks = speculative_workflow_tasks
        self._speculation_off_until = 0.0
        self._run_ahead: collections.Counter[str] = collections.Counter()
        self._act_pollers = activity_pollers if self._activities else 0
        self._eager = max_concurrent_activities if (eager_activities and self._activities) else 0
        # Plain (sync) activities run on threads of the worker's own, as many
        # as attempts may run at once: asyncio's default pool has min(32, CPUs
        # + 4), so attempts past it queued behind the others while their
        # timeouts ran (and starved what else the loop ran in that pool).
        self._activity_executor: ThreadPoolExecutor | None = None
        if any(not d.is_async for d in self._activities.all()):
            self._activity_executor = ThreadPoolExecutor(
                max_workers=max_concurrent_activities, thread_name_prefix="baton-activity"
            )
        self._tasks: set[asyncio.Task[Any]] = set()
        self._attempts = set()
        self._pollers: list[asyncio.Task[None]] = []
        self.converter = client.data_converter
        self._grace_s = checked_duration(graceful_shutdown_timeout, "graceful_shutdown_timeout")
        self._threads = WorkflowThreads(
            max_concurrent_workflow_tasks, timeout=deadlock_timeout_seconds(deadlock_timeout)
        )
        # Shutdown: begun (pollers stop), the grace's end (moved closer by a
        # second, shorter request), and the drain every caller waits for.
        self._stopping = asyncio.Event()
        self._deadline = 0.0
        self._deadline_moved = asyncio.Event()
        self._drain_task: asyncio.Task[None] | None = None
        self._running = False
        if not self._workflows and not self._activities:
            raise ValueError("a worker needs at least one workflow or activity")
        behaviors: Registry[str | None] = Registry(
            (name, d.versioning_behavior or default_versioning_behavior)
            for name, d in self._workflows.items()
        )
        if self._workflows.has_dynamic:
            dyn = self._workflows.dynamic
            behaviors.with_dynamic(dyn.versioning_behavior or default_versioning_behavior)
        self._behaviors: dict[str, str | None] = behaviors
        missing = sorted(n for n, b in behaviors.items() if b is None)
        if behaviors.has_dynamic and behaviors.dynamic is None:
            missing.append("the dynamic workflow")
        if self.deployment is not None and missing:
            raise ValueError(
                f"a versioned worker needs a versioning behaviour for every workflow type; "
                f"{', '.join(missing)} has none: give it one with "
                "@workflow.defn(versioning_behavior='pinned' or 'auto-upgrade'), or the worker "
                "a default_versioning_behavior"
            )

    # ------------------------------------------------------------------ lifecycle

    async def run(self, *, handle_signals: bool = False) -> None:
        """Poll and work until :meth:`shutdown`, then drain (see :meth:`shutdown`).

        Args:
            handle_signals: Drain on SIGTERM or SIGINT (a second one skips
                what is left of the grace). Off by default, so that an
                application embedding the worker keeps its own handlers; for
                a worker process it is all the signal handling needed.

        Cancelling the task that runs this drains without a grace: running
        work is cancelled and handed back to the server at once.

        Raises:
            NamespaceNotFoundError: No region the client knows has the
                client's namespace (checked before any poll, as ``async
                with`` checks on entry).
        """
        if self._running:
            raise RuntimeError("a worker runs once: make a new Worker to run again")
        self._running = True
        await self._check_namespace()
        if self._stopping.is_set():  # shut down before it started
            await asyncio.shield(self._drain_once())
            return
        remove_handlers = self._install_signal_handlers() if handle_signals else _nothing
        self._pollers = [
            asyncio.create_task(self._poll_workflows(i)) for i in range(self._wf_pollers)
        ]
        if self.sticky_task_queue is not None:
            self._pollers += [
                asyncio.create_task(
                    self._poll_loop(
                        "workflow",
                        self._wf_slots,
                        self._handle_workflow_task,
                        queue=self.sticky_task_queue,
                    )
                )
                for _ in range(max(1, self._wf_pollers // 2))
            ]
        self._pollers += [
            asyncio.create_task(self._poll_activities(i)) for i in range(self._act_pollers)
        ]
        try:
            await self._stopping.wait()
        except asyncio.CancelledError:
            self._begin_shutdown(0.0)
            raise
        finally:
            try:
                await asyncio.shield(self._drain_once())
            finally:
                remove_handlers()

    def cache_stats(self) -> dict[str, int]:
        """Workflow tasks of runs that had a task before, served from this
        worker's cache (``hits``) or by replaying the history (``misses``)."""
        return {"hits": self._cache.hits, "misses": self._cache.misses}

    def speculation_stats(self) -> dict[str, int]:
        """Workflow tasks this worker ran ahead with an activity's result and
        the server recorded (``accepted``) or refused (``refused``)."""
        return {"accepted": self._run_ahead["accepted"], "refused": self._run_ahead["refused"]}

    async def shutdown(self, grace: timedelta | float | None = None) -> None:
        """Stop the worker and wait until it has drained.

        Polling stops at once. Workflow tasks and activity attempts already
        running get ``grace`` (default: the ``graceful_shutdown_timeout``
        option, 10 s) to finish; then each is cancelled and reported failed
        with a retryable ``WorkerShutdown`` failure, so the server retries it
        at once on another worker. Activities handed to this worker in a
        completion response that are still waiting for a slot are given back
        the same way immediately. Calling it again waits for the same drain; a
        shorter ``grace`` ends the grace sooner.
        """
        self._begin_shutdown(None if grace is None else seconds(grace))
        await asyncio.shield(self._drain_once())

    def _begin_shutdown(self, grace: float | None) -> None:
        grace = self._grace_s if grace is None else max(0.0, grace)
        deadline = time.monotonic() + grace
        if self._stopping.is_set():
            if deadline < self._deadline:
                self._deadline = deadline
                self._deadline_moved.set()
            return
        log.info("worker %s stopping (grace %.1fs)", self.identity, grace)
        self._deadline = deadline
        self._stopping.set()
        for t in self._pollers:
            t.cancel()

    def _drain_once(self) -> asyncio.Task[None]:
        if self._drain_task is None:
            self._drain_task = asyncio.create_task(self._drain())
        return self._drain_task

    async def _drain(self) -> None:
        await asyncio.gather(*self._pollers, return_exceptions=True)
        await self._close_sticky_queue()
        await self._pollers_stopped()
        self._give_up_timed_out_attempts()
        await self._wait_for_work()
        left = [t for t in self._tasks if not t.done()]
        if left:
            log.warning("%d task(s) still running after the grace: giving them back", len(left))
            for t in left:
                t.cancel()
            # Each gives its task back (and what an answer in flight hands
            # over) within a bounded time; code that ignores cancellation is
            # not waited for past that.
            _, stuck = await asyncio.wait(left, timeout=2 * SHUTDOWN_REPORT_S + 1.0)
            if stuck:
                log.warning("%d task(s) ignored cancellation: left behind", len(stuck))
        # A thread stuck in workflow code is not waited for (nor is it at
        # exit); the cached runs are torn down here, after it closed.
        self._threads.close()
        self._cache.clear()
        if self._activity_executor is not None:
            # Threads still running (code that ignored cancellation) are not waited for.
            self._activity_executor.shutdown(wait=False, cancel_futures=True)

    async def _pollers_stopped(self) -> None:
        """The worker says it stopped polling: its task queue's describe (and its
        version's, when versioned) shows it at once (a killed one ages out)."""
        body: dict[str, Any] = {"identity": self.identity}
        if self.deployment is not None:
            body |= {"deployment": self.deployment, "build_id": self.build_id}
        try:
            await asyncio.wait_for(self._call("/pollers/stopped", body), STOP_REPORT_S)
        except (BatonError, TimeoutError) as exc:
            # (a server of an earlier release refuses an unversioned report:
            # its describe then shows the worker live until its last poll ages)
            log.log(
                logging.WARNING if self.deployment is not None else logging.DEBUG,
                "could not report the pollers of %s stopped: %s",
                self.identity,
                _reason(exc),
            )

    async def _close_sticky_queue(self) -> None:
        """Send the runs this worker caches back to their task queue at once (a worker
        that dies without it costs each run one ``sticky_schedule_to_start``)."""
        if self.sticky_task_queue is None:
            return
        try:
            await asyncio.wait_for(
                self._call("/sticky-queues/close", {"sticky_task_queue": self.sticky_task_queue}),
                STOP_REPORT_S,
            )
        except (BatonError, TimeoutError) as exc:
            log.warning(
                "could not close sticky queue %s: %s (its runs' next tasks go to the task "
                "queue after sticky_schedule_to_start)",
                self.sticky_task_queue,
                _reason(exc),
            )

    async def _wait_for_work(self) -> None:
        """Wait until no task is left or the grace is over."""
        while True:
            pending = [t for t in self._tasks if not t.done()]
            remaining = self._deadline - time.monotonic()
            if not pending or remaining <= 0:
                return
            self._deadline_moved.clear()
            moved = asyncio.ensure_future(self._deadline_moved.wait())
            try:
                await asyncio.wait(
                    [*pending, moved], timeout=remaining, return_when=asyncio.FIRST_COMPLETED
                )
            finally:
                moved.cancel()

    def _install_signal_handlers(self) -> Callable[[], None]:
        loop = asyncio.get_running_loop()
        installed: list[signal.Signals] = []
        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                loop.add_signal_handler(sig, self._on_signal, sig)
            except (NotImplementedError, RuntimeError, ValueError) as exc:
                # Not the main thread, or a platform without them.
                log.warning("cannot handle %s in this worker: %s", sig.name, exc)
                continue
            installed.append(sig)

        def remove() -> None:
            for sig in installed:
                loop.remove_signal_handler(sig)

        return remove

    def _on_signal(self, sig: signal.Signals) -> None:
        if self._stopping.is_set():
            log.warning("%s again: giving running work back now", sig.name)
            self._begin_shutdown(0.0)
        else:
            log.info("%s: draining (send it again to stop at once)", sig.name)
            self._begin_shutdown(None)

    #: Whether the start found the namespace (``async with`` checks before ``run``).
    _namespace_checked = False

    async def _check_namespace(self) -> None:
        if not self._namespace_checked and not self._stopping.is_set():
            await require_namespace(self.client, self._stopping)
            self._namespace_checked = True

    async def __aenter__(self) -> Worker:
        await self._check_namespace()  # raised here, not in the background task
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
        # A worker's reports hold payloads (the converter refused non-finite
        # floats in them) and durations the SDK checked when the code gave them.
        return await self.client.call(
            "POST",
            ns_path(self.client.namespace, path),
            body,
            params=params or None,
            check_floats=False,
        )

    # ------------------------------------------------------------------ polling

    async def _poll_loop(
        self, kind: str, slots: asyncio.Semaphore, handle: Any, *, queue: str | None = None
    ) -> None:
        body = {
            "task_queue": queue or self.task_queue,
            "identity": self.identity,
            "wait_s": 30.0,
            "deployment": self.deployment,
            "build_id": self.build_id,
            "sticky": queue is not None and queue == self.sticky_task_queue,
            "instance": self._instance,
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

    # ------------------------------------------------------------------ eager activities

    def _eager_slots(self) -> int:
        # Only ask for as many activities as there are free slots to run them.
        return min(self._eager, max(0, getattr(self._act_slots, "_value", 0)), 100)

    async def _eager_activity(self, act: dict[str, Any]) -> None:
        if not await self._slot_unless_stopping(self._act_slots):
            # Handed to this worker, which is stopping before it could start
            # it: give it back now rather than leave it to its timeout.
            await self._report_shutdown(
                self._respond_activity_failed(act["task_token"], shutdown_error()),
                act.get("workflow_id", "?"),
            )
            return
        try:
            await self._run_activity(act)
        finally:
            self._act_slots.release()

    async def _slot_unless_stopping(self, slots: asyncio.Semaphore) -> bool:
        """Take a slot (True), or return False if shutdown begins first."""
        if self._stopping.is_set():
            return False
        if not slots.locked():
            await slots.acquire()  # free: does not wait
            return True
        acquire = asyncio.ensure_future(slots.acquire())
        stop = asyncio.ensure_future(self._stopping.wait())
        try:
            await asyncio.wait([acquire, stop], return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            if acquire.done() and not acquire.cancelled():
                slots.release()
            raise
        finally:
            stop.cancel()
            if not acquire.done():
                acquire.cancel()  # the semaphore hands on a slot it had granted
        return acquire.done() and not acquire.cancelled()


def _nothing() -> None:
    pass
