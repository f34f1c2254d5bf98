"""Durable timers: user timers, timeouts and retries, fired once per region.

One server per region holds the timer advisory lock and runs the loop; the
others stand by and take over within seconds when it dies. The loop sleeps
until the earliest timer is due, and is woken early by the NOTIFY a timer
insert sends.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from datetime import timedelta
from typing import Any

import asyncpg

from store.activity_commands import start_activity_timers
from store.activity_tasks import retry_or_fail_activity
from store.chain import EXECUTION_TIMEOUT, expired
from store.context import Store
from store.cron import cron_run
from store.errors import NamespaceInHandover, NamespaceNotActive, StoreError, WorkflowNotFound
from store.leader import lead_forever
from store.mutable_state import (
    ACTIVITY_HEARTBEAT,
    ACTIVITY_RETRY,
    ACTIVITY_SCHEDULE_TO_CLOSE,
    ACTIVITY_SCHEDULE_TO_START,
    ACTIVITY_START_TO_CLOSE,
    RUN_TIMEOUT,
    USER_TIMER,
    WT_RETRY,
    WT_STICKY,
    WT_TIMEOUT,
    RunTxn,
    utcnow,
)
from store.sql import QUERIES as Q
from store.workflow_retry import WORKFLOW_BACKOFF, close_attributes, end_backoff, retried_run
from worker.wire import TIMEOUT_FAILURE_TYPE, EventType

log = logging.getLogger("baton.timers")

#: Advisory lock key of the region's timer loop ("baton-ti").
TIMER_LOCK = 0x6261746F6E2D7469 & 0x7FFFFFFFFFFFFFFF
BATCH = 200
CONCURRENCY = 8
#: Longest sleep of the loop: timers due later than 3 s send no NOTIFY on insert.
MAX_SLEEP = 2.0


async def fire_timer(store: Store, conn: asyncpg.Connection, due: asyncpg.Record) -> None:
    """Fire one due timer inside a transaction (a no-op when it is stale).

    The run is locked first, then the timer row taken: the lock order of
    every writer, which deletes timers of runs it holds.
    """
    try:
        rt = await RunTxn.lock(
            conn,
            due["namespace"],
            due["workflow_id"],
            str(due["run_id"]),
            region=store.region,
            region_urls=store.region_urls,
        )
    except WorkflowNotFound:
        await conn.execute(Q["take_timer"], due["id"])  # its run is gone (archived)
        return
    t = await conn.fetchrow(Q["take_timer"], due["id"])
    if t is None or not rt.running:
        return
    kind = t["kind"]
    retry: RunTxn | None = None
    if kind == USER_TIMER:
        rt.add_input_event(EventType.TIMER_FIRED, {"timer_id": t["ref"]})
        rt.schedule_workflow_task()
    elif kind == WT_TIMEOUT:
        if (
            str(rt.exe["wt_scheduled_event_id"]) != t["ref"]
            or rt.exe["wt_started_event_id"] != t["attempt"]
        ):
            return
        rt.add_event(
            EventType.WORKFLOW_TASK_TIMED_OUT,
            {
                "scheduled_event_id": rt.exe["wt_scheduled_event_id"],
                "started_event_id": rt.exe["wt_started_event_id"],
            },
        )
        rt.clear_workflow_task()
        rt.clear_sticky()
        rt.exe["wt_attempt"] = int(rt.exe["wt_attempt"]) + 1
        rt.flush_buffered()
        rt.schedule_workflow_task()
    elif kind == WT_RETRY:
        rt.schedule_workflow_task()
    elif kind == WORKFLOW_BACKOFF:
        end_backoff(rt)
    elif kind == WT_STICKY:
        if str(rt.exe["wt_scheduled_event_id"]) != t["ref"] or rt.wt_started:
            return
        # No poller of the worker caching the run took its task in time (the
        # worker is gone or busy): any worker of the run's queue takes it.
        await conn.execute(
            Q["move_sticky_task"],
            rt.namespace,
            rt.workflow_id,
            uuid.UUID(rt.run_id),
            t["ref"],
            rt.exe["sticky_queue"],
            rt.exe["task_queue"],
        )
        rt.clear_sticky()
    elif kind in (RUN_TIMEOUT, EXECUTION_TIMEOUT):
        if rt.wt_started:
            rt.add_event(
                EventType.WORKFLOW_TASK_FAILED,
                {
                    "scheduled_event_id": rt.exe["wt_scheduled_event_id"],
                    "started_event_id": rt.exe["wt_started_event_id"],
                    "cause": "WorkflowTimedOut",
                    "failure": None,
                    "identity": "server",
                },
            )
            rt.clear_workflow_task()
        rt.flush_buffered()
        if kind == RUN_TIMEOUT and not expired(rt.exe, rt.now):
            # as in Temporal, the retry policy retries a run timeout (one
            # capped to the execution timeout falls with the chain's deadline,
            # which is then what ran out: the else branch)
            failure = {"message": "workflow run timed out", "type": TIMEOUT_FAILURE_TYPE}
            retry = await retried_run(rt, failure) or await cron_run(rt, failure=failure)
            attrs = close_attributes(rt, {"timeout_s": rt.exe["run_timeout_s"]}, retry)
            rt.close(EventType.WORKFLOW_EXECUTION_TIMED_OUT, attrs)
        else:
            # the chain's deadline: told apart from the run's own timeout
            rt.close(
                EventType.WORKFLOW_EXECUTION_TIMED_OUT,
                {"timeout_s": rt.exe["execution_timeout_s"], "timeout_type": "execution"},
            )
    else:
        if not await _fire_activity_timer(rt, t):
            return
    await rt.write_txn()
    if retry is not None:
        await retry.write_txn()


async def _fire_activity_timer(rt: RunTxn, t: asyncpg.Record) -> bool:
    act = await rt.conn.fetchrow(
        Q["lock_activity"], rt.namespace, rt.workflow_id, uuid.UUID(rt.run_id), int(t["ref"])
    )
    if act is None:
        return False
    kind = t["kind"]
    if kind == ACTIVITY_SCHEDULE_TO_CLOSE:
        await retry_or_fail_activity(
            rt,
            act,
            _timeout_failure("schedule_to_close", act),
            timeout_type="schedule_to_close",
        )
        rt.schedule_workflow_task()
        return True
    if act["attempt"] != t["attempt"]:
        return False
    if kind == ACTIVITY_RETRY:
        if act["state"] != "scheduled":
            return False
        rt.add_task("activity", act["task_queue"], act["scheduled_event_id"], act["attempt"])
        if act["schedule_to_start_s"]:
            rt.add_timer(
                ACTIVITY_SCHEDULE_TO_START,
                act["scheduled_event_id"],
                rt.now + timedelta(seconds=act["schedule_to_start_s"]),
                act["attempt"],
            )
        return True
    if kind == ACTIVITY_SCHEDULE_TO_START:
        if act["state"] != "scheduled":
            return False
        timeout_type = "schedule_to_start"
    elif kind == ACTIVITY_START_TO_CLOSE:
        if act["state"] != "started":
            return False
        # Without its own start_to_close_s an attempt gets the schedule-to-close
        # time, so both deadlines can fall together: the budget is what ran out.
        timeout_type = "schedule_to_close" if _budget_over(rt, act) else "start_to_close"
    elif kind == ACTIVITY_HEARTBEAT:
        if act["state"] != "started":
            return False
        last = act["last_heartbeat_time"] or act["started_time"]
        due = last + timedelta(seconds=act["heartbeat_s"])
        if due > rt.now + timedelta(milliseconds=5):
            rt.add_timer(ACTIVITY_HEARTBEAT, act["scheduled_event_id"], due, act["attempt"])
            return True
        timeout_type = "heartbeat"
    else:
        log.error("unknown timer kind %r; dropping it", kind)
        return False
    failure = _timeout_failure(timeout_type, act)
    if not await retry_or_fail_activity(rt, act, failure, timeout_type=timeout_type):
        rt.schedule_workflow_task()
    return True


def _timeout_failure(timeout_type: str, act: asyncpg.Record) -> dict[str, Any]:
    failure: dict[str, Any] = {
        "message": f"activity {timeout_type.replace('_', '-')} timeout",
        "type": TIMEOUT_FAILURE_TYPE,
        "timeout_type": timeout_type,
    }
    if act["heartbeat_details"]:
        # the progress the attempts recorded, for the workflow to start over from
        failure["last_heartbeat_details"] = act["heartbeat_details"]
    return failure


def _budget_over(rt: RunTxn, act: asyncpg.Record) -> bool:
    """Whether the activity's schedule-to-close deadline has passed."""
    if not act["schedule_to_close_s"]:
        return False
    deadline = act["first_scheduled_time"] + timedelta(seconds=act["schedule_to_close_s"])
    return bool(deadline <= rt.now + timedelta(milliseconds=5))


