"""What a run's closing event makes of its row's failure."""

from __future__ import annotations

import pytest

from store.run_close import close_outcome
from worker.wire import EventType, Failure

EVERY_FIELD = set(Failure.model_fields)


@pytest.mark.parametrize(
    ("event_type", "attributes", "failure_type", "message"),
    [
        (EventType.WORKFLOW_EXECUTION_TERMINATED, {"reason": "enough"}, "Terminated", "enough"),
        (EventType.WORKFLOW_EXECUTION_TERMINATED, {}, "Terminated", "terminated"),
        (
            EventType.WORKFLOW_EXECUTION_CANCELED,
            {"reason": "bye"},
            "CanceledError",
            "workflow canceled: bye",
        ),
        (EventType.WORKFLOW_EXECUTION_TIMED_OUT, {}, "TimeoutError", "workflow run timed out"),
    ],
)
def test_a_failure_the_server_writes_has_every_field_a_worker_s_has(
    event_type: EventType, attributes: dict[str, str], failure_type: str, message: str
) -> None:
    """Regression: a terminated, canceled or timed-out run's failure was
    ``{type, message}`` alone where a failed run's held every field, so
    ``describe``, the result call and ``baton -o json workflow result`` gave
    different keys by how a run closed (``failure["cause"]`` a KeyError)."""
    _, result, failure = close_outcome(event_type.value, attributes)
    assert result is None
    assert set(failure) == EVERY_FIELD, failure
    assert (failure["type"], failure["message"]) == (failure_type, message)
    assert failure["cause"] is None and failure["details"] == []
    if event_type is EventType.WORKFLOW_EXECUTION_TIMED_OUT:
        assert failure["timeout_type"] == "run"
    assert Failure.model_validate(failure).model_dump(mode="json") == failure


def test_a_failed_run_keeps_the_failure_its_worker_wrote() -> None:
    written = Failure(message="nope", type="MyErr", non_retryable=True).model_dump(mode="json")
    attributes = {"failure": written}
    assert close_outcome(EventType.WORKFLOW_EXECUTION_FAILED.value, attributes) == (
        "failed",
        None,
        written,
    )
