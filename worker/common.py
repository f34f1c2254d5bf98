"""Options shared by workflows, activities and clients."""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Sequence
from datetime import timedelta
from typing import Literal

from worker.wire import (
    RETRY_MAX_ATTEMPTS,
    RETRY_MAX_BACKOFF_COEFFICIENT,
    RETRY_MAX_INTERVAL_S,
    Payload,
    RetryPolicyWire,
    WorkflowIdConflictPolicy,
    WorkflowIdReusePolicy,
)

#: Temporal's spellings (``temporalio.common``) of the start's id policies.
WorkflowIDReusePolicy = WorkflowIdReusePolicy
WorkflowIDConflictPolicy = WorkflowIdConflictPolicy

_MAX_INTERVAL = timedelta(seconds=RETRY_MAX_INTERVAL_S)


class ActivityCancellationType(enum.Enum):
    """What the workflow code awaiting an activity waits for once it cancels
    it (its handle, the task awaiting it, or the run on a cancel request), as
    Temporal's option of that name says. Whatever it waits for, a cancellation
    raises an ``ActivityError`` whose cause is a ``CanceledError``."""

    TRY_CANCEL = "try_cancel"
    """Ask the server to cancel the activity and raise at once (the default)."""

    WAIT_CANCELLATION_COMPLETED = "wait_cancellation_completed"
    """Ask the server to cancel the activity and raise once it closed as
    canceled (its attempt learned of the cancel at a heartbeat and stopped);
    an attempt that completes or fails first gives its result or failure."""

    ABANDON = "abandon"
    """Raise at once without asking the server: the activity runs on, and
    what it ends with is not seen."""


