"""Stable error codes and the error body every failed call answers with."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class ErrorCode(StrEnum):
    """Stable error codes carried in every error body as ``error.code``."""

    MALFORMED_REQUEST = "MALFORMED_REQUEST"
    INVALID_ARGUMENT = "INVALID_ARGUMENT"
    #: A list/count query does not parse or names what is not there; the
    #: details carry ``position`` (0-based character offset) and ``token``.
    INVALID_QUERY = "INVALID_QUERY"
    BATCH_NOT_FOUND = "BATCH_NOT_FOUND"
    #: A batch job with that id exists with another query, operation or rate.
    BATCH_ALREADY_EXISTS = "BATCH_ALREADY_EXISTS"
    SCHEDULE_NOT_FOUND = "SCHEDULE_NOT_FOUND"
    SCHEDULE_ALREADY_EXISTS = "SCHEDULE_ALREADY_EXISTS"
    #: The server's clock moves only with ``test_clock = true`` in its config.
    TEST_CLOCK_OFF = "TEST_CLOCK_OFF"
    #: ``--expect-revision`` named a revision the deployment has moved past.
    REVISION_MISMATCH = "REVISION_MISMATCH"
    DEPLOYMENT_NOT_FOUND = "DEPLOYMENT_NOT_FOUND"
    #: A version no worker polls cannot become current or ramping (unless asked).
    NO_POLLERS = "NO_POLLERS"
    PAYLOAD_TOO_LARGE = "PAYLOAD_TOO_LARGE"
    NAMESPACE_NOT_FOUND = "NAMESPACE_NOT_FOUND"
    NAMESPACE_ALREADY_EXISTS = "NAMESPACE_ALREADY_EXISTS"
    NAMESPACE_NOT_ACTIVE = "NAMESPACE_NOT_ACTIVE"
    NAMESPACE_IN_HANDOVER = "NAMESPACE_IN_HANDOVER"
    WORKFLOW_ALREADY_STARTED = "WORKFLOW_ALREADY_STARTED"
    WORKFLOW_NOT_FOUND = "WORKFLOW_NOT_FOUND"
    WORKFLOW_NOT_RUNNING = "WORKFLOW_NOT_RUNNING"
    TASK_NOT_FOUND = "TASK_NOT_FOUND"
    QUERY_FAILED = "QUERY_FAILED"
    QUERY_TIMED_OUT = "QUERY_TIMED_OUT"
    UPDATE_REJECTED = "UPDATE_REJECTED"
    UPDATE_FAILED = "UPDATE_FAILED"
    UPDATE_TIMED_OUT = "UPDATE_TIMED_OUT"
    #: The run has no update of that id (``GET .../updates/{id}``).
    UPDATE_NOT_FOUND = "UPDATE_NOT_FOUND"
    #: The workflow is paused: updates wait for no one (unpause it first).
    WORKFLOW_PAUSED = "WORKFLOW_PAUSED"
    SCHEMA_OUT_OF_DATE = "SCHEMA_OUT_OF_DATE"
    FAILOVER_TIMED_OUT = "FAILOVER_TIMED_OUT"
    FAILOVER_TARGET_BEHIND = "FAILOVER_TARGET_BEHIND"
    #: A graceful failover's target holds dead letters of the namespace; the
    #: details carry ``dead_letters`` (how many) and ``target``. Nothing moved.
    FAILOVER_TARGET_DEAD_LETTERS = "FAILOVER_TARGET_DEAD_LETTERS"
    DEAD_LETTER_NOT_FOUND = "DEAD_LETTER_NOT_FOUND"
    CONFLICT_NOT_FOUND = "CONFLICT_NOT_FOUND"
    REPLICATION_APPLY_FAILED = "REPLICATION_APPLY_FAILED"
    #: A per-run limit (history length or size, signals, pending updates) is reached.
    LIMIT_EXCEEDED = "LIMIT_EXCEEDED"
    #: No such route: the URL names nothing this server serves.
    NOT_FOUND = "NOT_FOUND"
    #: The route exists but not for this HTTP method.
    METHOD_NOT_ALLOWED = "METHOD_NOT_ALLOWED"
    UNAVAILABLE = "UNAVAILABLE"
    INTERNAL = "INTERNAL"


#: Codes a client may retry as-is after a pause (an update with its update id).
RETRYABLE_CODES = frozenset(
    {
        ErrorCode.NAMESPACE_IN_HANDOVER,
        ErrorCode.UNAVAILABLE,
        ErrorCode.QUERY_TIMED_OUT,
        ErrorCode.UPDATE_TIMED_OUT,
    }
)


def _all_sent(schema: dict[str, Any]) -> None:
    # the server sends all four keys: the document marks each required
    schema["required"] = list(schema.get("properties", {}))


class ErrorBody(BaseModel):
    model_config = ConfigDict(json_schema_extra=_all_sent)

    code: ErrorCode
    message: str
    retryable: bool = False
    details: dict[str, Any] = Field(default_factory=dict)


class ErrorResponse(BaseModel):
    error: ErrorBody
