"""The schedule workflow's activities, run by the system worker against its region's API.

* ``start``: start one action workflow. Its request id is derived from the
  action's workflow id (and, for a backfill, a tag of that backfill's start),
  so a retried start (a lost reply, a failover) finds the run it started
  before instead of starting another.
* ``watch``: long-poll an action until it closes (following continue-as-new),
  heartbeating, and say how it ended.
* ``control``: cancel or terminate a running action (overlap policies).
* ``report``: write the schedule's counters where the region's metrics read them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from scheduler.workflow import (
    CONTROL_ACTIVITY,
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

    return [start_action, watch_action, control_action, report]
