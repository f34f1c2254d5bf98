"""Failures as the server writes them and the SDK rebuilds them, old rows included."""

from __future__ import annotations

import pytest
from starlette.routing import compile_path

from store import api_guard
from store.errors import InvalidArgument
from store.retry import DEFAULT_RETRY_POLICY, retry_decision
from store.run_close import close_outcome
from store.starts import check_workflow_id
from worker._failure import (
    close_failure_to_exception,
    exception_to_failure,
    failure_to_exception,
)
from worker.converter import PayloadConverter
from worker.errors import (
    ActivityError,
    ApplicationError,
    CanceledError,
    InternalServerError,
    MethodNotAllowedError,
    QueryFailedError,
    RouteNotFoundError,
    TerminatedError,
    TimeoutError_,
    from_wire,
)
from worker.wire import EventType, Failure

CONVERTER = PayloadConverter()


def _closed(event_type: EventType, attributes: dict[str, object]) -> Failure:
    _status, _result, failure = close_outcome(event_type.value, attributes)
    return Failure.model_validate(failure)


def test_a_canceled_run_carries_the_cancel_reason_as_a_canceled_error() -> None:
    failure = _closed(EventType.WORKFLOW_EXECUTION_CANCELED, {"reason": "customer asked"})
    exc = close_failure_to_exception("canceled", failure, CONVERTER)
    assert type(exc) is CanceledError
    assert exc.message == "workflow canceled: customer asked"
    plain = _closed(EventType.WORKFLOW_EXECUTION_CANCELED, {"details": None})
    assert plain.message == "workflow canceled"


def test_a_timed_out_run_is_a_timeout_error_of_the_run_timeout() -> None:
    failure = _closed(EventType.WORKFLOW_EXECUTION_TIMED_OUT, {"timeout_s": 1.0})
    exc = close_failure_to_exception("timed_out", failure, CONVERTER)
    assert isinstance(exc, TimeoutError_) and exc.timeout_type == "run"


@pytest.mark.parametrize(
    ("status", "stored", "expected", "timeout_type"),
    [
        # rows and histories written by servers of earlier releases
        ("canceled", {"message": "workflow canceled", "type": "Canceled"}, CanceledError, None),
        (
            "timed_out",
            {"message": "workflow run timed out", "type": "Timeout"},
            TimeoutError_,
            "run",
        ),
    ],
)
def test_failures_stored_under_the_old_type_names_still_map(
    status: str, stored: dict[str, str], expected: type, timeout_type: str | None
) -> None:
    exc = close_failure_to_exception(status, Failure.model_validate(stored), CONVERTER)
    assert type(exc) is expected
    if timeout_type is not None:
        assert isinstance(exc, TimeoutError_) and exc.timeout_type == timeout_type


@pytest.mark.parametrize("type_name", ["Canceled", "Timeout"])
def test_a_run_failed_by_an_application_error_of_those_names_keeps_it(type_name: str) -> None:
    failure = Failure(message="mine", type=type_name)
    exc = close_failure_to_exception("failed", failure, CONVERTER)
    assert type(exc) is ApplicationError and exc.type == type_name


def test_an_old_activity_timeout_failure_is_a_timeout_error() -> None:
    stored = {"message": "activity start-to-close timeout", "type": "Timeout"}
    exc = failure_to_exception(
        Failure.model_validate({**stored, "timeout_type": "start_to_close"}), CONVERTER
    )
    assert isinstance(exc, TimeoutError_) and exc.timeout_type == "start_to_close"
    # without a timeout type it is an application's own "Timeout"
    assert type(failure_to_exception(Failure.model_validate(stored), CONVERTER)) is ApplicationError


