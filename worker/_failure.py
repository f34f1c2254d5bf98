"""Turning exceptions into wire failures and back.

Failures cross process boundaries as data (never pickles): message, type,
stack trace, non-retryable flag, detail payloads and a cause chain. The
``type`` field says which exception class to rebuild on the other side.

With a payload codec on, the text of a failure is as private as its details:
:func:`hide_common_attributes` moves message and stack trace into the
``encoded_attributes`` payload (which the codec then encodes with every other
payload) and :func:`restore_common_attributes` puts them back once the codec
has decoded it, as Temporal's ``encode_common_attributes`` does.
"""

from __future__ import annotations

import traceback
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

from worker.converter import PayloadConverter
from worker.errors import (
    ActivityError,
    ApplicationError,
    BatonError,
    CanceledError,
    FailureError,
    TerminatedError,
    TimeoutError_,
)
from worker.wire import (
    ACTIVITY_FAILURE_TYPE,
    CANCELED_FAILURE_TYPE,
    MAX_DURATION_S,
    TIMEOUT_FAILURE_TYPE,
    ActivityFailureInfo,
    Failure,
    Payload,
)

ACTIVITY_ERROR_TYPE = ACTIVITY_FAILURE_TYPE
TIMEOUT_ERROR_TYPE = TIMEOUT_FAILURE_TYPE
CANCELED_ERROR_TYPE = CANCELED_FAILURE_TYPE

#: What servers of earlier releases named the failures they wrote themselves
#: (a canceled or timed-out run, an activity timeout); still stored in rows
#: and histories, so still read.
LEGACY_CANCELED_TYPE = "Canceled"
LEGACY_TIMEOUT_TYPE = "Timeout"

#: The timeouts Baton itself times out on (``TimeoutError_.timeout_type``).
TIMEOUT_TYPES = frozenset(
    {"run", "execution", "start_to_close", "schedule_to_start", "schedule_to_close", "heartbeat"}
)

# Cause chains longer than this are cut: a failure must stay small on the wire.
_MAX_CAUSE_DEPTH = 20

#: What ``message`` says while the real one travels in ``encoded_attributes``.
ENCODED_FAILURE_MESSAGE = "Encoded failure"

# Keys under which wire JSON (bodies, commands, events, error details) holds a failure.
_FAILURE_KEYS = frozenset({"failure", "last_failure"})


def exception_to_failure(exc: BaseException, converter: PayloadConverter) -> Failure:
    """The wire failure for an exception and its ``__cause__`` chain.

    ``ApplicationError`` keeps its type, flag and details; ``ActivityError``,
    ``TimeoutError_`` and ``CanceledError`` get their fixed type names; any
    other exception is named after its class and stays retryable.
    """
    return _to_failure(exc, converter, 0)


def _message_of(exc: BaseException) -> str:
    """``exc``'s message as text: a failure that cannot be reported (a message
    that is no string, a ``__str__`` that raises) would leave its activity
    attempt unreported until its timeout, or fail every workflow task alike."""
    try:
        # A BatonError's str() leads with its code: the failure keeps the text alone.
        message = exc.message if isinstance(exc, FailureError | BatonError) else str(exc)
        return message if isinstance(message, str) else str(message)
    except Exception:
        return f"<{type(exc).__name__}: its message could not be read>"


def _to_failure(exc: BaseException, converter: PayloadConverter, depth: int) -> Failure:
    details: list[Payload] = []
    non_retryable = False
    timeout_type = None
    activity = None
    next_delay = None
    heartbeat: list[Payload] | None = None
    if isinstance(exc, ApplicationError):
        # (as text whatever the code passed: a report that raised went unsent)
        type_name = exc.type if isinstance(exc.type, str) else str(exc.type)
        non_retryable = bool(exc.non_retryable)
        details = _encode_details(exc.details, converter)
        next_delay = _delay_seconds(exc.next_retry_delay)
    elif isinstance(exc, ActivityError):
        type_name = ACTIVITY_ERROR_TYPE
        activity = ActivityFailureInfo(
            activity_type=exc.activity_type,
            activity_id=exc.activity_id,
            retry_state=exc.retry_state,
        )
    elif isinstance(exc, TimeoutError_):
        type_name = TIMEOUT_ERROR_TYPE
        timeout_type = exc.timeout_type
        # also as the first detail, where SDKs of earlier releases read it
        details = _encode_details((exc.timeout_type,), converter)
        # kept as the workflow fails with it, so its client can resume from them
        if exc.last_heartbeat_details:
            heartbeat = _encode_details(tuple(exc.last_heartbeat_details), converter)
    elif isinstance(exc, CanceledError):
        type_name = CANCELED_ERROR_TYPE
        details = _encode_details(tuple(exc.details), converter)
    else:
        type_name = type(exc).__name__
    message = _message_of(exc)
    cause = exc.__cause__
    return Failure(
        message=message,
        type=type_name,
        stack_trace="".join(traceback.format_tb(exc.__traceback__)),
        non_retryable=non_retryable,
        details=details,
        cause=(
            _to_failure(cause, converter, depth + 1)
            if cause is not None and depth < _MAX_CAUSE_DEPTH
            else None
        ),
        timeout_type=timeout_type,
        last_heartbeat_details=heartbeat,
        activity=activity,
        next_retry_delay_s=next_delay,
    )


