"""A workflow started with a cron schedule, as Temporal's ``cron_schedule``.

The start's run holds its first workflow task back until the schedule's next
time (the durable backoff timer a workflow retry uses, see
:mod:`store.workflow_retry`). Each run that completes, fails or times out
(its own run timeout) closes linked to the chain's next run, written in the
same transaction, whose first workflow task waits for the next cron time
after that close: the same input and options, ``attempt`` 1, the last
completion result and the failure it closed with carried in its started
event. A failure the retry policy retries is retried first. Cancel,
terminate and the execution timeout end the chain (the run waiting for its
time when the deadline passes times out, as in Temporal), as does a
schedule with no time left.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from scheduler.spec import SpecError, next_cron_time
from store.errors import InvalidArgument
from store.mutable_state import RunTxn, utcnow
from store.sql import QUERIES as Q
from store.workflow_retry import next_run


def check_cron(text: str | None) -> str | None:
    """A start's ``cron_schedule``, checked (None or blank: none)."""
    if text is None or not text.strip():
        return None
    try:
        never = cron_delay(text, utcnow()) is None
    except SpecError as exc:
        raise InvalidArgument(
            f"cron_schedule {text!r}: {exc}; give a cron string such as '*/5 * * * *', "
            "'@hourly' or '@every 10m'"
        ) from None
    if never:
        raise InvalidArgument(
            f"cron_schedule {text!r} has no time to come (a 31 February, a year gone): "
            "give one that fires"
        )
    return text.strip()


def cron_delay(cron: str, after: datetime) -> float | None:
    """Seconds from ``after`` to the schedule's next time (None: it has none)."""
    at = next_cron_time(cron, after)
    if at is None:
        return None
    return max((at - after).total_seconds(), 0.0)


def check_start(cron_schedule: str | None, start_delay_s: float | None) -> None:
    """Refuse a start's cron schedule that is not one, or one given with a
    start delay (as Temporal does: the schedule says when the first run starts)."""
    if check_cron(cron_schedule) and start_delay_s:
        raise InvalidArgument(
            "cron_schedule and start_delay cannot go together: the schedule's next time "
            "is when the first run starts; leave one out"
        )


def first_backoff(run: RunTxn, start_delay_s: float | None) -> dict[str, Any]:
    """What a start's started event says of its first workflow task's wait:
    the start delay, or until a cron schedule's next time (an empty dict: no
    wait); :func:`store.workflow_retry.hold_first_task` holds the task back."""
    if start_delay_s:
        return {"first_workflow_task_backoff_s": start_delay_s}
    cron = run.exe.get("cron_schedule")
    if not cron:
        return {}
    return {"first_workflow_task_backoff_s": cron_delay(cron, run.now) or 0.0}


async def cron_run(
    rt: RunTxn, *, result: Any = None, failure: dict[str, Any] | None = None
) -> RunTxn | None:
    """The chain's next run when ``rt`` closes (``result``: it completed with
    it; ``failure``: it failed or timed out) and its chain has a cron
    schedule (None: no next run). The caller closes ``rt`` with
    :func:`store.workflow_retry.close_attributes` and writes it after."""
    cron = rt.exe.get("cron_schedule")
    if not cron or not rt.running:
        return None
    delay = cron_delay(cron, rt.now)
    if delay is None:
        return None
    # (a next time past the execution timeout still gets its run, as in
    # Temporal: it times out at the deadline, so the chain ends timed out)
    started = await rt.conn.fetchval(
        Q["run_started_attributes"], rt.namespace, rt.workflow_id, uuid.UUID(rt.run_id)
    )
    if started is None:
        return None
    last = result if failure is None else started.get("last_completion_result")
    carry: dict[str, Any] = {"continued_failure": failure}
    if last is not None:
        carry["last_completion_result"] = last
    return next_run(rt, started, delay, attempt=1, initiator="cron_schedule", carry=carry)
