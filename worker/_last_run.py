"""What the runs before this one of a cron (or retried) workflow ended with,
as Temporal's ``workflow.get_last_completion_result`` and
``workflow.get_last_failure`` read it from the run's started event."""

from __future__ import annotations

from typing import Any

from worker._failure import failure_to_exception
from worker._workflow_api import _runtime
from worker.wire import Failure, Payload


def has_last_completion_result() -> bool:
    """Whether an earlier run of this cron workflow completed (so
    :func:`get_last_completion_result` has its result)."""
    return _runtime().started_attributes().get("last_completion_result") is not None


def get_last_completion_result(type_hint: Any = None) -> Any:
    """The result of the last run of this cron workflow that completed (None:
    none has), decoded to ``type_hint`` if given, as in Temporal."""
    rt = _runtime()
    raw = rt.started_attributes().get("last_completion_result")
    if raw is None:
        return None
    return rt.payload_converter().from_payload(Payload.model_validate(raw), type_hint)


def get_last_failure() -> BaseException | None:
    """The failure the run before this one closed with, when it failed or
    timed out and a retry or the cron schedule started this run (None: it
    did not), as in Temporal."""
    rt = _runtime()
    raw = rt.started_attributes().get("continued_failure")
    if raw is None:
        return None
    return failure_to_exception(Failure.model_validate(raw), rt.payload_converter())
