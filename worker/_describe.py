"""What ``handle.describe()`` returns: the server's description as a dict, read
as Temporal's ``WorkflowExecutionDescription`` too."""

from __future__ import annotations

from collections.abc import Awaitable
from datetime import datetime
from enum import StrEnum
from typing import Any


class WorkflowExecutionStatus(StrEnum):
    """How a run stands, as Temporal's enum names it; a str enum whose values
    are the API's (``"running"``, ...), so it equals the strings a dict gives.
    A paused run is ``RUNNING`` (its ``paused`` says it is paused)."""

    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELED = "canceled"
    TERMINATED = "terminated"
    CONTINUED_AS_NEW = "continued_as_new"
    TIMED_OUT = "timed_out"


class Memo(dict[str, Any]):
    """A run's memo, decoded: a dict, which ``await desc.memo()`` (as Temporal
    reads it) gives too."""

    def __call__(self) -> Awaitable[dict[str, Any]]:
        async def itself() -> dict[str, Any]:
            return self

        return itself()


def _time(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) else None


class WorkflowExecutionDescription(dict[str, Any]):
    """The run as ``handle.describe()`` gives it: the server's description
    (``desc["execution"]["status"]``, ``desc["pending_activities"]``, ...) with
    Temporal's attributes beside it (``desc.status``, ``desc.run_id``,
    ``desc.start_time``, ...), read from its ``execution``."""

    @property
    def _execution(self) -> dict[str, Any]:
        execution: dict[str, Any] = self.get("execution") or {}
        return execution

    @property
    def raw_description(self) -> dict[str, Any]:
        """The description as the server gave it (this dict)."""
        return self

    @property
    def namespace(self) -> str:
        return str(self._execution["namespace"])

    @property
    def id(self) -> str:
        """The workflow id."""
        return str(self._execution["workflow_id"])

    @property
    def workflow_id(self) -> str:
        return self.id

    @property
    def run_id(self) -> str:
        return str(self._execution["run_id"])

    @property
    def workflow_type(self) -> str:
        return str(self._execution["workflow_type"])

    @property
    def task_queue(self) -> str:
        return str(self._execution["task_queue"])

    @property
    def status(self) -> WorkflowExecutionStatus:
        """How the run stands; a paused run is ``RUNNING`` (see :attr:`paused`)."""
        return WorkflowExecutionStatus(self._execution["status"])

    @property
    def paused(self) -> bool:
        return bool(self._execution.get("paused"))

    @property
    def start_time(self) -> datetime:
        started = _time(self._execution["start_time"])
        assert started is not None
        return started

    @property
    def execution_time(self) -> datetime | None:
        """When the run's code was due to first run, as Temporal's: its start,
        or after its start delay, cron time or retry backoff."""
        return _time(self._execution.get("execution_time"))

    @property
    def close_time(self) -> datetime | None:
        """When the run closed; None while it runs."""
        return _time(self._execution.get("close_time"))

    @property
    def history_length(self) -> int:
        return int(self._execution["history_length"])

    @property
    def memo(self) -> Memo:
        """The run's memo, its values decoded (``desc.memo["k"]``, or
        ``await desc.memo()`` as in Temporal)."""
        return Memo(self._execution.get("memo") or {})

    @property
    def search_attributes(self) -> dict[str, Any]:
        return dict(self._execution.get("search_attributes") or {})

    @property
    def parent_id(self) -> None:
        """Baton has no child workflows: always None."""
        return None

    @property
    def parent_run_id(self) -> None:
        return None