def test_an_activity_error_keeps_its_activity_across_the_wire() -> None:
    err = ActivityError(
        "activity charge (id 7) failed: declined",
        activity_type="charge",
        activity_id="7",
        retry_state="non_retryable_failure",
    )
    err.__cause__ = ApplicationError("declined", type="Declined", non_retryable=True)
    wire_form = Failure.model_validate_json(exception_to_failure(err, CONVERTER).model_dump_json())
    back = failure_to_exception(wire_form, CONVERTER)
    assert isinstance(back, ActivityError)
    assert (back.activity_type, back.activity_id, back.retry_state) == (
        "charge",
        "7",
        "non_retryable_failure",
    )
    assert isinstance(back.__cause__, ApplicationError) and back.__cause__.type == "Declined"
    # one written before the activity travelled with it
    old = failure_to_exception(Failure(message="m", type="ActivityError"), CONVERTER)
    assert isinstance(old, ActivityError) and old.activity_type == ""


def test_a_timeout_error_keeps_its_type_for_new_and_old_readers() -> None:
    failure = exception_to_failure(TimeoutError_("late", timeout_type="heartbeat"), CONVERTER)
    assert failure.timeout_type == "heartbeat"
    assert CONVERTER.from_payloads(failure.details) == ["heartbeat"]  # where old SDKs look
    back = failure_to_exception(failure.model_copy(update={"timeout_type": None}), CONVERTER)
    assert isinstance(back, TimeoutError_) and back.timeout_type == "heartbeat"


def test_code_s_own_timeout_error_is_an_application_error_not_a_baton_timeout() -> None:
    # asyncio.timeout() in an activity raises Python's TimeoutError: it crosses
    # as an application failure of that name, which is no timeout of Baton's.
    try:
        raise TimeoutError("the upstream call took too long")
    except TimeoutError as exc:
        failure = exception_to_failure(exc, CONVERTER)
    back = failure_to_exception(Failure.model_validate_json(failure.model_dump_json()), CONVERTER)
    assert type(back) is ApplicationError
    assert (back.type, back.message) == ("TimeoutError", "the upstream call took too long")
    # one with details that name no timeout is the application's too
    mine = ApplicationError("slow", "upstream", type="TimeoutError")
    back = failure_to_exception(exception_to_failure(mine, CONVERTER), CONVERTER)
    assert type(back) is ApplicationError and back.details == ("upstream",)


def test_a_baton_error_crosses_as_its_text_without_the_code() -> None:
    failure = exception_to_failure(QueryFailedError("ValueError: boom"), CONVERTER)
    assert failure.message == "ValueError: boom"


class _Unprintable(Exception):
    def __str__(self) -> str:
        raise RuntimeError("no text")


@pytest.mark.parametrize(
    ("exc", "message"),
    [
        (ApplicationError(404), "404"),  # type: ignore[arg-type]
        (ApplicationError(None), "None"),  # type: ignore[arg-type]
        (_Unprintable(), "<_Unprintable: its message could not be read>"),
        (ValueError(b"raw"), "b'raw'"),
    ],
)
def test_a_failure_whose_message_is_no_text_is_still_reported(
    exc: BaseException, message: str
) -> None:
    # The report raised instead: an activity attempt went unreported until its
    # start-to-close timeout, and every retry alike.
    failure = exception_to_failure(exc, CONVERTER)
    assert failure.message == message
    assert failure.type == type(exc).__name__


def test_an_application_error_whose_type_is_no_text_is_still_reported() -> None:
    failure = exception_to_failure(ApplicationError("declined", type=402), CONVERTER)  # type: ignore[arg-type]
    assert (failure.type, failure.message) == ("402", "declined")


@pytest.mark.parametrize(
    ("code", "cls"),
    [
        ("NOT_FOUND", RouteNotFoundError),
        ("METHOD_NOT_ALLOWED", MethodNotAllowedError),
        ("SOMETHING_NEW", InternalServerError),
    ],
)
def test_route_errors_have_their_own_classes(code: str, cls: type) -> None:
    err = from_wire(code, "no such route: Not Found")
    assert type(err) is cls and err.code == (code if cls is not InternalServerError else "INTERNAL")