class TimerLoop:
    """Fires due timers while this process holds the region's timer lock."""

    def __init__(self, store: Store):
        self.store = store
        self._wake = asyncio.Event()
        self._next_wake = 0.0
        store.notifier.on("baton_timers_v1", self._on_timer_inserted)

    def _on_timer_inserted(self, payload: str) -> None:
        with contextlib.suppress(ValueError):
            if float(payload) < self._next_wake:
                self._wake.set()

    async def run(self) -> None:
        await lead_forever(self.store, TIMER_LOCK, "timer loop", self._fire_forever)

    async def _fire_forever(self) -> None:
        while True:
            await self._fire_due()
            async with self.store.pool.acquire() as conn:
                nxt = await conn.fetchval(Q["next_timer"], self.store.region)
            now = utcnow()
            sleep = MAX_SLEEP if nxt is None else (nxt - now).total_seconds()
            sleep = max(0.0, min(sleep, MAX_SLEEP))
            self._next_wake = (now + timedelta(seconds=sleep)).timestamp()
            if sleep > 0:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), sleep)

    async def _fire_due(self) -> None:
        sem = asyncio.Semaphore(CONCURRENCY)

        async def one(due: asyncpg.Record) -> None:
            async with sem:
                try:
                    await self.store.txn(lambda c: fire_timer(self.store, c, due))
                except (NamespaceNotActive, NamespaceInHandover):
                    pass  # a standby keeps its timers; they fire after a failover
                except StoreError as exc:
                    log.warning("timer %s failed to fire: %s", due["id"], exc)

        while True:
            async with self.store.pool.acquire() as conn:
                rows: list[Any] = await conn.fetch(
                    Q["due_timers"], utcnow(), BATCH, self.store.region
                )
            if not rows:
                return
            await asyncio.gather(*(one(r) for r in rows))
            if len(rows) < BATCH:
                return


__all__ = ["TimerLoop", "fire_timer", "start_activity_timers"]
