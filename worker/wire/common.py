"""What the other wire modules share: payloads, failures, retry policies, limits."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

PROTOCOL_VERSION = "v1"
#: Longest timeout or timer any request may ask for (ten years, in seconds).
MAX_DURATION_S = 10 * 365 * 24 * 3600.0
#: Bounds of an activity retry policy: the server refuses a command past them,
#: and the SDK's ``RetryPolicy`` refuses the same values when it is made.
RETRY_MAX_INTERVAL_S = MAX_DURATION_S
RETRY_MAX_BACKOFF_COEFFICIENT = 100.0
RETRY_MAX_ATTEMPTS = 2**31 - 1
#: Longest namespace description.
MAX_DESCRIPTION_CHARS = 4096
#: Longest list or count query (visibility filter) the server parses.
MAX_QUERY_CHARS = 4096
#: The longest task queue name (a worker's sticky queue's too) the server takes.
TASK_QUEUE_MAX_CHARS = 1000
#: A worker deployment's name and a build id: a versioned worker checks its
#: own before it polls, the server every one it is sent.
VERSION_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,254}$"


class Payload(BaseModel):
    """An opaque value: metadata says how ``data`` (base64) is encoded."""

    model_config = ConfigDict(frozen=True)

    metadata: dict[str, str] = Field(default_factory=dict)
    data: str = ""


#: The failure types that rebuild as the SDK's ``ActivityError``,
#: ``TimeoutError_`` and ``CanceledError``; a server writing a timeout or a
#: cancellation of its own uses them too.
ACTIVITY_FAILURE_TYPE = "ActivityError"
TIMEOUT_FAILURE_TYPE = "TimeoutError"
CANCELED_FAILURE_TYPE = "CanceledError"


class ActivityFailureInfo(BaseModel):
    """The activity an ``ActivityError`` failure is about (Temporal's ``activity_failure_info``)."""

    activity_type: str = ""
    activity_id: str = ""
    #: Why no further attempt was made: ``maximum_attempts_reached``,
    #: ``non_retryable_failure``, ``timeout``, ``canceled`` (empty when unknown).
    retry_state: str = ""


class Failure(BaseModel):
    """A failure as it travels and is stored: never a pickled exception.

    With a payload codec on, the SDK moves ``message`` and ``stack_trace`` into
    ``encoded_attributes`` (a payload the codec encodes, so servers only hold
    ciphertext) and leaves ``message`` as ``"Encoded failure"``; ``type`` and
    ``non_retryable`` stay readable, since the server's retry rules need them.
    """

    message: str
    type: str = "Error"
    stack_trace: str = ""
    non_retryable: bool = Field(default=False, strict=True)
    details: list[Payload] = Field(default_factory=list)
    cause: Failure | None = None
    encoded_attributes: Payload | None = None
    #: On a ``TimeoutError`` failure: which timeout fired (``start_to_close``,
    #: ``schedule_to_close``, ``schedule_to_start``, ``heartbeat``, ``run``).
    timeout_type: str | None = None
    #: On an activity's ``TimeoutError`` failure: the details of the last
    #: heartbeat its attempts sent, if any (Temporal's ``last_heartbeat_details``).
    last_heartbeat_details: list[Payload] | None = None
    #: On an activity attempt's ``ApplicationError``: wait this long before the
    #: next attempt, in place of the retry policy's backoff (Temporal's
    #: ``next_retry_delay``); the policy's attempts and deadlines still apply.
    next_retry_delay_s: float | None = Field(default=None, ge=0, le=MAX_DURATION_S, strict=True)
    #: On an ``ActivityError`` failure: which activity, and why it was not retried.
    activity: ActivityFailureInfo | None = None


class RetryPolicyWire(BaseModel):
    # strict: JSON true is not one attempt, nor "2" two seconds
    initial_interval_s: float = Field(default=1.0, strict=True)
    backoff_coefficient: float = Field(default=2.0, strict=True)
    maximum_interval_s: float | None = Field(default=None, strict=True)
    maximum_attempts: int = Field(default=0, strict=True)
    non_retryable_error_types: list[str] = Field(default_factory=list)
    on_max_attempts: Literal["fail", "pause"] | None = None
