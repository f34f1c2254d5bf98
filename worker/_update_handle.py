"""Temporal's ``start_update``: an update sent without waiting for its result.

``start_update`` asks the server to answer once the workflow accepted the
update (or it already ended, a rejection raising there, as in Temporal);
then the request for its result runs on in the background and
:meth:`WorkflowUpdateHandle.result` awaits it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import timedelta
from enum import IntEnum
from typing import Any
from urllib.parse import quote

from worker._start_options import seconds
from worker.errors import (
    InvalidArgumentError,
    UnavailableError,
    UpdateFailedError,
    UpdateTimedOutError,
)


class WorkflowUpdateStage(IntEnum):
    """How far ``start_update`` waits (Temporal's values)."""

    ADMITTED = 1
    ACCEPTED = 2
    COMPLETED = 3


class WorkflowUpdateHandle:
    """An update that was sent: its ``id`` and, awaited, its :meth:`result`."""

    def __init__(
        self,
        handle: Any,
        update_id: str,
        name: str | Callable[..., Any] | None,
        args: Sequence[Any],
        *,
        timeout: timedelta | float,
        result_type: Any,
    ) -> None:
        self._handle = handle
        self.id = update_id
        self.workflow_id: str = handle.id
        self.workflow_run_id: str | None = handle.target_run_id
        self._name, self._args = name, args
        self._timeout, self._result_type = timeout, result_type
        self._sent: asyncio.Future[Any] | None = None

    async def _send(self, stage: str | None = None) -> tuple[Any, dict[str, Any]]:
        if self._name is None:
            return await self._poll(stage)
        value, res = await self._handle._update(
            self._name,
            self._args,
            update_id=self.id,
            timeout=self._timeout,
            type_hint=self._result_type,
            wait_for_stage=stage,
            run_id=self.workflow_run_id,
        )
        self.workflow_run_id = res.get("run_id") or self.workflow_run_id
        return value, res

    async def _poll(self, stage: str | None) -> tuple[Any, dict[str, Any]]:
        """A handle from ``get_update_handle``: the outcome of the update sent
        before, asked for by its id (nothing is sent again)."""
        wait_s = seconds(self._timeout)
        res: dict[str, Any] = await self._handle.client.call(
            "GET",
            self._handle._path(f"/updates/{quote(self.id, safe='')}"),
            params={"run_id": self.workflow_run_id, "wait_s": wait_s, "stage": stage},
            retry_for_s=wait_s,
        )
        self.workflow_run_id = res.get("run_id") or self.workflow_run_id
        value = await self._handle.client.decode_one(res.get("result"), self._result_type)
        return value, res

    async def _result(self) -> Any:
        return (await self._send())[0]

    async def result(self) -> Any:
        """The update's result (``UpdateFailedError`` if its handler raised)."""
        while True:
            if self._sent is None:
                self._sent = asyncio.ensure_future(self._result())
            try:
                return await asyncio.shield(self._sent)
            except UpdateTimedOutError as exc:
                if isinstance(exc.__cause__, UnavailableError):
                    raise  # no server answers: asking again would spin until one does
                # the run that has it: after a continue-as-new "the current
                # run" would take the same id as a new update
                self.workflow_run_id = (exc.details or {}).get("run_id") or self.workflow_run_id
                # still running past the request's timeout: the same id asks again
                self._sent = None

    async def _accepted(self) -> None:
        """Return once the update was accepted or ended (a rejection raises).

        The server answers once the workflow accepted it (or it ended); the
        result is asked for then, in the background, for :meth:`result`.
        """
        try:
            value, res = await self._send("accepted")
        except UpdateFailedError as exc:
            # accepted, then failed (its handler raised, or the run closed)
            self._sent = _done(exc=exc)
            return
        if res.get("state") == "completed":
            # it completed at once (or a server of an earlier release waited for that)
            self._sent = _done(value=value)
        else:
            self._sent = asyncio.ensure_future(self._result())

    def _cancel(self) -> None:
        if self._sent is not None:
            self._sent.cancel()


def _done(*, value: Any = None, exc: BaseException | None = None) -> asyncio.Future[Any]:
    fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    if exc is not None:
        fut.set_exception(exc)
    else:
        fut.set_result(value)
    return fut


async def start_update(
    handle: Any,
    name: str | Callable[..., Any],
    args: Sequence[Any],
    *,
    wait_for_stage: WorkflowUpdateStage,
    update_id: str,
    timeout: timedelta | float,
    result_type: Any,
) -> WorkflowUpdateHandle:
    """Send an update and return its handle at ``wait_for_stage``."""
    if wait_for_stage not in (WorkflowUpdateStage.ACCEPTED, WorkflowUpdateStage.COMPLETED):
        raise InvalidArgumentError(
            f"wait_for_stage {wait_for_stage!r} is not ACCEPTED or COMPLETED: "
            "pass worker.WorkflowUpdateStage.ACCEPTED, as Temporal requires"
        )
    seconds(timeout)
    sent = WorkflowUpdateHandle(
        handle, update_id, name, args, timeout=timeout, result_type=result_type
    )
    try:
        if wait_for_stage == WorkflowUpdateStage.COMPLETED:
            await sent.result()
        else:
            await sent._accepted()
    except BaseException:
        sent._cancel()
        raise
    return sent
