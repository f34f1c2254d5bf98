"""What an activity's closing event means to the workflow that scheduled it."""

from __future__ import annotations

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
    error = ActivityError(
        f"activity {activity_type} (id {activity_id}) {verb}: {cause.message}",
        activity_type=activity_type,
        activity_id=activity_id,
        retry_state=str(attrs.get("retry_state") or ""),
        failure=failure,
    )
    error.__cause__ = cause
    return error


def canceled_by_workflow(activity_type: str, activity_id: str) -> ActivityError:
    """The error of an activity the workflow code cancelled itself."""
    cause = CanceledError("the workflow canceled it")
    error = ActivityError(
        f"activity {activity_type} (id {activity_id}) was canceled: {cause.message}",
        activity_type=activity_type,
        activity_id=activity_id,
    )
    error.__cause__ = cause
    return error
