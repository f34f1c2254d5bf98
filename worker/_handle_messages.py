"""Signals, queries and updates sent through a workflow handle.

Each takes its arguments positionally or, as Temporal's SDK takes them, as
``args=[...]`` (both at once is :class:`~worker.errors.ArgumentsGivenTwiceError`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

from worker._call_args import NO_ARG, call_args
from worker._definition import QUERY, SIGNAL, UPDATE, handler_name, handler_result_type
from worker._handle_control import given_or_new_id
from worker._start_options import seconds
from worker._update_handle import WorkflowUpdateHandle, WorkflowUpdateStage, start_update
from worker.errors import (
    InvalidArgumentError,
    UnavailableError,
    UpdateTimedOutError,
    WorkflowNotFoundError,
    WorkflowNotRunningError,
)

#: Above the longest pause between a call's retries (see worker._http).
_LAST_RETRY_PAUSE_S = 2.5


class MessagesMixin:
    """:meth:`signal`, :meth:`query` and :meth:`update` of
    :class:`worker.client.WorkflowHandle`."""

    client: Any

    @property
    def target_run_id(self) -> str | None:
        raise NotImplementedError

    def _path(self, suffix: str = "") -> str:
        raise NotImplementedError

    async def signal(
        self,
        name: str | Callable[..., Any],
        *positional: Any,
        arg: Any = NO_ARG,
        args: Sequence[Any] | None = None,
        request_id: str | None = None,
    ) -> str:
        """Send signal ``name`` with its arguments; the server applies one ``request_id`` once.

        Without ``request_id`` a fresh one is drawn, so a POST the transport
        retries (same body, same id) is not applied twice. Returns the id of the
        run signaled (a retry: the run the first request signaled).
        """
        res = await self.client.call(
            "POST",
            self._path("/signal"),
            {
                "signal_name": handler_name(name, SIGNAL),
                "input": await self.client.encode(call_args(positional, args, "signal", arg)),
                "run_id": self.target_run_id,
                "request_id": given_or_new_id(request_id),
                "identity": self.client.identity,
            },
        )
        return str(res["run_id"])

    async def query(
        self,
        name: str | Callable[..., Any],
        *positional: Any,
        arg: Any = NO_ARG,
        args: Sequence[Any] | None = None,
        timeout: timedelta | float = 10.0,
        type_hint: Any = None,
        result_type: Any = None,
    ) -> Any:
        """The answer of query ``name`` (``result_type``, Temporal's name, is ``type_hint``)."""
        res = await self.client.call(
            "POST",
            self._path("/query"),
            {
                "query_name": handler_name(name, QUERY),
                "input": await self.client.encode(call_args(positional, args, "query", arg)),
                "run_id": self.target_run_id,
                "timeout_s": seconds(timeout),
            },
            # the caller's timeout bounds the whole call, its retries too
            retry_for_s=seconds(timeout),
        )
        hint = type_hint or result_type or handler_result_type(name)
        return await self.client.decode_one(res.get("result"), hint)

    async def update(
        self,
        name: str | Callable[..., Any],
        *positional: Any,
        arg: Any = NO_ARG,
        args: Sequence[Any] | None = None,
        update_id: str | None = None,
        timeout: timedelta | float = 30.0,
        type_hint: Any = None,
    ) -> Any:
        """Send an update and wait for its result (deduplicated by ``update_id``)."""
        value, _ = await self._update(
            name,
            call_args(positional, args, "update", arg),
            update_id=update_id,
            timeout=timeout,
            type_hint=type_hint,
        )
        return value

    async def execute_update(
        self,
        update: str | Callable[..., Any],
        *positional: Any,
        arg: Any = NO_ARG,
        args: Sequence[Any] | None = None,
        id: str | None = None,
        result_type: Any = None,
        timeout: timedelta | float = 30.0,
    ) -> Any:
        """:meth:`update` under Temporal's names: ``id`` is the update id,
        ``result_type`` what the result decodes to."""
        value, _ = await self._update(
            update,
            call_args(positional, args, "execute_update", arg),
            update_id=id,
            timeout=timeout,
            type_hint=result_type,
        )
        return value

    async def start_update(
        self,
        update: str | Callable[..., Any],
        *positional: Any,
        arg: Any = NO_ARG,
        args: Sequence[Any] | None = None,
        wait_for_stage: WorkflowUpdateStage,
        id: str | None = None,
        result_type: Any = None,
        timeout: timedelta | float = 30.0,
    ) -> WorkflowUpdateHandle:
        """Send an update and return its handle once the workflow accepted it
        (``wait_for_stage=WorkflowUpdateStage.ACCEPTED``, as in Temporal) or it
        completed (``COMPLETED``); await ``.result()`` for its result.

        Raises:
            UpdateRejectedError: Its validator rejected it.
        """
        return await start_update(
            self,
            update,
            call_args(positional, args, "start_update", arg),
            wait_for_stage=wait_for_stage,
            update_id=given_or_new_id(id, "id"),
            timeout=timeout,
            result_type=result_type,
        )

    def get_update_handle(
        self, id: str, *, workflow_run_id: str | None = None, result_type: Any = None
    ) -> WorkflowUpdateHandle:
        """A handle to the update of ``id`` sent before (by this process or
        another), as Temporal's: ``await handle.result()`` waits for its
        outcome without sending it again (``UpdateNotFoundError`` if the run,
        ``workflow_run_id`` or else the handle's, has no such update)."""
        if not isinstance(id, str) or not id.strip():
            raise InvalidArgumentError(f"id must be the update's id, not {id!r}")
        sent = WorkflowUpdateHandle(self, id, None, (), timeout=30.0, result_type=result_type)
        if workflow_run_id is not None:
            sent.workflow_run_id = workflow_run_id
        return sent

    def get_update_handle_for(
        self,
        update: Callable[..., Any],
        id: str,
        *,
        workflow_run_id: str | None = None,
    ) -> WorkflowUpdateHandle:
        """:meth:`get_update_handle` whose result decodes to the update
        method's return annotation, as Temporal's of that name."""
        return self.get_update_handle(
            id, workflow_run_id=workflow_run_id, result_type=handler_result_type(update)
        )

    async def _update(
        self,
        name: str | Callable[..., Any],
        args: Sequence[Any],
        *,
        update_id: str | None,
        timeout: timedelta | float,
        type_hint: Any,
        wait_for_stage: str | None = None,
        decode: bool = True,
        run_id: str | None = None,
    ) -> tuple[Any, dict[str, Any]]:
        """:meth:`update`'s result and the server's answer (which names the run);
        with ``wait_for_stage="accepted"`` the answer may come at acceptance,
        without a result (``state`` says which); ``decode=False`` gives the
        result as the payload it came as. ``run_id`` sends it to that run
        (an update handle's run), else to the handle's.

        Update ids are deduplicated per run, so the call's retries (a
        connection that broke after the server committed) go to the run its
        first try went to: sent to "the current run", a retry after that run
        continued as new ran the update again in the new run.
        """
        update_id = given_or_new_id(update_id, "update_id")
        wait_s = seconds(timeout)
        deadline = time.monotonic() + wait_s
        run_id = run_id or self.target_run_id
        # a run this call chose itself, not one the caller named
        chosen = run_id is None
        body: dict[str, Any] = {
            "update_id": update_id,
            "name": handler_name(name, UPDATE),
            "input": await self.client.encode(args),
            "run_id": run_id,
            "timeout_s": wait_s,
            "identity": self.client.identity,
            # left out unless asked: a server of an earlier release waits for the result
            **({"wait_for_stage": wait_for_stage} if wait_for_stage else {}),
        }
        try:
            if body["run_id"] is None:
                body["run_id"] = await self._current_run_id(deadline)
            while True:
                try:
                    res = await self.client.call(
                        "POST",
                        self._path("/update"),
                        body,
                        retry_for_s=max(0.0, deadline - time.monotonic()),
                    )
                    break
                except WorkflowNotRunningError:
                    # The run closed before it recorded the update (one that
                    # recorded it answers its outcome), or a standby's
                    # describe named a run the active region had closed: the
                    # current run takes it, as an update sent a moment later would.
                    if not chosen or body["run_id"] is None:
                        raise
                    body["run_id"] = None
        except UnavailableError as exc:
            # the transport stops retrying as its next pause (2 s at most)
            # would pass the deadline: a failure before that is not the timeout
            if time.monotonic() + _LAST_RETRY_PAUSE_S < deadline:
                raise
            # The caller's timeout ended the call, as the server would have
            # said had it stayed up: the update may still complete.
            raise UpdateTimedOutError(
                f"update {handler_name(name, UPDATE)!r} ({update_id}) did not complete within "
                f"{wait_s:g} s, and the server could not be reached at the end "
                f"({exc.message}); it may still complete: send it again with "
                f"update_id={update_id!r}{_to_run(body['run_id'])} to learn its outcome",
                details={"update_id": update_id, "run_id": body["run_id"], "unreachable": True},
            ) from exc
        except UpdateTimedOutError as exc:
            # the run to ask again: a later run would take the id as a new update
            exc.details = {**(exc.details or {}), "run_id": body["run_id"]}
            raise
        if not decode:
            return res.get("result"), res
        hint = type_hint or handler_result_type(name)
        return await self.client.decode_one(res.get("result"), hint), res

    async def _current_run_id(self, deadline: float) -> str | None:
        """The id of the workflow's current run (retried until ``deadline``);
        None for a workflow the region asked does not know (yet: a standby
        behind), whose update then goes to the current run as it is sent."""
        left = max(0.0, deadline - time.monotonic())
        try:
            res = await self.client.call("GET", self._path(), retry_for_s=left)
        except WorkflowNotFoundError:
            return None
        return str(res["execution"]["run_id"])


def _to_run(run_id: str | None) -> str:
    """Where to send an update again: the run it went to, if known."""
    return f" to run {run_id} (a handle given that run_id)" if run_id else ""
