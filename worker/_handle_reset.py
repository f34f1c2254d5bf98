"""Reset of a workflow handle: start the run again from one of its workflow tasks."""

from __future__ import annotations

from typing import Any

from worker._handle_control import given_or_new_id

_RESET_POINTS = {
    "first": "first-workflow-task",
    "firstworkflowtask": "first-workflow-task",
    "last": "last-workflow-task",
    "lastworkflowtask": "last-workflow-task",
}


def _reset_point(to: str | None) -> str | None:
    """``first-workflow-task`` from any of its spellings (FirstWorkflowTask, first, ...)."""
    if to is None:
        return None
    key = to.lower().replace("-", "").replace("_", "")
    return _RESET_POINTS.get(key, to)


class ResetMixin:
    """:meth:`reset` of :class:`worker.client.WorkflowHandle`."""

    client: Any
    run_id: str | None

    def _path(self, suffix: str = "") -> str:
        raise NotImplementedError

    async def reset(
        self,
        *,
        reason: str,
        event_id: int | None = None,
        to: str | None = None,
        reapply_signals: bool = True,
        reapply: str | None = None,
        request_id: str | None = None,
    ) -> str:
        """Reset the run to a workflow task; returns the new run's id.

        Give ``event_id`` (a WorkflowTaskCompleted, -Failed or -TimedOut event)
        or ``to`` ("first-workflow-task" or "last-workflow-task"). The old run,
        if running, is terminated with a reason naming the new run, and its
        ``result()`` follows to the new run. ``reapply`` says what the old run
        received after the point the new one takes again: "all" (the default,
        as Temporal's: signals and accepted updates), "signals" or "none"
        (``reapply_signals=False`` is "none").
        """
        res = await self.reset_details(
            reason=reason,
            event_id=event_id,
            to=to,
            reapply_signals=reapply_signals,
            reapply=reapply,
            request_id=request_id,
        )
        return str(res["run_id"])

    async def reset_details(
        self,
        *,
        reason: str,
        event_id: int | None = None,
        to: str | None = None,
        reapply_signals: bool = True,
        reapply: str | None = None,
        request_id: str | None = None,
    ) -> dict[str, Any]:
        """:meth:`reset`, answering the server's whole reply: ``workflow_id``,
        ``run_id`` (the new run), ``reset_from_run_id`` (the run reset) and
        ``reset`` (False when a retried ``request_id`` found the earlier reset).
        """
        res: dict[str, Any] = await self.client.call(
            "POST",
            self._path("/reset"),
            {
                "run_id": self.run_id,
                "event_id": event_id,
                "to": _reset_point(to),
                "reapply": reapply or ("all" if reapply_signals else "none"),
                "reason": reason,
                "request_id": given_or_new_id(request_id),
                "identity": self.client.identity,
            },
        )
        if request_id is None and res.get("reset") is False:
            # only this call's own retry (its first answer lost) can find the
            # id it drew: the reset it found is this call's
            res = {**res, "reset": True}
        return res
