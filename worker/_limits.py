"""Outcomes over the server's payload limit: reported as failures, not retried.

A server refuses a request holding a payload over its ``max_payload_bytes``
with ``PAYLOAD_TOO_LARGE`` and records nothing. An outcome of user code (a
workflow's or an activity's result or failure, an update's result, a query's
answer) is the same on every retry, so reporting it again could never succeed: the
worker reports, in its place, a non-retryable failure of type
``PayloadTooLarge`` that says the size and the limit. The run fails, the
activity fails without further attempts, the update fails, the query fails;
the workflow's other work goes on.

A command that starts work (an activity's input, continue-as-new's input or
memo, a marker's details) over the limit, or a completion over the server's
body limit, would be refused on every retry too: the worker fails the run
with a ``PayloadTooLarge`` failure naming the command, its size and the limit
(or, with ``pause_after_failed_workflow_tasks``, fails the task and pauses the
run at once). The task's other commands are dropped with it, so nothing of
that task is recorded but the failure; replay takes the failure for them.

Sizes are measured as the server measures them: the bytes of a payload's
data after the codec, and the characters of a failure's message and stack
trace.
"""

from __future__ import annotations

from typing import Any

from worker.errors import ApplicationError, PayloadTooLargeError
from worker.wire import CommandType, Failure

#: The failure type of an outcome over the limit (stable: replay matches on it).
PAYLOAD_TOO_LARGE_TYPE = "PayloadTooLarge"

#: Commands that close the run with an outcome: over the limit, the run fails.
_CLOSE_OUTCOMES = frozenset(
    {CommandType.COMPLETE_WORKFLOW, CommandType.FAIL_WORKFLOW, CommandType.CANCEL_WORKFLOW}
)


def limit_from(exc: PayloadTooLargeError, cluster: dict[str, Any] | None) -> int | None:
    """The payload limit: the server's ``max_payload_bytes`` if known, else the refusal's.

    A body refused whole names the body's limit, not the payload's, so the
    cluster info is preferred.
    """
    for raw in ((cluster or {}).get("max_payload_bytes"), exc.details.get("limit")):
        if isinstance(raw, int) and not isinstance(raw, bool) and raw > 0:
            return raw
    return None


