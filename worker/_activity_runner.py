"""Running activity attempts for the worker: arguments, context, heartbeats, result.

A mixin of :class:`worker._worker.Worker`, which polls the tasks and holds the
client, the registered activities and the data converter.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import ctypes
import logging
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from datetime import datetime
from typing import TYPE_CHECKING, Any

from worker import activity as activity_mod
from worker._definition import ActivityDefinition, WorkflowDefinition
from worker._failure import exception_to_failure
from worker._heartbeater import _Heartbeater
from worker._http import API
from worker._limits import largest_over, limit_from, too_large
from worker._payloads import decode_wire, encode_wire
from worker.common import RawValue
from worker.converter import DataConverter, decode_input
from worker.errors import (
    ApplicationError,
    BatonError,
    PayloadTooLargeError,
    TaskNotFoundError,
)
from worker.wire import ActivityTask, Payload

if TYPE_CHECKING:
    from worker.client import Client

log = logging.getLogger("baton.worker")

#: Type of the failure a stopping worker reports for work it gives back.
SHUTDOWN_FAILURE_TYPE = "WorkerShutdown"

# How long a stopping worker tries to hand one task back before giving up on it.
SHUTDOWN_REPORT_S = 5.0
#: How long a stopped sync attempt may take to notice ``is_cancelled()``
#: before ``CancelledError`` is raised in its thread.
INTERRUPT_AFTER_S = 1.0


class NotRegistered(Exception):
    """The worker has no workflow or activity of that name."""


class _RaisedExit(Exception):
    """An activity's own ``KeyboardInterrupt`` or ``SystemExit``, carried as an error.

    asyncio re-raises those two out of the event loop from any task that
    raises them, which would stop the whole worker (every other attempt and
    workflow with it) for one activity's code. The attempt fails with the
    original instead, retried by its policy like any other failure.
    """

    def __init__(self, original: BaseException) -> None:
        super().__init__(str(original))
        self.original = original


async def _contained(work: Awaitable[Any]) -> Any:
    try:
        return await work
    except (KeyboardInterrupt, SystemExit) as exc:
        raise _RaisedExit(exc) from None


def shutdown_error() -> ApplicationError:
    """The retryable failure of work a stopping worker gives back, so it is retried now."""
    return ApplicationError("worker shutting down", type=SHUTDOWN_FAILURE_TYPE)


class ActivityRunner:
    """Runs one activity attempt and reports how it ended."""

    _activities: dict[str, ActivityDefinition]
    _workflows: dict[str, WorkflowDefinition]
    _stopping: asyncio.Event
    _attempts: set[_Heartbeater]
    _activity_executor: Executor | None
    client: Client
    converter: DataConverter
    identity: str

    async def _call(self, path: str, body: Any, **params: Any) -> Any:
        raise NotImplementedError

    async def _handle_workflow_task(self, task: dict[str, Any]) -> None:
        raise NotImplementedError

    async def _fail_workflow_task(self, task: dict[str, Any], exc: BaseException) -> None:
        raise NotImplementedError

    def _next_task_wanted(self) -> str | None:
        # A stopping worker takes no new work; the server dispatches it instead.
        return "true" if self._workflows and not self._stopping.is_set() else None

    async def _report_shutdown(self, report: Awaitable[Any], what: str) -> None:
        """Await ``report`` (giving a task back) for a bounded time: the worker is stopping."""
        try:
            await asyncio.wait_for(report, SHUTDOWN_REPORT_S)
        except (BatonError, TimeoutError) as exc:
            log.warning("could not give back the task of %s while stopping: %s", what, exc)

    async def _call_handing_back(self, path: str, body: Any, **params: Any) -> Any:
        """``_call`` for a report whose answer may hand this worker new tasks.

        If a stopping worker cancels it while the call is on its way, the
        server may still record it and start tasks for this worker (eager
        activities, the next workflow task) that nobody would run: wait for the
        answer (a bounded time) and give them back before going on cancelled.
        """
        call = asyncio.ensure_future(self._call(path, body, **params))
        try:
            return await asyncio.shield(call)
        except asyncio.CancelledError:
            if not self._stopping.is_set():
                call.cancel()
                raise
            try:
                res = await asyncio.wait_for(call, SHUTDOWN_REPORT_S)
            except (BatonError, TimeoutError):
                raise asyncio.CancelledError() from None
            for act in (res or {}).get("activity_tasks") or []:
                await self._report_shutdown(
                    self._respond_activity_failed(act["task_token"], shutdown_error()),
                    act.get("workflow_id", "?"),
                )
            if wt := (res or {}).get("workflow_task"):
                await self._report_shutdown(
                    self._fail_workflow_task(wt, shutdown_error()), wt["workflow_id"]
                )
            raise

    def _give_up_timed_out_attempts(self) -> None:
        """Stop, without a report, the attempts the server has timed out already.

        A stopping worker need not wait for them: their outcome would be refused.
        """
        for heartbeater in list(self._attempts):
            if heartbeater.timed_out():
                log.info("stopping an activity attempt the server has timed out")
                heartbeater.give_up()

    async def _run_activity(self, task: dict[str, Any]) -> None:
        next_wt = await self._activity_attempt(task)
        if next_wt is not None:
            await self._handle_workflow_task(next_wt)

    async def _activity_attempt(self, task: dict[str, Any]) -> dict[str, Any] | None:
        token = task["task_token"]
        defn = self._activities.get(task["activity_type"])
        if defn is None:
            err: BaseException = NotRegistered(
                f"activity type {task['activity_type']!r} is not registered on this worker "
                f"(it has: {', '.join(sorted(self._activities)) or 'none'})"
            )
            return await self._respond_activity_failed(token, err)
        try:
            # A payload this worker's keys cannot open fails the attempt, saying
            # so, for a worker holding them to retry; it must not leave the
            # attempt to time out as if the activity hung.
            await decode_wire(task, self.converter)
            wire_task = ActivityTask.model_validate(task)
            of, hints = f"activity {defn.name}", defn.arg_types
            if defn.dynamic:  # one sequence of the undecoded arguments, as in Temporal
                args = [[RawValue(p) for p in wire_task.input]]
            else:
                args = decode_input(self.converter.payload_converter, wire_task.input, hints, of)
            info = activity_mod.ActivityInfo.from_task(
                wire_task, converter=self.converter.payload_converter
            )
        except Exception as exc:
            return await self._respond_activity_failed(token, exc)
        heartbeater = _Heartbeater(
            self,
            token,
            wire_task.heartbeat_s,
            start_to_close_s=wire_task.start_to_close_s,
            schedule_to_close_s=schedule_to_close_left(wire_task),
        )
        heartbeater.flags = info._flags
        ctx = activity_mod._ActivityContext(
            info=info,
            heartbeat=heartbeater.record,
            cancelled=heartbeater.stopping,
            converter=self.converter.payload_converter,
            client=self.client,
            worker_shutdown=self._stopping,
        )
        heartbeater.loop = asyncio.get_running_loop()
        self._attempts.add(heartbeater)
        try:
            try:
                result = await self._run_user_code(
                    defn, args, ctx, heartbeater, self._activity_executor
                )
            except (Exception, activity_mod._CompleteAsyncError):
                # The failure report starts the next attempt with the details
                # recorded by then: the throttle must not hold the latest back.
                await heartbeater.flush()
                raise
            finally:
                heartbeater.stop()
                self._attempts.discard(heartbeater)
            return await self._respond_completed(task, result)
        except activity_mod._CompleteAsyncError:
            return None  # a client completes it (raise_complete_async)
        except asyncio.CancelledError as exc:
            if heartbeater.cancelled.is_set():
                # The server asked for it (the workflow cancelled the activity).
                with contextlib.suppress(TaskNotFoundError):
                    await self._call(
                        "/activity-tasks/canceled", {"task_token": token, "identity": self.identity}
                    )
                return None
            if heartbeater.lost:
                return None  # the server no longer knows the task: nothing to report
            if heartbeater.refused is not None:
                return await self._respond_activity_failed(token, heartbeater.refused)
            current = asyncio.current_task()
            if current is not None and not current.cancelling():
                # Nobody cancelled the attempt: its own code raised CancelledError
                # (as Temporal's SDK does, a failure). Left unreported, the
                # attempt would hang until its start-to-close timeout.
                own = asyncio.CancelledError(str(exc) or "the activity raised CancelledError")
                return await self._flush_and_fail(
                    heartbeater, token, own.with_traceback(exc.__traceback__)
                )
            if not self._stopping.is_set():
                raise
            # Shutdown's grace is over: fail the attempt so that the server
            # retries it now instead of waiting out its start-to-close timeout,
            # from the last details it heartbeat.
            log.info("giving back activity %s (attempt %s)", task["activity_type"], info.attempt)
            await self._report_shutdown(
                self._flush_and_fail(heartbeater, token, shutdown_error()), task["workflow_id"]
            )
            return None
        except _RaisedExit as exc:
            return await self._respond_activity_failed(token, exc.original)
        except Exception as exc:
            return await self._respond_activity_failed(token, exc)

    @staticmethod
    async def _run_user_code(
        defn: ActivityDefinition,
        args: list[Any],
        ctx: activity_mod._ActivityContext,
        heartbeater: _Heartbeater,
        executor: Executor | None,
    ) -> Any:
        ctx_token = activity_mod._set_context(ctx)
        try:
            if defn.is_async:
                run = asyncio.ensure_future(_contained(defn.fn(*args)))
            else:
                run = asyncio.ensure_future(
                    _contained(_in_thread(defn, args, heartbeater, executor))
                )
            heartbeater.attempt = run
            heartbeater.watch()
            return await run
        finally:
            activity_mod._reset_context(ctx_token)

    async def _respond_completed(self, task: dict[str, Any], result: Any) -> dict[str, Any] | None:
        payload = (await self.converter.encode([result]))[0]
        try:
            return await self._report_result(task, payload)
        except PayloadTooLargeError as exc:
            limit = await self._payload_limit(exc)
            size = None if limit is None else largest_over(payload.model_dump(), limit)
            if limit is None or size is None:
                raise
            error = too_large(f"the result of activity {task['activity_type']}", size, limit)
        # Nothing was recorded. Another attempt would run the side effects again
        # for the same result: fail the activity for good instead.
        return await self._respond_activity_failed(task["task_token"], error)

    async def _payload_limit(self, exc: PayloadTooLargeError) -> int | None:
        """The server's payload limit, asked for after it refused a payload (rare)."""
        try:
            cluster = await self.client.call("GET", f"{API}/cluster")
        except BatonError:
            cluster = None
        return limit_from(exc, cluster if isinstance(cluster, dict) else None)

    async def _wire_failure(self, exc: BaseException) -> dict[str, Any]:
        """``exc`` as a wire failure, encoded (text hidden by a codec) as a body's are."""
        failure = exception_to_failure(exc, self.converter.payload_converter)
        holder = await encode_wire({"failure": failure.model_dump()}, self.converter)
        encoded: dict[str, Any] = holder["failure"]
        return encoded

    async def _report_result(self, task: dict[str, Any], payload: Payload) -> dict[str, Any] | None:
        """Report an attempt's (encoded) result; the answer's next workflow task, if any."""
        try:
            res = await self._call_handing_back(
                "/activity-tasks/complete",
                {
                    "task_token": task["task_token"],
                    "result": payload.model_dump(),
                    "identity": self.identity,
                },
                return_new_workflow_task=self._next_task_wanted(),
            )
        except TaskNotFoundError:
            log.info(
                "activity %s finished after its task closed (timed out or canceled)",
                task["activity_type"],
            )
            return None
        nxt: dict[str, Any] | None = res.get("workflow_task") if res else None
        return nxt

    async def _flush_and_fail(
        self, heartbeater: _Heartbeater, token: str, exc: BaseException
    ) -> dict[str, Any] | None:
        await heartbeater.flush()
        return await self._respond_activity_failed(token, exc)

    async def _respond_activity_failed(
        self, token: str, exc: BaseException
    ) -> dict[str, Any] | None:
        failure = exception_to_failure(exc, self.converter.payload_converter)
        body = {"task_token": token, "failure": failure.model_dump(), "identity": self.identity}
        body = await encode_wire(body, self.converter)
        try:
            try:
                res = await self._call_handing_back(
                    "/activity-tasks/fail", body, return_new_workflow_task=self._next_task_wanted()
                )
            except PayloadTooLargeError as err:
                limit = await self._payload_limit(err)
                size = None if limit is None else largest_over(body["failure"], limit)
                if limit is None or size is None:
                    raise
                # Refused, nothing was recorded, and every attempt would fail
                # alike: left unreported, each would wait out its timeout.
                error = too_large("the activity's failure", size, limit)
                body["failure"] = await self._wire_failure(error)
                res = await self._call_handing_back(
                    "/activity-tasks/fail", body, return_new_workflow_task=self._next_task_wanted()
                )
        except TaskNotFoundError:
            return None
        return res.get("workflow_task") if res else None