def _delay_seconds(delay: object) -> float | None:
    """An ``ApplicationError``'s ``next_retry_delay`` in seconds (its constructor
    checked it; one set on the object later that is no such duration is left out,
    so the attempt's failure is still reported)."""
    if not isinstance(delay, timedelta) or not 0 <= delay.total_seconds() <= MAX_DURATION_S:
        return None
    return delay.total_seconds()


def _encode_details(values: tuple[Any, ...], converter: PayloadConverter) -> list[Payload]:
    try:
        return converter.to_payloads(values)
    except Exception as exc:
        # Losing the details is better than losing the failure itself.
        return converter.to_payloads([f"<details not serialisable: {exc}>"])


def failure_to_exception(failure: Failure, converter: PayloadConverter) -> FailureError:
    """Rebuild the exception (with its ``__cause__`` chain) a wire failure describes."""
    exc: FailureError
    if failure.type == ACTIVITY_ERROR_TYPE:
        info = failure.activity or ActivityFailureInfo()
        exc = ActivityError(
            failure.message,
            activity_type=info.activity_type,
            activity_id=info.activity_id,
            retry_state=info.retry_state,
            failure=failure,
        )
    elif (timeout_type := _timeout_type(failure, converter)) is not None:
        exc = TimeoutError_(
            failure.message,
            timeout_type=timeout_type,
            failure=failure,
            last_heartbeat_details=last_heartbeat_details(failure, converter),
        )
    elif failure.type == CANCELED_ERROR_TYPE:
        exc = CanceledError(failure.message, *_decode_details(failure, converter), failure=failure)
    else:
        exc = ApplicationError(
            failure.message,
            *_decode_details(failure, converter),
            type=failure.type,
            non_retryable=failure.non_retryable,
            next_retry_delay=(
                None
                if failure.next_retry_delay_s is None
                else timedelta(seconds=failure.next_retry_delay_s)
            ),
            failure=failure,
        )
    if failure.cause is not None:
        exc.__cause__ = failure_to_exception(failure.cause, converter)
    return exc


def _timeout_type(failure: Failure, converter: PayloadConverter) -> str | None:
    """Which of Baton's timeouts ``failure`` is, or None when it is none of them.

    The type name alone does not tell: code (an activity's ``asyncio.timeout()``)
    raises Python's own ``TimeoutError``, which crosses as an application
    failure of that name, with no timeout type.
    """
    if failure.type == LEGACY_TIMEOUT_TYPE:
        return failure.timeout_type or None  # a server's own, as earlier releases named it
    if failure.type != TIMEOUT_ERROR_TYPE:
        return None
    if failure.timeout_type:
        return failure.timeout_type
    # written by an SDK of an earlier release: the timeout type as the first detail
    details = _decode_details(failure, converter) if failure.details else []
    if details and isinstance(details[0], str) and details[0] in TIMEOUT_TYPES:
        return details[0]
    return None


