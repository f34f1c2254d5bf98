"""Temporal's ``start_update``: an update sent without waiting for its result.

The server answers an update once it completed (or was rejected), so the
request runs on in the background and :meth:`WorkflowUpdateHandle.result`
awaits it; ``start_update`` returns once the run's history records the
update accepted (or the update already ended, a rejection raising there, as
in Temporal).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import timedelta
from enum import IntEnum
from typing import Any

from worker._start_options import seconds
from worker.errors import (
    InvalidArgumentError,
    UnavailableError,
    UpdateFailedError,
    UpdateTimedOutError,
)

#: How often ``start_update`` reads the run's new events while it waits.
_POLL_S = 0.1


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
        name: str | Callable[..., Any],
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
        self._sent = asyncio.ensure_future(self._send())

    async def _send(self) -> Any:
        value, res = await self._handle._update(
            self._name,
            self._args,
            update_id=self.id,
            timeout=self._timeout,
            type_hint=self._result_type,
        )
        self.workflow_run_id = res.get("run_id") or self.workflow_run_id
        return value

    async def result(self) -> Any:
        """The update's result (``UpdateFailedError`` if its handler raised)."""
        while True:
            try:
                return await asyncio.shield(self._sent)
            except UpdateTimedOutError as exc:
                if isinstance(exc.__cause__, UnavailableError):
                    raise  # no server answers: asking again would spin until one does
                # still running past the request's timeout: the same id asks again
                self._sent = asyncio.ensure_future(self._send())

    async def _accepted(self) -> None:
        """Return once the update was accepted or ended (a rejection raises)."""
        run_id, nxt = self._handle.target_run_id, 1
        while not self._sent.done():
            res = await self._handle.client.call(
                "GET",
                self._handle._path("/history"),
                params={"run_id": run_id, "from_event_id": nxt},
            )
            run_id = res["run_id"]
            for e in res["events"]:
                nxt = e["event_id"] + 1
                attrs = e.get("attributes") or {}
                if (
                    e["event_type"] == "WorkflowExecutionUpdateAccepted"
                    and attrs.get("update_id") == self.id
                ):
                    return
            if not res["events"]:
                await asyncio.wait({self._sent}, timeout=_POLL_S)
        exc = self._sent.exception()
        if exc is not None and not isinstance(exc, UpdateFailedError):
            raise exc  # a rejection, or no such run: the update was never accepted


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
        sent._sent.cancel()
        raise
    return sent
