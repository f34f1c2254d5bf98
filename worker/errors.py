"""Errors of the SDK.

Two families live here. ``BatonError`` and its subclasses are what the SDK
raises to the caller: server errors (one class per stable wire code, built by
:func:`from_wire`) and client-side ones such as an unknown encryption key.
``ApplicationError``, ``ActivityError`` and friends describe failures of user
code as they cross from activities to workflows to clients.

Each class's docstring is its default message; ``retryable`` says whether the
same call may succeed if made again unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any, ClassVar

from worker.wire import MAX_DURATION_S, ErrorCode, Failure


class BatonError(Exception):
    """Baton request failed."""

    code: ClassVar[str] = ErrorCode.INTERNAL.value
    retryable: ClassVar[bool] = False

    def __init__(self, message: str | None = None, *, details: dict[str, Any] | None = None):
        self.message = message or (self.__doc__ or self.__class__.__name__).strip()
        self.details = details or {}
        super().__init__(self.message)

    def __str__(self) -> str:
        return f"[{self.code}] {self.message}"

    @property
    def cause(self) -> BaseException | None:
        """The error this one wraps (``__cause__``), as Temporal's
        ``WorkflowUpdateFailedError.cause`` reads it: the ``ApplicationError``
        a failed update's handler or validator (or a failed query) raised."""
        return self.__cause__


class MalformedRequestError(BatonError):
    """The request body is not valid JSON of the expected shape."""

    code = ErrorCode.MALFORMED_REQUEST.value


class InvalidArgumentError(BatonError):
    """An argument is out of range or of the wrong kind."""

    code = ErrorCode.INVALID_ARGUMENT.value


class PayloadTypeError(InvalidArgumentError, TypeError):
    """A value that arrived is not of the type it was asked for as (``type_hint``,
    or the return annotation of the handler or workflow named): decode it as
    the type it was sent as, or without a hint. A ``TypeError`` too, as
    Temporal's SDK raises one."""


class ArgumentsGivenTwiceError(InvalidArgumentError, TypeError, ValueError):
    """Arguments were given both positionally and as ``args=``: pass them one way.
    A ``TypeError`` too (as Python's "got multiple values") and a ``ValueError``
    (as Temporal's SDK raises for an ``arg`` beside ``args``)."""


class InvalidQueryError(BatonError):
    """The list query is not valid; ``details`` carry ``position`` and ``token``."""

    code = ErrorCode.INVALID_QUERY.value


class BatchNotFoundError(BatonError):
    """No batch job with that id in this namespace."""

    code = ErrorCode.BATCH_NOT_FOUND.value


class BatchAlreadyExistsError(BatonError):
    """A batch job with that id exists with another query, operation or rate."""

    code = ErrorCode.BATCH_ALREADY_EXISTS.value


class ScheduleNotFoundError(BatonError):
    """No schedule with that id in this namespace."""

    code = ErrorCode.SCHEDULE_NOT_FOUND.value


class ScheduleAlreadyExistsError(BatonError):
    """A schedule with that id exists: update it, or delete it first."""

    code = ErrorCode.SCHEDULE_ALREADY_EXISTS.value


class TestClockOffError(BatonError):
    """The server runs on real time: its config needs test_clock = true."""

    __test__ = False  # not a pytest class
    code = ErrorCode.TEST_CLOCK_OFF.value


class WorkflowPausedError(BatonError):
    """The workflow is paused: unpause it before sending it updates."""

    code = ErrorCode.WORKFLOW_PAUSED.value


class RevisionMismatchError(BatonError):
    """The deployment changed since the revision the caller expected: read it, decide again."""

    code = ErrorCode.REVISION_MISMATCH.value


class DeploymentNotFoundError(BatonError):
    """No worker deployment (or version) of that name in this namespace."""

    code = ErrorCode.DEPLOYMENT_NOT_FOUND.value


class NoPollersError(BatonError):
    """No worker of that version polls (pass allow_no_pollers to route there anyway)."""

    code = ErrorCode.NO_POLLERS.value


class PayloadTooLargeError(BatonError):
    """A payload is larger than the server accepts."""

    code = ErrorCode.PAYLOAD_TOO_LARGE.value


class NamespaceNotFoundError(BatonError):
    """No such namespace: create it with `baton namespace create NAME`."""

    code = ErrorCode.NAMESPACE_NOT_FOUND.value


class NamespaceAlreadyExistsError(BatonError):
    """A namespace of that name exists already."""

    code = ErrorCode.NAMESPACE_ALREADY_EXISTS.value


