"""Workflow code's activity calls: schedule an activity and wait for its result.

Re-exported by :mod:`worker.workflow`, whose names users call.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

from worker._call_args import NO_ARG, call_args
from worker._definition import ActivityDefinition, get_activity_name
from worker._workflow_api import ActivityHandle, _runtime, _to_seconds
from worker.common import ActivityCancellationType, RetryPolicy
from worker.errors import InvalidArgumentError


def start_activity(
    activity: str | Callable[..., Any],
    *positional: Any,
    arg: Any = NO_ARG,
    args: Sequence[Any] | None = None,
    start_to_close_timeout: timedelta | None = None,
    schedule_to_close_timeout: timedelta | None = None,
    schedule_to_start_timeout: timedelta | None = None,
    heartbeat_timeout: timedelta | None = None,
    retry_policy: RetryPolicy | None = None,
    task_queue: str | None = None,
    activity_id: str | None = None,
    result_type: Any = None,
    cancellation_type: ActivityCancellationType = ActivityCancellationType.TRY_CANCEL,
) -> ActivityHandle:
    """Schedule an activity and return its handle without waiting.

    Args:
        activity: An ``@activity.defn`` function or an activity type name.
        *positional: The activity's arguments.
        arg: Its one argument, by Temporal's keyword (not beside the others).
        args: The arguments as a list, as Temporal takes them (not beside ``*positional``).
        start_to_close_timeout: Time allowed for one attempt.
        schedule_to_close_timeout: Time allowed for all attempts together.
            One of the two is required.
        schedule_to_start_timeout: Time an attempt may wait in the queue.
        heartbeat_timeout: Longest gap allowed between heartbeats.
        retry_policy: How failed attempts are retried; the server's default if None.
        task_queue: Queue to run it on; the workflow's if None.
        activity_id: Id of the activity; a per-run sequence number if None.
        result_type: Type to decode the result as; the function's return
            annotation if a function was passed.
        cancellation_type: What cancelling it waits for (as in Temporal).

    Raises:
        ValueError, TypeError: Bad options. These fail the workflow task (the
            workflow retries once the code is fixed), even if caught.
    """
    rt = _runtime()
    try:
        given = call_args(positional, args, "start_activity", arg)
        activity_type = get_activity_name(activity)
        if result_type is None and not isinstance(activity, str):
            result_type = ActivityDefinition.from_callable(activity).return_type
        if start_to_close_timeout is None and schedule_to_close_timeout is None:
            raise ValueError(
                f"activity {activity_type!r} needs start_to_close_timeout or "
                "schedule_to_close_timeout"
            )
        if retry_policy is not None and not isinstance(retry_policy, RetryPolicy):
            raise TypeError(f"retry_policy must be a RetryPolicy, got {retry_policy!r}")
        if activity_id is not None and (not isinstance(activity_id, str) or not activity_id):
            raise ValueError(f"activity_id must be a non-empty string, got {activity_id!r}")
        if not isinstance(cancellation_type, ActivityCancellationType):
            raise TypeError(
                f"cancellation_type must be an ActivityCancellationType, got {cancellation_type!r}"
            )
        options = {
            "schedule_to_close_s": _to_seconds(
                schedule_to_close_timeout, "schedule_to_close_timeout"
            ),
            "schedule_to_start_s": _to_seconds(
                schedule_to_start_timeout, "schedule_to_start_timeout"
            ),
            "start_to_close_s": _to_seconds(start_to_close_timeout, "start_to_close_timeout"),
            "heartbeat_s": _to_seconds(heartbeat_timeout, "heartbeat_timeout"),
        }
    except (TypeError, ValueError, InvalidArgumentError) as exc:
        raise rt.misuse(exc) from None
    return rt.start_activity(
        activity_type=activity_type,
        args=tuple(given),
        task_queue=task_queue,
        activity_id=activity_id,
        retry_policy=None if retry_policy is None else retry_policy.to_wire(),
        result_type=result_type,
        cancellation_type=cancellation_type,
        **options,
    )


async def execute_activity(
    activity: str | Callable[..., Any],
    *positional: Any,
    arg: Any = NO_ARG,
    args: Sequence[Any] | None = None,
    start_to_close_timeout: timedelta | None = None,
    schedule_to_close_timeout: timedelta | None = None,
    schedule_to_start_timeout: timedelta | None = None,
    heartbeat_timeout: timedelta | None = None,
    retry_policy: RetryPolicy | None = None,
    task_queue: str | None = None,
    activity_id: str | None = None,
    result_type: Any = None,
    cancellation_type: ActivityCancellationType = ActivityCancellationType.TRY_CANCEL,
) -> Any:
    """Schedule an activity and wait for its result; see :func:`start_activity`.

    Raises:
        ActivityError: The activity failed for good; ``__cause__`` is an
            ``ApplicationError``, ``TimeoutError_`` or ``CanceledError``.
    """
    return await start_activity(
        activity,
        *positional,
        arg=arg,
        args=args,
        start_to_close_timeout=start_to_close_timeout,
        schedule_to_close_timeout=schedule_to_close_timeout,
        schedule_to_start_timeout=schedule_to_start_timeout,
        heartbeat_timeout=heartbeat_timeout,
        retry_policy=retry_policy,
        task_queue=task_queue,
        activity_id=activity_id,
        result_type=result_type,
        cancellation_type=cancellation_type,
    )


#: Temporal's names for the two given an activity method (``Repo.fetch``, run
#: by a worker given ``activities=[repo.fetch]``): the same calls.
start_activity_method = start_activity
execute_activity_method = execute_activity


def start_local_activity(
    activity: str | Callable[..., Any],
    *arg: Any,
    args: Sequence[Any] | None = None,
    result_type: Any = None,
    schedule_to_close_timeout: timedelta | None = None,
    schedule_to_start_timeout: timedelta | None = None,
    start_to_close_timeout: timedelta | None = None,
    retry_policy: RetryPolicy | None = None,
    local_retry_threshold: timedelta | None = None,
    cancellation_type: ActivityCancellationType = ActivityCancellationType.TRY_CANCEL,
    activity_id: str | None = None,
) -> ActivityHandle:
    """Temporal's local activity, run as an ordinary activity on the workflow's task queue.

    It takes Temporal's options and gives the same results and errors; like
    every activity here it is recorded in history (scheduled, started,
    completed), so it survives a worker crash and replays deterministically.
    The worker polling the workflow's task queue must register it.

    Args:
        local_retry_threshold: Accepted for Temporal's signature; every retry
            here is a durable one, scheduled by the server after the backoff.
        Others: as for :func:`start_activity`.
    """
    if local_retry_threshold is not None and not isinstance(local_retry_threshold, timedelta):
        raise _runtime().misuse(
            TypeError(f"local_retry_threshold must be a timedelta, got {local_retry_threshold!r}")
        )
    return start_activity(
        activity,
        *arg,
        args=args,
        start_to_close_timeout=start_to_close_timeout,
        schedule_to_close_timeout=schedule_to_close_timeout,
        schedule_to_start_timeout=schedule_to_start_timeout,
        retry_policy=retry_policy,
        activity_id=activity_id,
        result_type=result_type,
        cancellation_type=cancellation_type,
    )


async def execute_local_activity(
    activity: str | Callable[..., Any],
    *arg: Any,
    args: Sequence[Any] | None = None,
    result_type: Any = None,
    schedule_to_close_timeout: timedelta | None = None,
    schedule_to_start_timeout: timedelta | None = None,
    start_to_close_timeout: timedelta | None = None,
    retry_policy: RetryPolicy | None = None,
    local_retry_threshold: timedelta | None = None,
    cancellation_type: ActivityCancellationType = ActivityCancellationType.TRY_CANCEL,
    activity_id: str | None = None,
) -> Any:
    """Run a local activity and wait for its result; see :func:`start_local_activity`."""
    return await start_local_activity(
        activity,
        *arg,
        args=args,
        result_type=result_type,
        schedule_to_close_timeout=schedule_to_close_timeout,
        schedule_to_start_timeout=schedule_to_start_timeout,
        start_to_close_timeout=start_to_close_timeout,
        retry_policy=retry_policy,
        local_retry_threshold=local_retry_threshold,
        cancellation_type=cancellation_type,
        activity_id=activity_id,
    )


start_local_activity_method = start_local_activity
execute_local_activity_method = execute_local_activity