@dataclasses.dataclass(frozen=True)
class RetryPolicy:
    """How the server retries a failed activity.

    The delay before attempt ``n + 1`` is ``initial_interval *
    backoff_coefficient ** (n - 1)``, capped at ``maximum_interval``.

    Raises:
        ValueError: On construction, when a field is out of range.
        TypeError: On construction, when a field has the wrong type.
    """

    initial_interval: timedelta = timedelta(seconds=1)
    """Delay before the first retry; positive, at most ten years."""

    backoff_coefficient: float = 2.0
    """Factor the delay grows by after each attempt; from 1 to 100."""

    maximum_interval: timedelta | None = None
    """Cap on the delay, at most ten years; None means 100 times ``initial_interval``."""

    maximum_attempts: int = 0
    """Attempts in total, the first included, below 2**31; 0 means unlimited."""

    non_retryable_error_types: Sequence[str] = ()
    """Error types that fail the activity at once: an ``ApplicationError``'s
    ``type``, or the class name of another exception its code raised (Python's
    ``TimeoutError`` among them). A timeout the server enforces is never one."""

    on_max_attempts: Literal["fail", "pause"] = "fail"
    """When the attempts run out: ``"fail"`` the activity, or ``"pause"`` it
    until an operator resets (or unpauses) it."""

    def __post_init__(self) -> None:
        if not isinstance(self.initial_interval, timedelta):
            raise TypeError(
                f"RetryPolicy.initial_interval must be a timedelta, got {self.initial_interval!r}"
            )
        # The server's bounds (worker.wire): a policy past them would fail
        # every workflow task that schedules the activity, far from this line.
        if not timedelta(0) < self.initial_interval <= _MAX_INTERVAL:
            raise ValueError(
                "RetryPolicy.initial_interval must be positive and at most ten years, "
                f"got {self.initial_interval}"
            )
        if isinstance(self.backoff_coefficient, bool) or not isinstance(
            self.backoff_coefficient, int | float
        ):
            raise TypeError(
                "RetryPolicy.backoff_coefficient must be a number, "
                f"got {self.backoff_coefficient!r}"
            )
        if not 1 <= self.backoff_coefficient <= RETRY_MAX_BACKOFF_COEFFICIENT:  # NaN too
            raise ValueError(
                "RetryPolicy.backoff_coefficient must be a number from 1 to "
                f"{RETRY_MAX_BACKOFF_COEFFICIENT:g}, got {self.backoff_coefficient}"
            )
        if self.maximum_interval is not None:
            if not isinstance(self.maximum_interval, timedelta):
                raise TypeError(
                    "RetryPolicy.maximum_interval must be a timedelta or None, "
                    f"got {self.maximum_interval!r}"
                )
            if self.maximum_interval > _MAX_INTERVAL:
                raise ValueError(
                    "RetryPolicy.maximum_interval must be at most ten years, "
                    f"got {self.maximum_interval}"
                )
            if self.maximum_interval < self.initial_interval:
                raise ValueError(
                    f"RetryPolicy.maximum_interval ({self.maximum_interval}) must not be less "
                    f"than initial_interval ({self.initial_interval})"
                )
        if isinstance(self.maximum_attempts, bool) or not isinstance(self.maximum_attempts, int):
            raise TypeError(
                f"RetryPolicy.maximum_attempts must be an int, got {self.maximum_attempts!r}"
            )
        if not 0 <= self.maximum_attempts <= RETRY_MAX_ATTEMPTS:
            raise ValueError(
                "RetryPolicy.maximum_attempts must be 0 (unlimited) or more, below 2**31, "
                f"got {self.maximum_attempts}"
            )
        # A bare string is a Sequence[str] too; taking it letter by letter
        # would silently make every one-letter type non-retryable.
        if isinstance(self.non_retryable_error_types, str) or not all(
            isinstance(t, str) for t in self.non_retryable_error_types
        ):
            raise TypeError(
                "RetryPolicy.non_retryable_error_types must be a sequence of type names, "
                f"got {self.non_retryable_error_types!r}"
            )
        object.__setattr__(self, "non_retryable_error_types", tuple(self.non_retryable_error_types))
        if self.on_max_attempts not in ("fail", "pause"):
            raise ValueError(
                "RetryPolicy.on_max_attempts must be 'fail' or 'pause', "
                f"got {self.on_max_attempts!r}"
            )

    @property
    def effective_maximum_interval(self) -> timedelta:
        """``maximum_interval``, or its default of 100 times ``initial_interval``."""
        return self.maximum_interval or self.initial_interval * 100

    def to_wire(self) -> RetryPolicyWire:
        """The policy as the server stores it."""
        return RetryPolicyWire(
            initial_interval_s=self.initial_interval.total_seconds(),
            backoff_coefficient=float(self.backoff_coefficient),
            maximum_interval_s=(
                None if self.maximum_interval is None else self.maximum_interval.total_seconds()
            ),
            maximum_attempts=self.maximum_attempts,
            non_retryable_error_types=list(self.non_retryable_error_types),
            on_max_attempts=None if self.on_max_attempts == "fail" else self.on_max_attempts,
        )

    @staticmethod
    def from_wire(wire: RetryPolicyWire) -> RetryPolicy:
        """Rebuild a policy from its wire form."""
        return RetryPolicy(
            initial_interval=timedelta(seconds=wire.initial_interval_s),
            backoff_coefficient=wire.backoff_coefficient,
            maximum_interval=(
                None
                if wire.maximum_interval_s is None
                else timedelta(seconds=wire.maximum_interval_s)
            ),
            maximum_attempts=wire.maximum_attempts,
            non_retryable_error_types=tuple(wire.non_retryable_error_types),
            on_max_attempts=wire.on_max_attempts or "fail",
        )


@dataclasses.dataclass(frozen=True)
class RawValue:
    """A payload not yet decoded, as Temporal's ``RawValue``: what a dynamic
    workflow, activity or handler receives for each argument.

    Decode it with the payload converter, ``workflow.payload_converter()``
    in workflow code or ``activity.payload_converter()`` in an activity:
    ``payload_converter().from_payload(raw.payload, MyType)``. A ``RawValue``
    passed as an argument or returned travels as the payload it holds.
    """

    payload: Payload