async def _in_thread(
    defn: ActivityDefinition,
    args: list[Any],
    heartbeater: _Heartbeater,
    executor: Executor | None,
) -> Any:
    """Run a sync activity's function on a thread of ``executor`` and wait for it.

    When the attempt is cancelled (the server's cancel, a task gone, the end
    of a shutdown's grace), the code learns of it from
    ``activity.is_cancelled()``, then from ``CancelledError`` raised in its
    thread, and the attempt waits a bounded time for it to return before it
    is reported: otherwise the next attempt (which a shutdown's report starts
    at once) would run beside it.
    """
    # the worker makes its pool when it registers a sync activity
    assert executor is not None
    running = _RunningThread()
    thread = executor.submit(contextvars.copy_context().run, running.call, defn.fn, *args)
    outcome = asyncio.wrap_future(thread)
    try:
        return await asyncio.shield(outcome)
    except asyncio.CancelledError:
        if thread.cancel():
            raise  # still queued: it never runs
        heartbeater.stopping.set()
        # What the function does once stopped (return, or raise as it likes)
        # is not reported: the attempt ends as the cancel says. Taking its
        # outcome keeps asyncio from logging it as an error never retrieved.
        outcome.add_done_callback(_drop_outcome)
        # Code that checks is_cancelled() stops on its own; code that does not
        # gets CancelledError raised in its thread (as in Temporal).
        # (A second stop, as a heartbeat finding the task gone, cuts the wait
        # short: the thread is told all the same.)
        try:
            await asyncio.wait([outcome], timeout=INTERRUPT_AFTER_S)
        finally:
            if not thread.done():
                running.interrupt()
        await asyncio.wait([outcome], timeout=SHUTDOWN_REPORT_S - INTERRUPT_AFTER_S)
        if not thread.done():
            log.warning(
                "activity %s ignored its cancellation for %.0f s: its thread is left running",
                defn.name,
                SHUTDOWN_REPORT_S,
            )
        raise


