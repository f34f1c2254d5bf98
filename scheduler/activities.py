"""The schedule workflow's activities, run by the system worker against its region's API.

* ``start``: start one action workflow. Its request id is derived from the
  action's workflow id (and, for a backfill, a tag of that backfill's start),
  so a retried start (a lost reply, a failover) finds the run it started
  before instead of starting another.
* ``watch``: long-poll an action until it closes (following continue-as-new),
  heartbeating, and say how it ended.
* ``control``: cancel or terminate a running action (overlap policies).
* ``report``: write the schedule's counters where the region's metrics read them.
* ``count``: count the fires of a spec in a range (those an unpause passed
  over), a slice at a time, on a thread: a year of a minutely schedule takes
  half a minute of CPU, which the workflow task must not spend.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from scheduler.definition import iso, parse_spec, parse_time
from scheduler.spec import ExclusionsTooWide, fires
from scheduler.workflow import (
    CONTROL_ACTIVITY,
    COUNT_ACTIVITY,
    REPORT_ACTIVITY,
    START_ACTIVITY,
    WATCH_ACTIVITY,
)
from worker import activity
from worker._http import ns_path, wf_path
from worker.errors import (
    BatonError,
    WorkflowAlreadyStartedError,
    WorkflowNotFoundError,
    WorkflowNotRunningError,
)

#: How long one long-poll of a watch waits before it heartbeats again.
WATCH_POLL_S = 20.0
#: Fires one count call counts at most, and the wall-clock seconds it may
#: spend: it hands back what it has, and the schedule asks on from there.
COUNT_PAGE = 50_000
COUNT_SLICE_S = 2.0

StatsWriter = Callable[[str, str, dict[str, Any]], Awaitable[None]]


def action_request_id(schedule_id: str, workflow_id: str, tag: str = "") -> str:
    return f"schedule:{schedule_id}:{workflow_id}" + (f":{tag}" if tag else "")


def make_schedule_activities(client: Any, write_stats: StatsWriter) -> list[Any]:
    """The activities, bound to a client of the region's own API."""

    @activity.defn(name=START_ACTIVITY)
    async def start_action(
        namespace: str,
        schedule_id: str,
        action: dict[str, Any],
        workflow_id: str,
        nominal: str,
        request_tag: str = "",
    ) -> dict[str, Any]:
        body = {
            "workflow_id": workflow_id,
            "workflow_type": action["workflow_type"],
            "task_queue": action["task_queue"],
            "input": action["input"],  # the client's payloads, as it encoded them
            "request_id": action_request_id(schedule_id, workflow_id, request_tag),
            # the same fire never runs twice, even after its run closed
            "id_reuse_policy": "reject_duplicate",
            "task_timeout_s": action.get("task_timeout_s") or 10.0,
            "run_timeout_s": action.get("run_timeout_s"),
            "memo": action.get("memo") or {},
            "identity": f"schedule/{schedule_id}",
            "search_attributes": {
                **(action.get("search_attributes") or {}),
                "ScheduledById": schedule_id,
                "ScheduledStartTime": nominal,
            },
            "versioning_behavior": action.get("versioning_behavior"),
        }
        for key in ("execution_timeout_s", "retry_policy"):
            if action.get(key) is not None:
                body[key] = action[key]
        try:
            res = await client.call("POST", ns_path(namespace, "/workflows"), body)
        except WorkflowAlreadyStartedError as exc:
            return {"outcome": "already-started", "run_id": None, "error": exc.message[:500]}
        except BatonError as exc:
            if exc.retryable:
                raise  # the region is busy or moving: try again
            return {
                "outcome": "start-failed",
                "run_id": None,
                "error": f"[{exc.code}] {exc.message[:500]}",
            }
        return {"outcome": "running", "run_id": res["run_id"]}

    @activity.defn(name=WATCH_ACTIVITY)
    async def watch_action(namespace: str, workflow_id: str, run_id: str) -> dict[str, Any]:
        while True:
            try:
                res = await client.call(
                    "GET",
                    wf_path(namespace, workflow_id, "/result"),
                    params={"run_id": run_id, "wait_s": WATCH_POLL_S},
                )
            except WorkflowNotFoundError:
                return {"status": "unknown", "run_id": run_id}  # gone past its retention
            if res["closed"]:
                return {"status": res["status"], "run_id": res["run_id"]}
            activity.heartbeat()

    @activity.defn(name=CONTROL_ACTIVITY)
    async def control_action(
        namespace: str, workflow_id: str, run_id: str, op: str, reason: str
    ) -> bool:
        try:
            await client.call(
                "POST",
                wf_path(namespace, workflow_id, f"/{op}"),
                {
                    "reason": reason,  # the current run: the action may have continued as new
                    "request_id": f"schedule-{op}:{workflow_id}:{run_id}",
                    "identity": "baton schedule",
                },
            )
        except (WorkflowNotRunningError, WorkflowNotFoundError):
            return False
        return True

    @activity.defn(name=REPORT_ACTIVITY)
    async def report(namespace: str, schedule_id: str, snapshot: dict[str, Any]) -> None:
        await write_stats(namespace, schedule_id, snapshot)

    @activity.defn(name=COUNT_ACTIVITY)
    def count(spec: dict[str, Any], after: str, until: str) -> dict[str, Any]:
        return count_fires(spec, after, until)

    return [start_action, watch_action, control_action, report, count]


def count_fires(spec: dict[str, Any], after: str, until: str) -> dict[str, Any]:
    """The fires of ``spec`` in (``after``, ``until``], or the first of them.

    Returns ``count``, the ``last`` fire counted (None if none), whether the
    range is ``done``, and if not, where the rest begins (``resume``: the rest
    is the range after it). A long run of excluded times is a slice too.
    """
    sp = parse_spec(spec)
    start, end = parse_time(after, "after"), parse_time(until, "until")
    assert start is not None and end is not None
    at: datetime = start
    deadline = time.monotonic() + COUNT_SLICE_S
    n, last = 0, None

    def result(done: bool) -> dict[str, Any]:
        return {
            "count": n,
            "last": None if last is None else iso(last),
            "done": done,
            "resume": iso(at),
        }

    while True:
        try:
            for t in fires(sp, at):
                if t > end:
                    return result(True)
                n, last, at = n + 1, t, t
                if n >= COUNT_PAGE or time.monotonic() > deadline:
                    return result(at >= end)
            return result(True)
        except ExclusionsTooWide as exc:
            # every time up to exc.last is excluded: look on from there
            if exc.last >= end:
                return result(True)
            at = exc.last
            if time.monotonic() > deadline:
                return result(False)
