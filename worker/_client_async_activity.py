"""Completing an activity from outside its attempt (Temporal's async activity completion).

An activity calls :func:`worker.activity.raise_complete_async`; a client then
completes, fails, heartbeats or cancels it through an
:class:`AsyncActivityHandle`, named by the attempt's task token or by the
workflow, run and activity ids.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from worker._failure import exception_to_failure
from worker._http import ns_path
from worker._payloads import encode_wire
from worker.errors import InvalidArgumentError

if TYPE_CHECKING:
    from worker.client import Client


class AsyncActivityHandle:
    """An activity attempt a client completes, as Temporal's ``AsyncActivityHandle``.

    Every call raises :class:`~worker.errors.TaskNotFoundError` once the
    attempt is over (completed, failed, timed out, canceled, the run closed).
    """

    def __init__(
        self,
        client: Client,
        *,
        task_token: str | None,
        workflow_id: str | None,
        run_id: str | None,
        activity_id: str | None,
    ) -> None:
        self._client = client
        self._token = task_token
        self._ids = {"workflow_id": workflow_id, "run_id": run_id, "activity_id": activity_id}

    async def _task_token(self) -> str:
        if self._token is not None:
            return self._token
        # By ids: the attempt running now (looked up at each call, as a retry
        # of the activity gives it a new attempt).
        res = await self._client.call(
            "POST", ns_path(self._client.namespace, "/activity-tasks/token"), self._ids
        )
        token: str = res["task_token"]
        return token

    async def _send(self, route: str, body: dict[str, Any]) -> Any:
        full = {"task_token": await self._task_token(), **body}
        full = await encode_wire(full, self._client.data_converter)
        return await self._client.call(
            "POST", ns_path(self._client.namespace, f"/activity-tasks/{route}"), full
        )

    async def complete(self, result: Any = None) -> None:
        """Complete the activity with ``result``."""
        payload = (await self._client.encode([result]))[0]
        await self._send("complete", {"result": payload, "identity": self._client.identity})

    async def fail(self, error: BaseException, *, last_heartbeat_details: Any = ()) -> None:
        """Fail the attempt with ``error`` (retried by the activity's policy,
        as a failure of its code is; a non-retryable ``ApplicationError`` ends it)."""
        if not isinstance(error, BaseException):
            raise InvalidArgumentError(f"fail() takes an exception, got {error!r}")
        if last_heartbeat_details:
            await self.heartbeat(*last_heartbeat_details)
        failure = exception_to_failure(error, self._client.data_converter.payload_converter)
        await self._send(
            "fail", {"failure": failure.model_dump(), "identity": self._client.identity}
        )

    async def heartbeat(self, *details: Any) -> None:
        """Record progress (the next attempt's ``heartbeat_details``) and keep a
        heartbeat timeout from expiring."""
        await self._send("heartbeat", {"details": await self._client.encode(details)})

    async def report_cancellation(self, *details: Any) -> None:
        """Close an activity the workflow asked to cancel as canceled."""
        await self._send("canceled", {"identity": self._client.identity})


class AsyncActivityMixin:
    """The client's :meth:`get_async_activity_handle`."""

    def get_async_activity_handle(
        self,
        *,
        task_token: bytes | str | None = None,
        workflow_id: str | None = None,
        run_id: str | None = None,
        activity_id: str | None = None,
    ) -> AsyncActivityHandle:
        """A handle to complete an activity that called ``raise_complete_async()``.

        Name it by ``task_token`` (its ``activity.info().task_token``) or by
        ``workflow_id`` and ``activity_id`` (and ``run_id``; the workflow's
        current run if None), as in Temporal.

        Raises:
            InvalidArgumentError: Neither or both ways given, or a blank id.
        """
        by_ids = workflow_id is not None or activity_id is not None or run_id is not None
        if (task_token is None) == (not by_ids):
            raise InvalidArgumentError(
                "name the activity by task_token, or by workflow_id and activity_id "
                "(and run_id), not both and not neither"
            )
        token: str | None = None
        if task_token is not None:
            raw = task_token.decode() if isinstance(task_token, bytes) else task_token
            if not isinstance(raw, str) or not raw:
                raise InvalidArgumentError(f"task_token must be non-empty, got {task_token!r}")
            token = raw
        else:
            for name, value in (("workflow_id", workflow_id), ("activity_id", activity_id)):
                if not isinstance(value, str) or not value:
                    raise InvalidArgumentError(f"{name} must be a non-empty string, got {value!r}")
            if run_id is not None and (not isinstance(run_id, str) or not run_id):
                raise InvalidArgumentError(f"run_id must be a non-empty string, got {run_id!r}")
        client: Client = self  # type: ignore[assignment]
        return AsyncActivityHandle(
            client,
            task_token=token,
            workflow_id=workflow_id,
            run_id=run_id,
            activity_id=activity_id,
        )
