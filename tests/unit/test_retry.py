"""Retry arithmetic for activities and workflow tasks (store/retry.py)."""

from __future__ import annotations

from typing import Any

import pytest

from store.retry import (
    DEFAULT_RETRY_POLICY,
    next_retry_delay,
    normalize_policy,
    workflow_task_retry_delay,
)


def policy(**overrides: Any) -> dict[str, Any]:
    return normalize_policy(overrides)


def delay(p: dict[str, Any], attempt: int, **kwargs: Any) -> float | None:
    kwargs.setdefault("error_type", "SomeError")
    kwargs.setdefault("non_retryable", False)
    return next_retry_delay(p, attempt=attempt, **kwargs)


# --------------------------------------------------------------------------- normalize_policy


@pytest.mark.parametrize("given", [None, {}])
def test_normalize_fills_every_default(given: dict[str, Any] | None) -> None:
    assert normalize_policy(given) == {
        "initial_interval_s": 1.0,
        "backoff_coefficient": 2.0,
        "maximum_interval_s": None,
        "maximum_attempts": 0,
        "non_retryable_error_types": [],
    }


def test_normalize_keeps_given_values_and_defaults_the_rest() -> None:
    p = normalize_policy({"initial_interval_s": 0.5, "maximum_attempts": 3})
    assert p["initial_interval_s"] == 0.5
    assert p["maximum_attempts"] == 3
    assert p["backoff_coefficient"] == 2.0
    assert p["maximum_interval_s"] is None


def test_normalize_treats_explicit_none_as_default() -> None:
    # The SDK sends every field of RetryPolicyWire; None means "use the default".
    p = normalize_policy(
        {
            "initial_interval_s": None,
            "backoff_coefficient": None,
            "maximum_attempts": None,
            "non_retryable_error_types": None,
            "maximum_interval_s": None,
        }
    )
    assert p == DEFAULT_RETRY_POLICY


def test_normalize_does_not_modify_its_argument() -> None:
    given = {"initial_interval_s": 2.0}
    normalize_policy(given)
    assert given == {"initial_interval_s": 2.0}


def test_normalize_accepts_boundary_values() -> None:
    p = normalize_policy(
        {
            "initial_interval_s": 0.001,
            "backoff_coefficient": 1.0,
            "maximum_interval_s": 0.001,
            "maximum_attempts": 0,
        }
    )
    assert p["backoff_coefficient"] == 1.0
    assert p["maximum_interval_s"] == 0.001


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("initial_interval_s", 0),
        ("initial_interval_s", -1.0),
        ("backoff_coefficient", 0.99),
        ("backoff_coefficient", 0),
        ("maximum_interval_s", 0.5),  # below the default initial interval of 1s
        ("maximum_attempts", -1),
    ],
)
def test_normalize_rejects_out_of_range_values_naming_the_field(field: str, value: Any) -> None:
    with pytest.raises(ValueError, match=rf"retry_policy\.{field}"):
        normalize_policy({field: value})


def test_normalize_compares_maximum_with_the_given_initial_interval() -> None:
    with pytest.raises(ValueError, match=r"retry_policy\.maximum_interval_s"):
        normalize_policy({"initial_interval_s": 10, "maximum_interval_s": 5})
    assert (
        normalize_policy({"initial_interval_s": 10, "maximum_interval_s": 10})["maximum_interval_s"]
        == 10
    )


@pytest.mark.parametrize(
    ("field", "value"),
    [
        # Policies arrive as free JSON inside a ScheduleActivityTask command; the
        # caller turns only ValueError into INVALID_ARGUMENT, so a wrong type must
        # not escape as TypeError (an HTTP 500) or as a message without the field.
        ("initial_interval_s", "soon"),
        ("initial_interval_s", [1]),
        ("backoff_coefficient", {"x": 2}),
        ("maximum_attempts", "three"),
        ("initial_interval_s", float("nan")),
        ("backoff_coefficient", float("nan")),
        ("non_retryable_error_types", "MyError"),  # a string, not a list of type names
    ],
)
def test_normalize_rejects_malformed_values_naming_the_field(field: str, value: Any) -> None:
    with pytest.raises(ValueError, match=rf"retry_policy\.{field}"):
        normalize_policy({field: value})


def test_normalize_result_does_not_share_the_default_list() -> None:
    p = normalize_policy(None)
    p["non_retryable_error_types"].append("Leaked")
    assert normalize_policy(None)["non_retryable_error_types"] == []
    assert DEFAULT_RETRY_POLICY["non_retryable_error_types"] == []


# --------------------------------------------------------------------------- next_retry_delay


def test_backoff_is_exponential_from_the_initial_interval() -> None:
    p = policy()
    assert [delay(p, a) for a in range(1, 7)] == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0]


