"""The workflow retry policy options of ``baton workflow start`` and
``signal-with-start``, as the SDK's ``retry_policy=`` and the HTTP start's
``retry_policy`` give it, and their ``--cron`` schedule.

A policy is sent when any ``--retry-*`` option is given (the rest keep
:class:`worker.RetryPolicy`'s defaults); a value the policy refuses is a
usage error naming its option, found before anything is sent.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import click
from pydantic import ValidationError

from ops.cli_values import CliInputError, FiniteRange, Seconds, strict_json
from scheduler.spec import SpecError, next_cron_time
from worker.common import RetryPolicy
from worker.wire import RetryPolicyWire

#: option name -> the RetryPolicy field it sets
_FIELDS = {
    "retry_initial_interval": ("--retry-initial-interval", "initial_interval"),
    "retry_backoff_coefficient": ("--retry-backoff-coefficient", "backoff_coefficient"),
    "retry_maximum_interval": ("--retry-maximum-interval", "maximum_interval"),
    "retry_maximum_attempts": ("--retry-maximum-attempts", "maximum_attempts"),
    "retry_non_retryable_error_types": (
        "--retry-non-retryable-error-type",
        "non_retryable_error_types",
    ),
}


def retry_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Add the ``--retry-*`` options to a start command."""
    options = [
        click.option(
            "--retry-policy",
            "retry_policy_json",
            default=None,
            metavar="JSON",
            help="The workflow's retry policy as the HTTP start's retry_policy, e.g. "
            '\'{"maximum_attempts": 3, "initial_interval_s": 2}\'; the --retry-* options '
            "override its fields.",
        ),
        click.option(
            "--retry-initial-interval",
            type=Seconds(),
            default=None,
            help="Retry the workflow when a run fails or reaches its run timeout: seconds "
            "(or a span like 30s) before the first retry (default 1).",
        ),
        click.option(
            "--retry-backoff-coefficient",
            type=FiniteRange(min=1),
            default=None,
            help="Retry: factor the wait grows by after each attempt (default 2).",
        ),
        click.option(
            "--retry-maximum-interval",
            type=Seconds(),
            default=None,
            help="Retry: the longest wait between attempts (default 100 x the initial one).",
        ),
        click.option(
            "--retry-maximum-attempts",
            type=click.IntRange(min=0),
            default=None,
            help="Retry: attempts in all, the first included (default 0: unlimited).",
        ),
        click.option(
            "--retry-non-retryable-error-type",
            "retry_non_retryable_error_types",
            multiple=True,
            metavar="TYPE",
            help="Retry: a failure type that ends the workflow at once (repeatable).",
        ),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def retry_policy_of(o: dict[str, Any]) -> RetryPolicy | None:
    """The policy the ``--retry-*`` options give (None: none given)."""
    given = {k: v for k, v in o.items() if k in _FIELDS and v not in (None, ())}
    base = _policy_json(o.get("retry_policy_json"))
    if not given:
        return base
    kw: dict[str, Any] = {}
    for key, value in given.items():
        field = _FIELDS[key][1]
        if field in ("initial_interval", "maximum_interval"):
            kw[field] = timedelta(seconds=value)
        elif field == "non_retryable_error_types":
            if not all(t.strip() for t in value):
                raise CliInputError(
                    "--retry-non-retryable-error-type: give a failure type, not an empty one"
                )
            kw[field] = tuple(value)
        else:
            kw[field] = value
    try:
        return RetryPolicy(**kw) if base is None else dataclasses.replace(base, **kw)
    except (TypeError, ValueError) as exc:
        names = " / ".join(_FIELDS[k][0] for k in given)
        raise CliInputError(f"{names}: {exc}") from None


def _policy_json(text: str | None) -> RetryPolicy | None:
    """``--retry-policy``'s policy (None: not given)."""
    if text is None:
        return None
    try:
        raw = strict_json(text)
    except ValueError as exc:
        raise CliInputError(f"--retry-policy is not valid JSON ({exc}): {text!r}") from None
    if not isinstance(raw, dict):
        raise CliInputError(f"--retry-policy must be a JSON object, not {text!r}")
    unknown = sorted(set(raw) - set(RetryPolicyWire.model_fields))
    if unknown:
        known = ", ".join(RetryPolicyWire.model_fields)
        raise CliInputError(f"--retry-policy has no field {unknown[0]!r}: its fields are {known}")
    try:
        return RetryPolicy.from_wire(RetryPolicyWire.model_validate(raw))
    except (TypeError, ValueError) as exc:
        problem = str(exc)
        if isinstance(exc, ValidationError):
            problem = "; ".join(
                f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()[:3]
            )
        raise CliInputError(f"--retry-policy: {problem}") from None


def cron_of(text: str | None) -> str:
    """``--cron``'s schedule, checked before anything is sent ("": none)."""
    if text is None:
        return ""
    try:
        at = next_cron_time(text, datetime.now(UTC))
    except SpecError as exc:
        raise CliInputError(f"--cron {text!r}: {exc}") from None
    if at is None:
        raise CliInputError(f"--cron {text!r} has no time to come: give one that fires")
    return text
