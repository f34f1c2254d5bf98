"""A start's options (and a call's timeouts) checked before they are sent.

A value the server would refuse (or that the SDK cannot even put into the
request) is an :class:`~worker.errors.InvalidArgumentError` naming the option
and its choices, as the server's own ``INVALID_ARGUMENT`` would be, not a
bare ``ValueError``.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from typing import Any, overload

from worker._definition import check_behavior, workflow_definition
from worker.common import RetryPolicy
from worker.converter import DataConverter, input_mismatch
from worker.errors import InvalidArgumentError
from worker.wire import WorkflowIdConflictPolicy, WorkflowIdReusePolicy


def reuse_policy(value: Any) -> str:
    """``id_reuse_policy`` as the wire carries it, from the enum, its value or its name."""
    return _policy(value, WorkflowIdReusePolicy, "id_reuse_policy")


def conflict_policy(value: Any) -> str:
    """``id_conflict_policy`` as the wire carries it, from the enum, its value or its name."""
    return _policy(value, WorkflowIdConflictPolicy, "id_conflict_policy")


def _policy(
    value: Any, kind: type[WorkflowIdReusePolicy] | type[WorkflowIdConflictPolicy], what: str
) -> str:
    normal = str(getattr(value, "value", value)).strip().lower().replace("-", "_")
    try:
        return kind(normal).value
    except ValueError:
        choices = ", ".join(p.value for p in kind)
        raise InvalidArgumentError(
            f"{what} {value!r} is not one of {choices}: pass a worker.{kind.__name__}"
        ) from None


def start_input(
    workflow: str | type | Callable[..., Any], args: Sequence[Any], converter: DataConverter
) -> Sequence[Any]:
    """``args`` of a start that names the workflow by its class or run method,
    refused when its run method could never take them: a wrong count, or a
    value plainly not of its annotated kind once sent (a ``"1"`` for an ``int``).
    Such a run would be stored and fail its workflow task on every retry.
    """
    if isinstance(workflow, str):
        return args  # the worker's code decides
    defn = workflow_definition(workflow)
    try:
        inspect.signature(defn.run_fn).bind(None, *args)
    except TypeError as exc:
        raise InvalidArgumentError(
            f"workflow {defn.name} cannot take {len(args)} argument(s): {exc}; "
            "pass its run method's arguments"
        ) from None
    except ValueError:
        return args  # no signature to read
    pc = converter.payload_converter
    try:
        values = pc.from_payloads(pc.to_payloads(list(args)), defn.arg_types)
    except (TypeError, ValueError):
        return args  # the worker's converter decides, as it would by name
    if (problem := input_mismatch(values, defn.arg_types)) is not None:
        raise InvalidArgumentError(
            f"workflow {defn.name} input: {problem}; pass values of the run method's types"
        )
    return args


def checked_behavior(value: str | None) -> str | None:
    """``versioning_behavior`` as the wire carries it (None: the workflow type's)."""
    try:
        return check_behavior(value, "versioning_behavior")
    except ValueError as exc:
        raise InvalidArgumentError(str(exc)) from None


@overload
def seconds(value: timedelta | float) -> float: ...
@overload
def seconds(value: timedelta | float | None) -> float | None: ...
def seconds(value: timedelta | float | None) -> float | None:
    """A duration given as a ``timedelta`` or a number of seconds, in seconds."""
    if value is None:
        return None
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


def option_seconds(value: Any, what: str) -> float | None:
    """A start's timeout in seconds (None: none); what is neither a duration
    nor a number (a ``"5m"``) is an :class:`InvalidArgumentError` naming it."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, timedelta | int | float):
        raise InvalidArgumentError(
            f"{what} must be a timedelta or a number of seconds, not {value!r}"
        )
    return seconds(value)


def checked_mapping(value: Any, what: str) -> Mapping[str, Any]:
    """``value`` if it is a mapping with string keys (None: an empty one)."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InvalidArgumentError(
            f"{what} must be a mapping of names to values (a dict), not {type(value).__name__}"
        )
    for key in value:
        if not isinstance(key, str) or not key:
            raise InvalidArgumentError(
                f"{what} has key {key!r}: its keys must be non-empty strings"
            )
    return value


def checked_args(value: Any, what: str) -> list[Any]:
    """``value`` as a list of arguments; a lone string (sent letter by letter) is refused."""
    if isinstance(value, str | bytes) or not isinstance(value, Sequence):
        raise InvalidArgumentError(
            f"{what} must be a list or tuple of arguments, not {type(value).__name__}: "
            f"write [{value!r}] for one argument"
        )
    return list(value)


def wait_limit(timeout: timedelta | float) -> float:
    """``WorkflowHandle.result``'s ``timeout`` in seconds: NaN would poll without end, a
    negative or infinite one is a mistake (None waits without a limit)."""
    try:
        limit = seconds(timeout)
    except (TypeError, ValueError):
        limit = None
    if isinstance(timeout, bool) or limit is None or not 0 <= limit < math.inf:
        raise InvalidArgumentError(
            f"timeout must be a finite duration of zero or more seconds, got {timeout!r}: "
            "pass None to wait without a limit"
        )
    return limit


def checked_duration(
    value: Any, what: str, *, above_zero: bool = False, most: float = math.inf
) -> float:
    """A Worker option's duration in seconds (ValueError, as the Worker's other
    options, when out of range): sent out of the server's range, it failed
    every workflow task's completion."""
    try:
        limit = float(seconds(value))
    except (TypeError, ValueError):
        limit = math.nan  # refused below, as NaN compares false
    low_ok = limit > 0 if above_zero else limit >= 0
    if isinstance(value, bool) or not (low_ok and limit <= most and math.isfinite(limit)):
        low = "above 0" if above_zero else "of 0 or more"
        high = f" and at most {most:g}" if math.isfinite(most) else ""
        raise ValueError(f"{what} must be a number of seconds {low}{high}, not {value!r}")
    return limit


#: The longest identity a server takes (``worker.wire``: every request's and poll's).
IDENTITY_MAX_CHARS = 1000


def worker_identity(identity: Any, client_identity: str, suffix: str) -> str:
    """A Worker's identity: the one given, else the client's (cut to fit) and
    ``suffix``. One the server refuses is a ValueError, as the Worker's other
    options: every poll would be refused, and the worker would poll on for ever."""
    if not identity:
        return f"{client_identity[: IDENTITY_MAX_CHARS - len(suffix)]}{suffix}"
    if not isinstance(identity, str) or len(identity) > IDENTITY_MAX_CHARS:
        raise ValueError(
            f"identity must be a string of at most {IDENTITY_MAX_CHARS} characters, "
            f"not {identity!r:.80}"
        )
    return identity


def workflow_retry_policy(policy: Any) -> dict[str, Any]:
    """A start's ``retry_policy`` as the wire carries it."""
    if not isinstance(policy, RetryPolicy):
        raise InvalidArgumentError(
            f"retry_policy must be a worker.RetryPolicy, not {type(policy).__name__}"
        )
    if policy.on_max_attempts != "fail":
        raise InvalidArgumentError(
            "retry_policy.on_max_attempts: a workflow whose attempts ran out fails; "
            "pause applies to activities"
        )
    return policy.to_wire().model_dump(exclude_none=True)


def checked_cron(value: Any) -> str | None:
    """A start's ``cron_schedule`` as the wire carries it (None: none; the
    server checks the schedule itself)."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidArgumentError(
            f"cron_schedule must be a cron string such as '*/5 * * * *', not {value!r}"
        )
    return value.strip() or None