@pytest.mark.parametrize(
    ("kwargs", "state"),
    [
        ({"attempt": 1, "error_type": "X", "non_retryable": True}, "non_retryable_failure"),
        ({"attempt": 1, "error_type": "Bad", "non_retryable": False}, "non_retryable_failure"),
        ({"attempt": 3, "error_type": "X", "non_retryable": False}, "maximum_attempts_reached"),
        (
            {"attempt": 1, "error_type": "X", "non_retryable": False, "seconds_left": 0.5},
            "timeout",
        ),
        ({"attempt": 1, "error_type": "X", "non_retryable": False}, ""),
    ],
)
def test_retry_decision_says_why_it_stops(kwargs: dict[str, object], state: str) -> None:
    policy = {**DEFAULT_RETRY_POLICY, "maximum_attempts": 3, "non_retryable_error_types": ["Bad"]}
    delay, why = retry_decision(policy, **kwargs)  # type: ignore[arg-type]
    assert why == state
    assert (delay is None) == bool(state)


@pytest.mark.parametrize("wid", ["a\nb", "a\rb", "\tlead", "bell\x07", "del\x7f", "c1\x9b"])
def test_workflow_ids_with_control_characters_are_refused(wid: str) -> None:
    with pytest.raises(InvalidArgument, match="printable characters"):
        check_workflow_id(wid)


@pytest.mark.parametrize("wid", ["order-1", "a b", "a/b", "ünïcødé", "emoji-🙂", "a%0Ab"])
def test_printable_workflow_ids_pass(wid: str) -> None:
    check_workflow_id(wid)


@pytest.mark.parametrize("wid", ["plain", "a/b/c", "line\nbreak", "trailing\n", "\r\n"])
def test_workflow_routes_match_any_id(wid: str) -> None:
    regex, _fmt, _convertors = compile_path(
        f"/api/v1/namespaces/{{namespace}}/workflows/{api_guard.WORKFLOW_ID_PARAM}/history"
    )
    match = regex.match(f"/api/v1/namespaces/default/workflows/{wid}/history")
    assert match is not None and match["workflow_id"] == wid


def test_a_failure_names_its_cause_as_temporal_code_reads_it() -> None:
    # an activity's error, as a workflow that did not catch it closes with it
    inner = Failure(message="card declined", type="Declined", non_retryable=True)
    wire = Failure(
        message="activity charge (id 1) failed: card declined",
        type="ActivityError",
        cause=inner,
        activity={"activity_type": "charge", "activity_id": "1", "retry_state": "x"},
    )
    err = failure_to_exception(wire, CONVERTER)
    assert isinstance(err, ActivityError)
    assert isinstance(err.cause, ApplicationError)
    assert err.cause is err.__cause__
    assert err.cause.type == "Declined"
    assert err.cause.cause is None


def test_canceled_and_terminated_errors_have_details_as_temporal_s_do() -> None:
    """Regression: ``err.cause.details`` of a canceled or terminated run was an
    AttributeError, where Temporal's ``CancelledError`` and ``TerminatedError``
    carry them; a ``CanceledError`` raised with details keeps them across the wire."""
    canceled = _closed(EventType.WORKFLOW_EXECUTION_CANCELED, {"reason": "stop"})
    exc = close_failure_to_exception("canceled", canceled, CONVERTER)
    assert isinstance(exc, CanceledError) and exc.details == ()
    terminated = Failure(message="enough", type="TerminatedError")
    exc = close_failure_to_exception("terminated", terminated, CONVERTER)
    assert isinstance(exc, TerminatedError) and exc.details == ()
    wire = exception_to_failure(CanceledError("stopped", {"at": 3}, "why"), CONVERTER)
    back = failure_to_exception(wire, CONVERTER)
    assert isinstance(back, CanceledError)
    assert back.details == ({"at": 3}, "why")