def test_backoff_uses_the_coefficient_and_initial_interval() -> None:
    p = policy(initial_interval_s=0.5, backoff_coefficient=3.0)
    assert [delay(p, a) for a in range(1, 5)] == [0.5, 1.5, 4.5, 13.5]


def test_coefficient_one_gives_a_constant_delay() -> None:
    p = policy(initial_interval_s=2.0, backoff_coefficient=1.0)
    assert {delay(p, a) for a in range(1, 20)} == {2.0}


def test_backoff_is_capped_at_maximum_interval() -> None:
    p = policy(maximum_interval_s=10.0)
    assert [delay(p, a) for a in range(1, 8)] == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0, 10.0]


def test_default_cap_is_100_times_the_initial_interval() -> None:
    p = policy(initial_interval_s=0.5)
    assert delay(p, 7) == 0.5 * 2**6  # 32s, below the cap
    assert delay(p, 8) == 50.0  # 64s capped at 100 x 0.5s
    assert delay(p, 30) == 50.0


def test_delay_stays_at_the_cap_after_very_many_attempts() -> None:
    # maximum_attempts=0 (the default) retries forever at the 100s cap, so an
    # activity failing for ~30 hours reaches attempt 1025, where 2.0 ** 1024
    # overflows a float.
    p = policy()
    assert delay(p, 1024) == 100.0
    assert delay(p, 1025) == 100.0
    assert delay(p, 5000) == 100.0


@pytest.mark.parametrize(("max_attempts", "last_retried"), [(1, 0), (2, 1), (5, 4)])
def test_maximum_attempts_stops_retrying(max_attempts: int, last_retried: int) -> None:
    p = policy(maximum_attempts=max_attempts)
    for attempt in range(1, last_retried + 1):
        assert delay(p, attempt) is not None
    assert delay(p, max_attempts) is None
    assert delay(p, max_attempts + 1) is None


def test_zero_maximum_attempts_means_unlimited() -> None:
    p = policy(maximum_attempts=0)
    assert delay(p, 500) == 100.0


def test_non_retryable_failure_is_not_retried() -> None:
    p = policy()
    assert delay(p, 1, non_retryable=True) is None
    assert delay(p, 1, non_retryable=False) == 1.0


def test_error_type_in_non_retryable_list_is_not_retried() -> None:
    p = policy(non_retryable_error_types=["BadInput", "Fatal"])
    assert delay(p, 1, error_type="BadInput") is None
    assert delay(p, 1, error_type="Fatal") is None
    assert delay(p, 1, error_type="Transient") == 1.0
    assert delay(p, 1, error_type="BadInputX") == 1.0  # exact names, not prefixes
    assert delay(p, 1, error_type=None) == 1.0


def test_schedule_to_close_budget() -> None:
    p = policy()
    assert delay(p, 3, seconds_left=10.0) == 4.0
    assert delay(p, 3, seconds_left=4.01) == 4.0
    assert delay(p, 3, seconds_left=4.0) is None  # would start exactly at the deadline
    assert delay(p, 3, seconds_left=3.0) is None
    assert delay(p, 1, seconds_left=0.0) is None
    assert delay(p, 1, seconds_left=-5.0) is None
    assert delay(p, 3, seconds_left=None) == 4.0


def test_budget_is_checked_against_the_capped_delay() -> None:
    p = policy(maximum_interval_s=5.0)
    assert delay(p, 10, seconds_left=6.0) == 5.0


# --------------------------------------------------------------------------- workflow tasks


def test_workflow_task_first_retry_is_immediate() -> None:
    assert workflow_task_retry_delay(2, 60.0) == 0.0
    assert workflow_task_retry_delay(1, 60.0) == 0.0


def test_workflow_task_retries_then_double() -> None:
    assert [workflow_task_retry_delay(a, 60.0) for a in range(3, 10)] == [
        1.0,
        2.0,
        4.0,
        8.0,
        16.0,
        32.0,
        60.0,
    ]


def test_workflow_task_retry_is_capped() -> None:
    assert workflow_task_retry_delay(20, 60.0) == 60.0
    assert workflow_task_retry_delay(6, 5.0) == 5.0
    assert isinstance(workflow_task_retry_delay(20, 60), float)


def test_workflow_task_retry_stays_capped_after_very_many_attempts() -> None:
    # At a 60s cap a broken workflow reaches attempt 1027 in about 17 hours.
    assert workflow_task_retry_delay(1026, 60.0) == 60.0
    assert workflow_task_retry_delay(1027, 60.0) == 60.0
    assert workflow_task_retry_delay(10_000, 60.0) == 60.0