class NamespaceNotActiveError(BatonError):
    """This region is a standby for the namespace: send writes to the active region."""

    code = ErrorCode.NAMESPACE_NOT_ACTIVE.value

    @property
    def active_region(self) -> str | None:
        return self.details.get("active_region")

    @property
    def active_url(self) -> str | None:
        return self.details.get("active_url")


class NamespaceInHandoverError(BatonError):
    """The namespace is moving to another region: retry shortly."""

    code = ErrorCode.NAMESPACE_IN_HANDOVER.value
    retryable = True


class WorkflowAlreadyStartedError(BatonError):
    """A run of this workflow id is already running."""

    code = ErrorCode.WORKFLOW_ALREADY_STARTED.value


class WorkflowNotFoundError(BatonError):
    """No such workflow execution."""

    code = ErrorCode.WORKFLOW_NOT_FOUND.value


class WorkflowNotRunningError(BatonError):
    """The workflow execution is closed."""

    code = ErrorCode.WORKFLOW_NOT_RUNNING.value


class TaskNotFoundError(BatonError):
    """The task token names no task that is open: it was completed, timed out or never existed."""

    code = ErrorCode.TASK_NOT_FOUND.value


class QueryFailedError(BatonError):
    """The workflow's query handler raised or does not exist."""

    code = ErrorCode.QUERY_FAILED.value


class QueryTimedOutError(BatonError):
    """No worker answered the query in time: is a worker polling the task queue?"""

    code = ErrorCode.QUERY_TIMED_OUT.value
    retryable = True


class UpdateRejectedError(BatonError):
    """The workflow's update validator rejected the update; nothing was recorded."""

    code = ErrorCode.UPDATE_REJECTED.value


class UpdateFailedError(BatonError):
    """The update handler raised, or the run closed before the accepted update completed."""

    code = ErrorCode.UPDATE_FAILED.value


class UpdateTimedOutError(BatonError):
    """The update did not complete in time; it may still complete later."""

    code = ErrorCode.UPDATE_TIMED_OUT.value
    retryable = True


class UpdateNotFoundError(BatonError):
    """The run has no update of that id: pass the run it was sent to, or send it."""

    code = ErrorCode.UPDATE_NOT_FOUND.value


class SchemaOutOfDateError(BatonError):
    """The region database schema is older than this server needs: run `baton migrate up`."""

    code = ErrorCode.SCHEMA_OUT_OF_DATE.value


class UnavailableError(BatonError):
    """The server cannot be reached or is overloaded: retry shortly."""

    code = ErrorCode.UNAVAILABLE.value
    retryable = True


class RouteNotFoundError(BatonError):
    """No such route on this server: is the URL right, and the server of this release?"""

    code = ErrorCode.NOT_FOUND.value


class MethodNotAllowedError(BatonError):
    """The route does not take that HTTP method: is the server of this release?"""

    code = ErrorCode.METHOD_NOT_ALLOWED.value


class InternalServerError(BatonError):
    """The server failed unexpectedly; its log has the details."""

    code = ErrorCode.INTERNAL.value


class LimitExceededError(BatonError):
    """A per-run limit is reached (history length or size, signals, pending updates):
    continue-as-new keeps long-lived workflows under them."""

    code = ErrorCode.LIMIT_EXCEEDED.value


class ClientClosedError(BatonError):
    """A call on a client that was closed: connect a new one."""

    code = "CLIENT_CLOSED"


class UnknownEncryptionKeyError(BatonError):
    """A payload was encrypted with a key id this codec does not hold: add the key to the codec."""

    code = "UNKNOWN_ENCRYPTION_KEY"


class PayloadDecryptionError(BatonError):
    """A payload failed authentication: it was altered or the key is wrong."""

    code = "PAYLOAD_DECRYPTION_FAILED"


_BY_CODE: dict[str, type[BatonError]] = {
    cls.code: cls
    for cls in (
        MalformedRequestError,
        InvalidArgumentError,
        InvalidQueryError,
        BatchNotFoundError,
        BatchAlreadyExistsError,
        ScheduleNotFoundError,
        ScheduleAlreadyExistsError,
        TestClockOffError,
        RevisionMismatchError,
        WorkflowPausedError,
        DeploymentNotFoundError,
        NoPollersError,
        PayloadTooLargeError,
        NamespaceNotFoundError,
        NamespaceAlreadyExistsError,
        NamespaceNotActiveError,
        NamespaceInHandoverError,
        WorkflowAlreadyStartedError,
        WorkflowNotFoundError,
        WorkflowNotRunningError,
        TaskNotFoundError,
        QueryFailedError,
        QueryTimedOutError,
        UpdateRejectedError,
        UpdateFailedError,
        UpdateTimedOutError,
        UpdateNotFoundError,
        SchemaOutOfDateError,
        UnavailableError,
        InternalServerError,
        LimitExceededError,
        RouteNotFoundError,
        MethodNotAllowedError,
    )
}


