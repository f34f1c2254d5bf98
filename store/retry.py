"""Retry arithmetic for activities and workflow tasks: pure, no database."""

from __future__ import annotations

import math
from typing import Any

from worker.wire import RETRY_MAX_ATTEMPTS, RETRY_MAX_BACKOFF_COEFFICIENT, RETRY_MAX_INTERVAL_S

#: Longest retry interval a policy may name (ten years).
MAX_INTERVAL_S = RETRY_MAX_INTERVAL_S

DEFAULT_RETRY_POLICY: dict[str, Any] = {
    "initial_interval_s": 1.0,
    "backoff_coefficient": 2.0,
    "maximum_interval_s": None,
    "maximum_attempts": 0,
    "non_retryable_error_types": [],
}


def _number(p: dict[str, Any], key: str, *, integer: bool = False) -> float:
    value = p[key]
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    if ok and integer:
        ok = float(value).is_integer()
    if not ok or not math.isfinite(float(value)):
        kind = "a whole number" if integer else "a finite number"
        raise ValueError(f"retry_policy.{key} must be {kind}, got {value!r}")
    return float(value)


def normalize_policy(policy: dict[str, Any] | None) -> dict[str, Any]:
    """Fill in defaults and check a wire retry policy; raises ValueError when invalid.

    Policies arrive as free JSON inside commands, so every field is checked for
    its type as well as its range, and the message names the field.
    """
    p = dict(DEFAULT_RETRY_POLICY)
    p.update(
        {k: v for k, v in (policy or {}).items() if v is not None or k == "maximum_interval_s"}
    )
    if not 0 < _number(p, "initial_interval_s") <= MAX_INTERVAL_S:
        raise ValueError(f"retry_policy.initial_interval_s must be > 0 and <= {MAX_INTERVAL_S:.0f}")
    if _number(p, "backoff_coefficient") > RETRY_MAX_BACKOFF_COEFFICIENT:
        raise ValueError(
            f"retry_policy.backoff_coefficient must be <= {RETRY_MAX_BACKOFF_COEFFICIENT:g}"
        )
    if p["maximum_interval_s"] is not None and _number(p, "maximum_interval_s") > MAX_INTERVAL_S:
        raise ValueError(f"retry_policy.maximum_interval_s must be <= {MAX_INTERVAL_S:.0f}")
    if _number(p, "maximum_attempts", integer=True) > RETRY_MAX_ATTEMPTS:
        raise ValueError("retry_policy.maximum_attempts must be < 2**31")
    if _number(p, "backoff_coefficient") < 1:
        raise ValueError("retry_policy.backoff_coefficient must be >= 1")
    if p["maximum_interval_s"] is not None and _number(p, "maximum_interval_s") < float(
        p["initial_interval_s"]
    ):
        raise ValueError("retry_policy.maximum_interval_s must be >= initial_interval_s")
    if _number(p, "maximum_attempts", integer=True) < 0:
        raise ValueError("retry_policy.maximum_attempts must be >= 0 (0 means unlimited)")
    p["maximum_attempts"] = int(p["maximum_attempts"])
    types = p["non_retryable_error_types"]
    if not isinstance(types, list) or not all(isinstance(t, str) and len(t) <= 1000 for t in types):
        raise ValueError(
            f"retry_policy.non_retryable_error_types must be a list of strings, got {types!r}"
        )
    p["non_retryable_error_types"] = list(types)  # never share the defaults' list
    on_max = p.pop("on_max_attempts", "fail")
    if on_max not in ("fail", "pause"):
        raise ValueError("retry_policy.on_max_attempts must be 'fail' or 'pause'")
    if on_max == "pause":
        p["on_max_attempts"] = "pause"  # stored only when it is not the default
    return p


def _backoff(initial: float, coefficient: float, attempt: int, cap: float) -> float:
    """``min(initial * coefficient ** (attempt - 1), cap)`` without float overflow."""
    if coefficient <= 1:
        return float(min(initial, cap))
    # Past this exponent the uncapped delay is above the cap anyway.
    if attempt - 1 >= math.log(max(cap / initial, 1.0)) / math.log(coefficient) + 1:
        return float(cap)
    return float(min(initial * coefficient ** (attempt - 1), cap))


#: Why an activity was not retried (Temporal's RetryState, in lower case):
#: its failure was non-retryable, its attempts ran out, its time did, or the
#: workflow had asked to cancel it.
RETRY_NON_RETRYABLE = "non_retryable_failure"
RETRY_MAXIMUM_ATTEMPTS = "maximum_attempts_reached"
RETRY_TIMEOUT = "timeout"
RETRY_CANCEL_REQUESTED = "cancel_requested"


def next_retry_delay(
    policy: dict[str, Any],
    *,
    attempt: int,
    error_type: str | None,
    non_retryable: bool,
    seconds_left: float | None = None,
) -> float | None:
    """Seconds to wait before attempt ``attempt + 1``, or None when not to retry.

    Args:
        policy: A normalised wire retry policy.
        attempt: The attempt that just failed (1 for the first).
        error_type: The failure's type name, matched against the non-retryable list.
        non_retryable: The failure itself asked not to be retried.
        seconds_left: Time left before the schedule-to-close deadline, if any.
    """
    return retry_decision(
        policy,
        attempt=attempt,
        error_type=error_type,
        non_retryable=non_retryable,
        seconds_left=seconds_left,
    )[0]


def retry_decision(
    policy: dict[str, Any],
    *,
    attempt: int,
    error_type: str | None,
    non_retryable: bool,
    seconds_left: float | None = None,
    requested_delay: float | None = None,
) -> tuple[float | None, str]:
    """:func:`next_retry_delay` and, when that is None, why (a ``RETRY_*`` name; else "").

    ``requested_delay`` (the failure's ``next_retry_delay_s``) takes the place of
    the policy's backoff, as Temporal's ``next_retry_delay`` does.
    """
    if non_retryable:
        return None, RETRY_NON_RETRYABLE
    if error_type and error_type in set(policy.get("non_retryable_error_types") or ()):
        return None, RETRY_NON_RETRYABLE
    max_attempts = int(policy.get("maximum_attempts") or 0)
    if max_attempts and attempt >= max_attempts:
        return None, RETRY_MAXIMUM_ATTEMPTS
    initial = float(policy["initial_interval_s"])
    coefficient = float(policy["backoff_coefficient"])
    maximum = policy.get("maximum_interval_s")
    cap = float(maximum) if maximum is not None else initial * 100
    delay = _backoff(initial, coefficient, attempt, cap)
    if requested_delay is not None:
        delay = requested_delay
    if seconds_left is not None and delay >= seconds_left:
        return None, RETRY_TIMEOUT
    return delay, ""


def workflow_task_retry_delay(attempt: int, maximum_s: float) -> float:
    """Pause before workflow task attempt ``attempt`` (2 is the first retry).

    The first retry is immediate (a worker restart or a flake); after that the
    pause doubles up to ``maximum_s``, so a bug costs little while someone fixes it.
    """
    if attempt <= 2:
        return 0.0
    return _backoff(1.0, 2.0, attempt - 2, maximum_s)
