"""Errors of the server packages.

``StoreError`` is the root. Each class names its stable wire code
(:class:`worker.wire.ErrorCode`) and HTTP status, its docstring is the default
message, and ``retryable`` says whether the same request may succeed later.
:func:`wrap_exceptions` is the one place asyncpg errors become store errors.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any, ClassVar

import asyncpg

from worker.wire import ErrorCode


class StoreError(Exception):
    """The request failed."""

    code: ClassVar[ErrorCode] = ErrorCode.INTERNAL
    http_status: ClassVar[int] = 500
    retryable: ClassVar[bool] = False

    def __init__(self, message: str | None = None, **details: Any):
        self.message = message or (self.__doc__ or "").strip()
        self.details = details
        super().__init__(self.message)


class MalformedRequest(StoreError):
    """The request body is not valid JSON of the expected shape."""

    code = ErrorCode.MALFORMED_REQUEST
    http_status = 400


class InvalidArgument(StoreError):
    """An argument is out of range or of the wrong kind."""

    code = ErrorCode.INVALID_ARGUMENT
    http_status = 400


class UnknownRegion(InvalidArgument):
    """A region name the config does not have (the CLI's usage error, exit 2)."""


class RequestIdReused(InvalidArgument):
    """The request id was used by another kind of request of this workflow id:
    a retry repeats the same call, and a new call needs a request id of its own."""


class InvalidQuery(StoreError):
    """The list query is not valid; the message names the position and the token."""

    code = ErrorCode.INVALID_QUERY
    http_status = 400


class BatchNotFound(StoreError):
    """No batch job with that id in this namespace."""

    code = ErrorCode.BATCH_NOT_FOUND
    http_status = 404


class BatchAlreadyExists(StoreError):
    """A batch job with that id exists with another query, operation or rate."""

    code = ErrorCode.BATCH_ALREADY_EXISTS
    http_status = 409


class ScheduleNotFound(StoreError):
    """No schedule with that id in this namespace."""

    code = ErrorCode.SCHEDULE_NOT_FOUND
    http_status = 404


class ScheduleAlreadyExists(StoreError):
    """A schedule with that id exists: update it, or delete it first."""

    code = ErrorCode.SCHEDULE_ALREADY_EXISTS
    http_status = 409


class TestClockOff(StoreError):
    """This server runs on real time: set test_clock = true in its config to move its clock."""

    __test__ = False  # not a pytest class
    code = ErrorCode.TEST_CLOCK_OFF
    http_status = 409


class RevisionMismatch(StoreError):
    """The deployment changed since the revision the caller expected."""

    code = ErrorCode.REVISION_MISMATCH
    http_status = 409


class DeploymentNotFound(StoreError):
    """No worker deployment (or version) of that name in this namespace."""

    code = ErrorCode.DEPLOYMENT_NOT_FOUND
    http_status = 404


class NoPollers(StoreError):
    """No worker of that version polls: routing work there would leave it waiting."""

    code = ErrorCode.NO_POLLERS
    http_status = 409


class PayloadTooLarge(StoreError):
    """A payload is larger than this server accepts."""

    code = ErrorCode.PAYLOAD_TOO_LARGE
    http_status = 413


class RouteNotFound(StoreError):
    """No such route: see /docs for the API."""

    code = ErrorCode.NOT_FOUND
    http_status = 404


class MethodNotAllowed(StoreError):
    """The route exists but not for this HTTP method: see /docs for the API."""

    code = ErrorCode.METHOD_NOT_ALLOWED
    http_status = 405


class NamespaceNotFound(StoreError):
    """No such namespace: create it with `baton namespace create NAME`."""

    code = ErrorCode.NAMESPACE_NOT_FOUND
    http_status = 404


class NamespaceAlreadyExists(StoreError):
    """A namespace of that name exists already."""

    code = ErrorCode.NAMESPACE_ALREADY_EXISTS
    http_status = 409


class NamespaceNotActive(StoreError):
    """This region is a standby for the namespace: send writes to the active region."""

    code = ErrorCode.NAMESPACE_NOT_ACTIVE
    http_status = 421


class NamespaceInHandover(StoreError):
    """The namespace is moving to another region: retry shortly."""

    code = ErrorCode.NAMESPACE_IN_HANDOVER
    http_status = 503
    retryable = True


class WorkflowAlreadyStarted(StoreError):
    """A run of this workflow id is already running."""

    code = ErrorCode.WORKFLOW_ALREADY_STARTED
    http_status = 409


class WorkflowNotFound(StoreError):
    """No such workflow execution."""

    code = ErrorCode.WORKFLOW_NOT_FOUND
    http_status = 404


class WorkflowNotRunning(StoreError):
    """The workflow execution is closed."""

    code = ErrorCode.WORKFLOW_NOT_RUNNING
    http_status = 409


class WorkflowPaused(StoreError):
    """The workflow is paused: unpause it before sending it updates."""

    code = ErrorCode.WORKFLOW_PAUSED
    http_status = 409


class ConflictNotFound(StoreError):
    """No such archived conflict in this region."""

    code = ErrorCode.CONFLICT_NOT_FOUND
    http_status = 404


class TaskNotFound(StoreError):
    """The task token names no open task: it was completed, timed out or never existed."""

    code = ErrorCode.TASK_NOT_FOUND
    http_status = 404


class QueryFailed(StoreError):
    """The workflow's query handler failed."""

    code = ErrorCode.QUERY_FAILED
    http_status = 400


class QueryTimedOut(StoreError):
    """No worker answered the query in time: is a worker polling the workflow's task queue?"""

    code = ErrorCode.QUERY_TIMED_OUT
    http_status = 504
    retryable = True


class UpdateRejected(StoreError):
    """The workflow's update validator rejected the update; nothing was recorded."""

    code = ErrorCode.UPDATE_REJECTED
    http_status = 400


class UpdateFailed(StoreError):
    """The update handler raised, or the run closed before the accepted update completed."""

    code = ErrorCode.UPDATE_FAILED
    http_status = 400


class UpdateTimedOut(StoreError):
    """The update did not complete in time; call again with the same update id to keep waiting."""

    code = ErrorCode.UPDATE_TIMED_OUT
    http_status = 504
    retryable = True


class UpdateNotFound(StoreError):
    """The run has no update of that id: pass the run it was sent to, or send it."""

    code = ErrorCode.UPDATE_NOT_FOUND
    http_status = 404


class LimitExceeded(StoreError):
    """A per-run limit is reached: continue-as-new keeps long-lived workflows under it."""

    code = ErrorCode.LIMIT_EXCEEDED
    http_status = 429


class SchemaOutOfDate(StoreError):
    """The region database schema is older than this server needs: run `baton migrate up`."""

    code = ErrorCode.SCHEMA_OUT_OF_DATE
    http_status = 503


class Unavailable(StoreError):
    """The region database is unreachable or overloaded: retry shortly."""

    code = ErrorCode.UNAVAILABLE
    http_status = 503
    retryable = True


class Conflict(StoreError):
    """A concurrent change touched the same workflow: retry."""

    code = ErrorCode.UNAVAILABLE
    http_status = 503
    retryable = True


class StaleRun(Conflict):
    """A write from a run this server remembered found it changed: read it and retry."""


#: What asyncpg raises when the region database cannot serve a session now:
#: unreachable, out of connections, a connection lost, or PostgreSQL starting
#: up or shutting down (57P01..57P03). All of them pass; a retry is the answer.
DATABASE_UNAVAILABLE: tuple[type[BaseException], ...] = (
    asyncpg.CannotConnectNowError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    asyncpg.ConnectionDoesNotExistError,
    asyncpg.TooManyConnectionsError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    # the protocol of a connection the database dropped mid-request
    asyncpg.InternalClientError,
    ConnectionError,
    OSError,
)


def database_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` says the region database cannot serve a session now.

    Besides :data:`DATABASE_UNAVAILABLE`: a database an operator closed to
    new sessions (``ALTER DATABASE ... ALLOW_CONNECTIONS false``, SQLSTATE
    55000 at connect), which opens again by the same hand.
    """
    if isinstance(exc, DATABASE_UNAVAILABLE):
        return True
    return isinstance(
        exc, asyncpg.ObjectNotInPrerequisiteStateError
    ) and "accepting connections" in str(exc)


def database_unavailable_error(exc: BaseException) -> Unavailable:
    """The typed error for a region database that cannot serve (see
    :func:`database_unavailable`), saying why and what to check."""
    if isinstance(exc, TimeoutError):
        return Unavailable(
            "region database unavailable (TimeoutError: it did not answer in time): it or "
            "its host is stuck, a lock the request needs is held by a session that does not "
            "end, or every connection of the server's pool is in use. Retry shortly; if it "
            "lasts, check that the database at the region's dsn is up and what its sessions "
            "wait on (pg_stat_activity)"
        )
    # a timeout's text is empty: its type is the reason
    why = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return Unavailable(
        f"region database unavailable ({why}): check that it is up and answers at the "
        "region's dsn; the request changed nothing and can be sent again"
    )


#: The constraint that holds one pending activity per activity id in a run
#: (a closed activity's row is gone, so its id may be used again).
PENDING_ACTIVITY_ID = "activities_namespace_workflow_id_run_id_activity_id_key"


@contextlib.contextmanager
def wrap_exceptions() -> Iterator[None]:
    """Turn asyncpg errors into store errors, keeping the original as ``__cause__``."""
    try:
        yield
    except StoreError:
        raise
    except (asyncpg.SerializationError, asyncpg.DeadlockDetectedError) as exc:
        raise Conflict() from exc
    except asyncpg.UniqueViolationError as exc:
        if exc.constraint_name == PENDING_ACTIVITY_ID:
            raise InvalidArgument(
                "a ScheduleActivity command gives the activity id of an activity still pending "
                "in the run: wait for that activity to close, or give this one another id"
            ) from exc
        raise StoreError(f"database error: {exc.__class__.__name__}: {exc}") from exc
    except (*DATABASE_UNAVAILABLE, asyncpg.PostgresError) as exc:
        if database_unavailable(exc):
            raise database_unavailable_error(exc) from exc
        raise StoreError(f"database error: {exc.__class__.__name__}: {exc}") from exc
