"""What an activity's closing event means to the workflow that scheduled it."""

from __future__ import annotations

import asyncio

from worker._failure import ACTIVITY_ERROR_TYPE, failure_to_exception, last_heartbeat_details
from worker.converter import PayloadConverter
from worker.errors import (
    ActivityError,
    ApplicationError,
    CanceledError,
    FailureError,
    TimeoutError_,
)
from worker.wire import EventType, Failure, HistoryEvent


def activity_error(
    event: HistoryEvent, activity_type: str, activity_id: str, converter: PayloadConverter
) -> ActivityError:
    """The error an ActivityTaskFailed, TimedOut or Canceled event raises in the
    workflow, with the attempt's own failure as its cause."""
    attrs = event.attributes
    kind = event.event_type
    raw = attrs.get("failure")
    failure = Failure.model_validate(raw) if raw else None
    if failure is not None and failure.type == ACTIVITY_ERROR_TYPE and failure.cause is not None:
        failure = failure.cause  # the server wrapped the attempt's failure
    cause: FailureError
    if kind == EventType.ACTIVITY_TASK_FAILED:
        verb = "failed"
        cause = (
            failure_to_exception(failure, converter)
            if failure is not None
            else ApplicationError("activity failed without a failure", type="Unknown")
        )
    elif kind == EventType.ACTIVITY_TASK_TIMED_OUT:
        timeout_type = str(attrs.get("timeout_type") or "")
        verb = f"timed out ({timeout_type})"
        cause = TimeoutError_(
            failure.message if failure is not None else f"activity timed out ({timeout_type})",
            timeout_type=timeout_type,
            failure=failure,
            last_heartbeat_details=last_heartbeat_details(failure, converter),
        )
        if failure is not None and failure.cause is not None:
            cause.__cause__ = failure_to_exception(failure.cause, converter)
    else:
        verb = "was canceled"
        cause = CanceledError("activity canceled", failure=failure)
    canceled = kind == EventType.ACTIVITY_TASK_CANCELED
    error = (ActivityCancellation if canceled else ActivityError)(
        f"activity {activity_type} (id {activity_id}) {verb}: {cause.message}",
        activity_type=activity_type,
        activity_id=activity_id,
        retry_state=str(attrs.get("retry_state") or ("cancel_requested" if canceled else "")),
        failure=failure,
    )
    error.__cause__ = cause
    return error


#: Patch marker of runs whose activities cancelled by the workflow raise
#: :class:`ActivityCancellation`; a run written without it (by an earlier
#: release) keeps the bare ``asyncio.CancelledError`` on replay.
ACTIVITY_CANCEL_ERROR_PATCH = "baton.activity-cancel-error"


class ActivityCancellation(ActivityError, asyncio.CancelledError):
    """What awaiting an activity raises once the workflow cancelled it (its handle,
    the task awaiting it, or the run on the workflow's cancel request).

    An ``ActivityError`` whose cause is a ``CanceledError``, as Temporal raises
    it (so ``except ActivityError`` takes it), and an ``asyncio.CancelledError``
    too, so ``except asyncio.CancelledError`` and ``asyncio.wait_for`` see the
    cancellation they caused, and one the code lets out cancels its task.
    """


def canceled_by_workflow(activity_type: str, activity_id: str) -> ActivityCancellation:
    """The error of an activity the workflow code cancelled itself."""
    cause = CanceledError("the workflow canceled it")
    error = ActivityCancellation(
        f"activity {activity_type} (id {activity_id}) was canceled: {cause.message}",
        activity_type=activity_type,
        activity_id=activity_id,
        retry_state="cancel_requested",
    )
    error.__cause__ = cause
    return error


def uncaught_cancellation(task: asyncio.Task[object]) -> FailureError:
    """The failure a run method that ended cancelled (with no cancel request) closes with."""
    reason: object = None
    try:
        task.result()
    except asyncio.CancelledError as err:
        # The first read gives the error raised in the code: an activity's
        # cancellation is the ActivityError itself; any other cancellation's
        # argument may say what was cancelled.
        if isinstance(err, FailureError):
            return err
        reason = err.args[0] if err.args else None
    if isinstance(reason, FailureError):
        return reason
    return CanceledError(
        "the workflow code was cancelled without a cancel request"
        + (f": {reason}" if reason else "")
    )


def caused_by_cancel(exc: BaseException) -> bool:
    """Whether ``exc`` or a cause of it is a ``CanceledError``."""
    seen: BaseException | None = exc
    for _ in range(20):
        if seen is None:
            return False
        if isinstance(seen, CanceledError):
            return True
        seen = seen.__cause__
    return False
