"""What a run's closing event makes of its row: status, result and failure.

The row keeps them so that a result call reads no history; the region that
closes the run and every region that applies its history derive them alike.
"""

from __future__ import annotations

from typing import Any

from worker.wire import CANCELED_FAILURE_TYPE, TIMEOUT_FAILURE_TYPE, EventType, Failure

#: The status each closing event gives a run.
CLOSE_STATUS = {
    EventType.WORKFLOW_EXECUTION_COMPLETED.value: "completed",
    EventType.WORKFLOW_EXECUTION_FAILED.value: "failed",
    EventType.WORKFLOW_EXECUTION_CANCELED.value: "canceled",
    EventType.WORKFLOW_EXECUTION_TERMINATED.value: "terminated",
    EventType.WORKFLOW_EXECUTION_TIMED_OUT.value: "timed_out",
    EventType.WORKFLOW_EXECUTION_CONTINUED_AS_NEW.value: "continued_as_new",
}


def _server_failure(message: str, type_: str, timeout_type: str | None = None) -> dict[str, Any]:
    """A failure the server writes itself, with every field a worker's failure
    has: describe, the result call and the CLI then give the same keys
    (``cause``, ``stack_trace``, ...) however a run closed."""
    failure = Failure(message=message, type=type_, timeout_type=timeout_type)
    return failure.model_dump(mode="json")


def close_outcome(event_type: str, attributes: dict[str, Any]) -> tuple[str, Any, Any]:
    """Status, result and failure a run's closing event gives its row (which keeps
    them so that a result call reads no history); every region derives them alike."""
    status = CLOSE_STATUS[event_type]
    if status == "completed":
        return status, attributes.get("result"), None
    if status == "failed":
        return status, None, attributes.get("failure")
    if status == "canceled":
        reason = attributes.get("reason")
        return (
            status,
            None,
            _server_failure(
                f"workflow canceled: {reason}" if reason else "workflow canceled",
                CANCELED_FAILURE_TYPE,
            ),
        )
    if status == "terminated":
        return (
            status,
            None,
            _server_failure(attributes.get("reason") or "terminated", "Terminated"),
        )
    if status == "timed_out":
        # the run's own timeout, or its chain's execution timeout
        kind = attributes.get("timeout_type") or "run"
        return (
            status,
            None,
            _server_failure(f"workflow {kind} timed out", TIMEOUT_FAILURE_TYPE, kind),
        )
    return status, None, None
