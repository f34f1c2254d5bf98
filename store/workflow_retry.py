"""Retries of a whole workflow by the retry policy its start gave, as in Temporal.

A run that fails (or reaches its run timeout) while its chain has a retry
policy closes as it would, linked to a new run of the chain
(``continued_to_run_id``, and ``new_execution_run_id`` in its closing event)
written in the same transaction: the same type, task queue, input, timeouts,
memo and search attributes, ``attempt`` one more, its first workflow task
after the policy's backoff (a durable timer). No retry when the failure is
non-retryable (by its flag or its type), the attempts ran out, or the wait
would pass the chain's execution timeout. Cancel, terminate and the
execution timeout end the chain.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from store.chain import add_execution_timer, carried, expired
from store.mutable_state import RUN_TIMEOUT, RunTxn
from store.new_run import new_execution
from store.pause import carry_pause
from store.retry import retry_decision
from store.sql import QUERIES as Q
from versioning import routing
from worker.wire import EventType

#: Timer kind of a retried run's first workflow task, due after the backoff.
WORKFLOW_BACKOFF = "workflow_backoff"

#: What a retried run's started event takes anew (the rest is the failed run's).
_PER_RUN = ("request_id", "original_run_id", "continued_from_run_id", "attempt")


async def retried_run(rt: RunTxn, failure: dict[str, Any] | None) -> RunTxn | None:
    """The chain's next run when its retry policy retries this run's
    ``failure`` (None: not retried). The caller closes ``rt`` with
    :func:`close_attributes` and writes the new run after it."""
    policy = rt.exe.get("retry_policy")
    if not policy or not rt.running:
        return None
    started = await rt.conn.fetchval(
        Q["run_started_attributes"], rt.namespace, rt.workflow_id, uuid.UUID(rt.run_id)
    )
    if started is None:
        return None
    attempt = int(started.get("attempt") or 1)
    f = failure or {}
    delay, _why = retry_decision(
        policy,
        attempt=attempt,
        error_type=f.get("type"),
        non_retryable=bool(f.get("non_retryable")),
        # ApplicationError(next_retry_delay=...) in place of the backoff, as in Temporal
        requested_delay=f.get("next_retry_delay_s"),
    )
    if delay is None or expired(rt.exe, rt.now + timedelta(seconds=delay)):
        return None
    return next_run(
        rt,
        started,
        delay,
        attempt=attempt + 1,
        initiator="retry",
        carry={"continued_failure": failure},
    )


def next_run(
    rt: RunTxn,
    started: dict[str, Any],
    delay: float,
    *,
    attempt: int,
    initiator: str,
    carry: dict[str, Any],
) -> RunTxn:
    """The chain's next run after ``rt`` (a retry, or a cron schedule's next
    run): ``rt``'s type, task queue, input, timeouts, memo and search
    attributes (``started``: its started event's attributes), ``carry`` added
    to its started event, its first workflow task after ``delay`` seconds."""
    e = rt.exe
    new = new_execution(
        rt.conn,
        rt.ns,
        workflow_id=rt.workflow_id,
        workflow_type=e["workflow_type"],
        task_queue=e["task_queue"],
        request_id=None,
        task_timeout_s=e["task_timeout_s"],
        run_timeout_s=e["run_timeout_s"],
        memo=e["memo"],
        first_run_id=str(e["first_run_id"]),
        continued_from_run_id=rt.run_id,
        now=rt.now,
        search_attributes=dict(e.get("search_attributes") or {}),
        chain=carried(e),
    )
    routing.continued(e, new.exe, rt.ns.deployments, None)
    attrs = {k: v for k, v in started.items() if k not in _PER_RUN}
    attrs.update(
        {
            "request_id": None,
            "original_run_id": new.run_id,
            "continued_from_run_id": rt.run_id,
            "attempt": attempt,
            "memo": e["memo"],
            "search_attributes": new.exe["search_attributes"],
            # Temporal's names: why this run started, what the last one failed
            # with, and how long its first workflow task waits
            "initiator": initiator,
            "first_workflow_task_backoff_s": delay,
            **carry,
        }
    )
    new.add_event(EventType.WORKFLOW_EXECUTION_STARTED, attrs)
    carry_pause(rt, new)
    hold_first_task(new, delay)
    add_run_timer(new, delay)
    add_execution_timer(new)
    return new


def first_task_backoff(started: dict[str, Any], run_id: str) -> float:
    """Seconds a run's first workflow task waited after its start (a retry's
    backoff, a start delay, a cron time), from its started event; 0 for a
    reset's run, whose started event is a copy of another run's."""
    if started.get("original_run_id") not in (None, run_id):
        return 0.0
    return float(started.get("first_workflow_task_backoff_s") or 0)


def add_run_timer(run: RunTxn, backoff: float, start: datetime | None = None) -> None:
    """The timer of the run's own timeout, if it has one: counted from when its
    first workflow task may run (``backoff`` after ``start``, the run's
    start), as Temporal counts it, so a run that waits for a cron time or a
    start delay does not time out before its code ran."""
    if run.exe["run_timeout_s"]:
        due = (start or run.now) + timedelta(seconds=backoff + float(run.exe["run_timeout_s"]))
        run.add_timer(RUN_TIMEOUT, "run", due)


def hold_first_task(new: RunTxn, delay: float) -> None:
    """Schedule a new run's first workflow task, or hold it back ``delay``
    seconds: no workflow task before the backoff ends, not even for a signal
    (as in Temporal): attempt 0 holds it back until the timer fires."""
    if delay > 0:
        new.exe["wt_attempt"] = 0
        new.add_timer(WORKFLOW_BACKOFF, "backoff", new.now + timedelta(seconds=delay))
    else:
        new.schedule_workflow_task()


def close_attributes(rt: RunTxn, attrs: dict[str, Any], new: RunTxn | None) -> dict[str, Any]:
    """A closing event's attributes, linked to the retry ``new`` if there is one."""
    if new is None:
        return attrs
    rt.exe["continued_to_run_id"] = new.run_id
    return {**attrs, "new_execution_run_id": new.run_id}


def end_backoff(rt: RunTxn) -> None:
    """The backoff of a retried run ended: its first workflow task."""
    if int(rt.exe["wt_attempt"]) == 0:
        rt.exe["wt_attempt"] = 1
    rt.schedule_workflow_task()


def end_backoff_now(rt: RunTxn) -> None:
    """A signal-with-start to a run whose first workflow task waits out its
    start delay, cron time or retry backoff: the task runs now, as Temporal's
    signal-with-start does (a plain signal waits with the task)."""
    if rt.running and int(rt.exe["wt_attempt"]) == 0:
        rt.delete_timers(WORKFLOW_BACKOFF, "backoff")
        end_backoff(rt)


def add_backoff_timer(rt: RunTxn, events: list[Any]) -> None:
    """On a promotion: the timer of a retried run whose first workflow task
    still waits out its backoff, due when it was in the old region."""
    if int(rt.exe["wt_attempt"]) != 0 or not events:
        return
    backoff = (events[0]["attributes"] or {}).get("first_workflow_task_backoff_s")
    if backoff is None:
        return
    start: datetime = rt.exe["start_time"]
    rt.add_timer(WORKFLOW_BACKOFF, "backoff", max(start + timedelta(seconds=backoff), rt.now))