def close_failure_to_exception(
    status: str, failure: Failure, converter: PayloadConverter
) -> FailureError:
    """The exception of a closed run's failure: :func:`failure_to_exception`,
    reading a canceled or timed-out run's failure as servers of earlier
    releases wrote it (``Canceled``, ``Timeout``) as :class:`CanceledError` and
    :class:`TimeoutError_`, and a terminated run's as :class:`TerminatedError`.

    The status tells them apart from an ``ApplicationError`` of the same type
    name: a run fails with those as ``failed``, never as ``canceled`` or ``timed_out``.
    """
    if status == "terminated":
        # ended from outside (an operator, a reset, a limit), not by the code's failure
        return TerminatedError(
            failure.message, *_decode_details(failure, converter), failure=failure
        )
    if status == "canceled" and failure.type == LEGACY_CANCELED_TYPE:
        failure = failure.model_copy(update={"type": CANCELED_ERROR_TYPE})
    elif status == "timed_out" and failure.type in (LEGACY_TIMEOUT_TYPE, TIMEOUT_ERROR_TYPE):
        failure = failure.model_copy(
            update={"type": TIMEOUT_ERROR_TYPE, "timeout_type": failure.timeout_type or "run"}
        )
    return failure_to_exception(failure, converter)


def last_heartbeat_details(failure: Failure | None, converter: PayloadConverter) -> list[Any]:
    """The decoded details of the last heartbeat an activity's timeout carries."""
    if failure is None or not failure.last_heartbeat_details:
        return []
    try:
        return converter.from_payloads(failure.last_heartbeat_details)
    except Exception:
        return []  # unreadable here (a rotated key): kept raw on ``exc.failure``


def _decode_details(failure: Failure, converter: PayloadConverter) -> list[Any]:
    try:
        return converter.from_payloads(failure.details)
    except Exception:
        # Details a codec or converter cannot read are kept raw on
        # ``exc.failure``; the failure itself must still surface.
        return []


# --------------------------------------------------------------------------- codec-time text


def failures_in(obj: Any) -> list[dict[str, Any]]:
    """Every wire failure (as a JSON object) held under a failure key inside ``obj``.

    Causes are not listed: they belong to the failure that holds them. A
    plain recursive walk (no generators): it runs over whole histories.
    """
    found: list[dict[str, Any]] = []
    _gather_failures(obj, found)
    return found


def _gather_failures(obj: Any, found: list[dict[str, Any]]) -> None:
    if isinstance(obj, dict):
        if len(obj) == 2 and "data" in obj and "metadata" in obj:
            return  # a payload: opaque, it holds no failure
        for key, value in obj.items():
            if key in _FAILURE_KEYS and _is_failure(value):
                found.append(value)
            elif isinstance(value, dict | list):
                _gather_failures(value, found)
    elif isinstance(obj, list):
        for value in obj:
            if isinstance(value, dict | list):
                _gather_failures(value, found)


def _is_failure(obj: Any) -> bool:
    return isinstance(obj, dict) and isinstance(obj.get("message"), str)


def failure_chain(failure: dict[str, Any]) -> Iterator[dict[str, Any]]:
    current: Any = failure
    for _ in range(_MAX_CAUSE_DEPTH + 1):
        if not _is_failure(current):
            return
        yield current
        current = current.get("cause")


def hide_common_attributes(failure: dict[str, Any], converter: PayloadConverter) -> None:
    """Move message and stack trace of ``failure`` and its causes into ``encoded_attributes``.

    In place. The payload is plain JSON here: the codec encodes it later,
    with the other payloads of the same body, so it is encoded exactly once.
    A failure already hidden is left as it is.
    """
    for f in failure_chain(failure):
        if f.get("encoded_attributes") is not None:
            continue
        attrs = {"message": f.get("message", ""), "stack_trace": f.get("stack_trace") or ""}
        f["encoded_attributes"] = converter.to_payload(attrs).model_dump()
        f["message"] = ENCODED_FAILURE_MESSAGE
        f["stack_trace"] = ""


def restore_common_attributes(failure: dict[str, Any], converter: PayloadConverter) -> None:
    """Put message and stack trace back from ``encoded_attributes``, in place.

    Run after the codec decoded the payloads. A payload this side cannot read
    (no codec, or not its key) is left encoded: the failure still surfaces,
    saying ``Encoded failure``.
    """
    for f in failure_chain(failure):
        raw = f.get("encoded_attributes")
        if not isinstance(raw, dict):
            continue
        try:
            attrs = converter.from_payload(Payload.model_validate(raw))
        except Exception:
            continue
        if not isinstance(attrs, dict):
            continue
        f["message"] = str(attrs.get("message", ""))
        f["stack_trace"] = str(attrs.get("stack_trace", ""))
        f["encoded_attributes"] = None