class _RunningThread:
    """The thread a sync attempt runs on, to raise ``CancelledError`` in it.

    As Temporal's SDK does for threaded activities, a stopped attempt's code
    gets ``asyncio.CancelledError`` raised in its thread at its next Python
    instruction (a ``time.sleep`` or blocking call ends first), so a loop that
    never checks ``activity.is_cancelled()`` still ends, its ``finally``
    blocks run, and no thread is left running. The lock keeps the raise from
    landing once the function has returned and the thread serves another.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ident: int | None = None

    def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        with self._lock:
            self._ident = threading.get_ident()
        try:
            return fn(*args)
        finally:
            with self._lock:
                self._ident = None
                # A raise that has not landed yet must not land in the pool's
                # own code (it would end the pool's thread): drop it.
                ctypes.pythonapi.PyThreadState_SetAsyncExc(
                    ctypes.c_ulong(threading.get_ident()), None
                )

    def interrupt(self) -> None:
        with self._lock:
            if self._ident is not None:
                ctypes.pythonapi.PyThreadState_SetAsyncExc(
                    ctypes.c_ulong(self._ident), ctypes.py_object(asyncio.CancelledError)
                )


def schedule_to_close_left(task: ActivityTask) -> float | None:
    """What is left of the activity's schedule-to-close time as this attempt started.

    Both times are the server's, so their difference holds whatever this
    machine's clock says. A server of an earlier release sends no first
    schedule time: the whole timeout then (later than the server's deadline).
    """
    if task.schedule_to_close_s is None or task.first_scheduled_time is None:
        return task.schedule_to_close_s
    spent = datetime.fromisoformat(task.started_time) - datetime.fromisoformat(
        task.first_scheduled_time
    )
    return max(task.schedule_to_close_s - spent.total_seconds(), 0.0)


def _drop_outcome(outcome: asyncio.Future[Any]) -> None:
    """Take the outcome of a stopped sync attempt that nobody reports."""
    if not outcome.cancelled() and (exc := outcome.exception()) is not None:
        log.debug("a stopped sync activity raised %r", exc)
