"""Running activity attempts for the worker: arguments, context, heartbeats, result.

A mixin of :class:`worker._worker.Worker`, which polls the tasks and holds the
client, the registered activities and the data converter.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from worker import activity as activity_mod
from worker._definition import ActivityDefinition, WorkflowDefinition
from worker._failure import exception_to_failure
from worker._payloads import transform
from worker.converter import DataConverter
from worker.errors import BatonError, TaskNotFoundError

log = logging.getLogger("baton.worker")


class NotRegistered(Exception):
    """The worker has no workflow or activity of that name."""


class ActivityRunner:
    """Runs one activity attempt and reports how it ended."""

    _activities: dict[str, ActivityDefinition]
    _workflows: dict[str, WorkflowDefinition]
    _stopping: asyncio.Event
    converter: DataConverter
    identity: str

    async def _call(self, path: str, body: Any, **params: Any) -> Any:
        raise NotImplementedError

    async def _handle_workflow_task(self, task: dict[str, Any]) -> None:
        raise NotImplementedError

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
        await transform(task, self.converter.codec, encode=False)
        from worker.wire import ActivityTask

        wire_task = ActivityTask.model_validate(task)
        try:
            args = self.converter.payload_converter.from_payloads(wire_task.input, defn.arg_types)
            info = activity_mod.ActivityInfo.from_task(
                wire_task, converter=self.converter.payload_converter
            )
        except Exception as exc:
            return await self._respond_activity_failed(token, exc)
        heartbeater = _Heartbeater(self, token, task.get("heartbeat_s"))
        ctx = activity_mod._ActivityContext(
            info=info, heartbeat=heartbeater.record, cancelled=heartbeater.cancelled
        )
        heartbeater.loop = asyncio.get_running_loop()
        try:
            ctx_token = activity_mod._set_context(ctx)
            try:
                if defn.is_async:
                    run = asyncio.ensure_future(defn.fn(*args))
                else:
                    loop = asyncio.get_running_loop()
                    cvars = __import__("contextvars").copy_context()
                    run = loop.run_in_executor(None, lambda: cvars.run(defn.fn, *args))
                heartbeater.attempt = run
                result = await run
            finally:
                activity_mod._reset_context(ctx_token)
        except asyncio.CancelledError:
            heartbeater.stop()
            if heartbeater.cancelled.is_set() and not self._stopping.is_set():
                with contextlib.suppress(TaskNotFoundError):
                    await self._call(
                        "/activity-tasks/canceled", {"task_token": token, "identity": self.identity}
                    )
                return None
            raise
        except Exception as exc:
            heartbeater.stop()
            return await self._respond_activity_failed(token, exc)
        heartbeater.stop()
        payload = (await self.converter.encode([result]))[0]
        try:
            res = await self._call(
                "/activity-tasks/complete",
                {
                    "task_token": token,
                    "result": payload.model_dump(),
                    "identity": self.identity,
                },
                return_new_workflow_task="true" if self._workflows else None,
            )
        except TaskNotFoundError:
            log.info(
                "activity %s finished after its task closed (timed out or canceled)",
                task["activity_type"],
            )
            return None
        nxt: dict[str, Any] | None = res.get("workflow_task") if res else None
        return nxt

    async def _respond_activity_failed(
        self, token: str, exc: BaseException
    ) -> dict[str, Any] | None:
        failure = exception_to_failure(exc, self.converter.payload_converter)
        body = {
            "task_token": token,
            "failure": await transform(failure.model_dump(), self.converter.codec, encode=True),
            "identity": self.identity,
        }
        try:
            res = await self._call(
                "/activity-tasks/fail",
                body,
                return_new_workflow_task="true" if self._workflows else None,
            )
        except TaskNotFoundError:
            return None
        return res.get("workflow_task") if res else None


class _Heartbeater:
    """Sends an attempt's heartbeats, throttled, and learns of cancellation."""

    def __init__(self, worker: ActivityRunner, token: str, heartbeat_s: float | None):
        self.worker = worker
        self.token = token
        self.interval = min(max((heartbeat_s or 30.0) * 0.5, 0.05), 10.0)
        self.cancelled = asyncio.Event()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.attempt: asyncio.Future[Any] | None = None
        self._pending: tuple[Any, ...] | None = None
        self._sender: asyncio.Task[None] | None = None
        self._last_sent = 0.0

    def record(self, details: tuple[Any, ...]) -> None:
        """Called by ``activity.heartbeat`` (possibly from a thread)."""
        if self.loop is None:
            return
        self.loop.call_soon_threadsafe(self._record, details)

    def _record(self, details: tuple[Any, ...]) -> None:
        self._pending = details
        if self._sender is None or self._sender.done():
            self._sender = asyncio.create_task(self._send_soon())

    async def _send_soon(self) -> None:
        wait = self._last_sent + self.interval - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        details, self._pending = self._pending, None
        if details is None:
            return
        self._last_sent = time.monotonic()
        payloads = [p.model_dump() for p in await self.worker.converter.encode(list(details))]
        try:
            res = await self.worker._call(
                "/activity-tasks/heartbeat", {"task_token": self.token, "details": payloads}
            )
        except TaskNotFoundError:
            res = {"cancel_requested": True}
        except BatonError as exc:
            log.warning("heartbeat failed: %s", exc)
            return
        if res and res.get("cancel_requested") and not self.cancelled.is_set():
            self.cancelled.set()
            if self.attempt is not None and not self.attempt.done():
                self.attempt.cancel()
        if self._pending is not None:
            self._sender = asyncio.create_task(self._send_soon())

    def stop(self) -> None:
        if self._sender is not None and not self._sender.done():
            self._sender.cancel()