def from_wire(code: str, message: str, details: dict[str, Any] | None = None) -> BatonError:
    """Build the SDK error for a wire error body."""
    cls = _BY_CODE.get(code, InternalServerError)
    return cls(message, details=details)


# --------------------------------------------------------------------------- user failures


class FailureError(Exception):
    """Base of failures that travel between activities, workflows and clients."""

    def __init__(self, message: str, *, failure: Failure | None = None):
        super().__init__(message)
        self.message = message
        self.failure = failure

    @property
    def cause(self) -> BaseException | None:
        """The failure this one wraps (``__cause__``), as Temporal's ``cause``
        reads it: an ``ActivityError``'s attempt error, a ``WorkflowFailureError``'s
        closing failure."""
        return self.__cause__


class ApplicationError(FailureError):
    """Raised by user code to fail an activity or a workflow on purpose.

    Args:
        message: What went wrong.
        type: A name for the kind of error; retry policies match on it.
            Defaults to the class name.
        non_retryable: Fail the activity at once instead of retrying.
        details: JSON-serialisable values to attach.
        next_retry_delay: Raised by an activity: wait this long before its next
            attempt instead of the retry policy's backoff (the policy's
            maximum attempts and the activity's timeouts still apply).
    """

    def __init__(
        self,
        message: str,
        *details: Any,
        type: str | None = None,
        non_retryable: bool = False,
        next_retry_delay: timedelta | None = None,
        failure: Failure | None = None,
    ):
        super().__init__(message, failure=failure)
        self.details = details
        self.type = type or self.__class__.__name__
        self.non_retryable = non_retryable
        if next_retry_delay is not None and (
            not isinstance(next_retry_delay, timedelta)
            or not timedelta(0) <= next_retry_delay <= timedelta(seconds=MAX_DURATION_S)
        ):
            raise ValueError(
                "ApplicationError.next_retry_delay must be a timedelta from zero to ten "
                f"years, got {next_retry_delay!r}"
            )
        self.next_retry_delay = next_retry_delay


class ActivityError(FailureError):
    """An activity failed for good (retries exhausted, non-retryable, timed out or canceled).

    ``__cause__`` holds the last failure as an :class:`ApplicationError` or
    :class:`TimeoutError_`.
    """

    def __init__(
        self,
        message: str,
        *,
        activity_type: str,
        activity_id: str,
        retry_state: str = "",
        failure: Failure | None = None,
    ):
        super().__init__(message, failure=failure)
        self.activity_type = activity_type
        self.activity_id = activity_id
        self.retry_state = retry_state


class TimeoutError_(FailureError):
    """An activity or workflow timed out; ``timeout_type`` says which timeout.

    ``last_heartbeat_details`` holds the details of the activity's last
    heartbeat (empty if it sent none), so the workflow can start over from
    the progress they record.
    """

    def __init__(
        self,
        message: str,
        *,
        timeout_type: str,
        failure: Failure | None = None,
        last_heartbeat_details: Sequence[Any] = (),
    ):
        super().__init__(message, failure=failure)
        self.timeout_type = timeout_type
        self.last_heartbeat_details = tuple(last_heartbeat_details)


class CanceledError(FailureError):
    """The activity or workflow was canceled; ``details`` (as Temporal's
    ``CancelledError`` has them) are the values it was raised with, if any."""

    def __init__(self, message: str, *details: Any, failure: Failure | None = None):
        super().__init__(message, failure=failure)
        self.details = details


class TerminatedError(FailureError):
    """The workflow was terminated (by an operator, a reset, or the server at a
    limit): its code did not fail it, so this is no ``ApplicationError``;
    ``details`` as Temporal's ``TerminatedError`` has them (none here)."""

    def __init__(self, message: str, *details: Any, failure: Failure | None = None):
        super().__init__(message, failure=failure)
        self.details = details


class WorkflowFailureError(FailureError):
    """The workflow closed without a result (failed, canceled, terminated or timed out).

    ``status`` is the closing status; ``__cause__`` the failure where there is one.
    """

    def __init__(self, message: str, *, status: str, failure: Failure | None = None):
        super().__init__(message, failure=failure)
        self.status = status


class WorkflowContinuedAsNewError(WorkflowFailureError):
    """``result(follow_runs=False)`` of a run that continued as new, as in
    Temporal: ``new_execution_run_id`` is the run it continued to."""

    def __init__(self, message: str, *, new_execution_run_id: str | None):
        super().__init__(message, status="continued_as_new")
        self.new_execution_run_id = new_execution_run_id


class NonDeterminismError(Exception):
    """Workflow code produced a command that does not match its recorded history."""