def largest_over(obj: Any, limit: int) -> int | None:
    """The size of the largest payload or failure text in wire JSON ``obj`` over
    ``limit``, or None if all fit."""
    found = 0
    stack = [obj]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            data = item.get("data")
            if isinstance(data, str) and "metadata" in item and len(item) == 2:
                found = max(found, len(data) * 3 // 4 - (len(data) - len(data.rstrip("="))))
                continue
            message = item.get("message")
            if isinstance(message, str) and "type" in item:
                found = max(found, len(message) + len(str(item.get("stack_trace") or "")))
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return found if found > limit else None


def too_large(what: str, size: int, limit: int) -> ApplicationError:
    """The failure reported in place of ``what`` (an outcome of ``size`` bytes)."""
    return ApplicationError(
        f"{what} is {size} bytes, over the server's payload limit of {limit} bytes "
        "(max_payload_bytes): return a reference to data stored elsewhere; "
        "the same code would give the same result again, so it is not retried",
        type=PAYLOAD_TOO_LARGE_TYPE,
        non_retryable=True,
    )


def heartbeat_too_large(refusal: str, size: int | None, limit: int | None) -> ApplicationError:
    """The failure of an activity whose heartbeat details the server refused as
    too large (``refusal``, its message): ``size`` bytes, over ``limit``, if known."""
    said = (
        refusal
        if size is None or limit is None
        else (
            f"they are {size} bytes, over the server's payload limit of {limit} bytes "
            "(max_payload_bytes)"
        )
    )
    return ApplicationError(
        f"the activity's heartbeat details were refused: {said}; heartbeat a reference to "
        "data stored elsewhere; every attempt would send them again, so it is not retried",
        type=PAYLOAD_TOO_LARGE_TYPE,
        non_retryable=True,
    )


def outcome_over(command: dict[str, Any], limit: int) -> tuple[str, int] | None:
    """What outcome of a workflow task's ``command`` (wire JSON) is over ``limit``,
    and its size; None if it fits or the command carries no outcome.

    A command that starts work (an activity's input, continue-as-new's) is
    not an outcome: refused, it fails the workflow task as any bad command
    does.
    """
    kind = command.get("type")
    attrs = command.get("attributes") or {}
    if kind == CommandType.COMPLETE_UPDATE:
        what = f"the {'result' if attrs.get('result') is not None else 'failure'} of update "
        what += repr(attrs.get("update_id"))
    elif kind == CommandType.REJECT_UPDATE:
        what = f"the rejection of update {attrs.get('update_id')!r}"
    elif kind in _CLOSE_OUTCOMES:
        closing = "result" if kind == CommandType.COMPLETE_WORKFLOW else "outcome"
        what = f"the workflow's {closing}"
    else:
        return None
    size = largest_over(attrs, limit)
    return None if size is None else (what, size)


def _command_what(command: dict[str, Any]) -> str:
    """What a command that starts work carries, in words: ``the input of activity 'x'``."""
    kind = command.get("type")
    attrs = command.get("attributes") or {}
    if kind == CommandType.SCHEDULE_ACTIVITY:
        return (
            f"the input of activity {attrs.get('activity_type')!r} "
            f"(activity id {attrs.get('activity_id')!r})"
        )
    if kind == CommandType.CONTINUE_AS_NEW:
        return "the input or memo of continue-as-new"
    if kind == CommandType.RECORD_MARKER:
        return f"the details of marker {attrs.get('marker_name')!r}"
    if kind == CommandType.UPSERT_SEARCH_ATTRIBUTES:
        return "the search attributes upserted"
    if kind == CommandType.MODIFY_WORKFLOW_PROPERTIES:
        return "the memo upserted"
    return f"a payload of command {kind}"


def command_over(commands: list[dict[str, Any]], limit: int) -> tuple[str, int] | None:
    """The first of ``commands`` (wire JSON, encoded) with a payload over ``limit``,
    in words, and that payload's size; None if all fit."""
    for command in commands:
        size = largest_over(command.get("attributes") or {}, limit)
        if size is not None:
            return _command_what(command), size
    return None


def commands_too_large(what: str, size: int, limit: int) -> ApplicationError:
    """The failure that ends a run whose workflow task issued ``what`` over ``limit``."""
    return ApplicationError(
        f"{what} is {size} bytes, over the server's payload limit of {limit} bytes "
        "(max_payload_bytes): the workflow task's commands were refused and would be "
        "again on every retry, so the run fails; pass a reference to data stored elsewhere",
        type=PAYLOAD_TOO_LARGE_TYPE,
        non_retryable=True,
    )


def body_too_large(count: int, size: int, limit: int) -> ApplicationError:
    """The failure that ends a run whose task's ``count`` commands are together over
    the server's body ``limit`` (each payload fitting its own)."""
    return ApplicationError(
        f"the workflow task's {count} commands are {size} bytes together, over the "
        f"server's request body limit of {limit} bytes: the completion was refused and would "
        "be again on every retry, so the run fails; issue fewer commands with big "
        "payloads per workflow task, or pass references to data stored elsewhere",
        type=PAYLOAD_TOO_LARGE_TYPE,
        non_retryable=True,
    )


def cut_failure(failure: Failure, limit: int) -> Failure:
    """``failure`` cut to fit a request under a payload ``limit``: its message's
    start, its stack trace's end (where the error was raised), no details or cause.

    A workflow task's failure over the server's body limit was refused, so the
    task timed out instead, for ever, and its failure was never seen (nor
    counted towards a pause); as Temporal's server does, it goes cut.
    """
    keep = max(limit // 8, 1024)
    message = failure.message
    if len(message) > keep:
        message = (
            f"{message[:keep]}… (cut from {len(failure.message)} characters: the whole "
            f"failure is over the server's limit of {limit} bytes)"
        )
    return Failure(
        message=message,
        type=failure.type,
        stack_trace=failure.stack_trace[-keep:],
        non_retryable=failure.non_retryable,
    )


def failed_for_size(failure: Any) -> bool:
    """Whether a recorded failure (wire JSON) is one this module reported."""
    return isinstance(failure, dict) and failure.get("type") == PAYLOAD_TOO_LARGE_TYPE
