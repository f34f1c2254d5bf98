"""Wire shapes of the tasks a poll or a completion hands to a worker."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg

from store.chain import chain_attributes
from store.mutable_state import RunTxn
from store.sql import QUERIES as Q
from store.task_token import TaskToken
from store.update_tasks import speculative_view
from versioning import routing
from worker import wire


async def build_workflow_task(conn: asyncpg.Connection, rt: RunTxn) -> dict[str, Any]:
    """The poll response for the workflow task just started in ``rt`` (after write_txn)."""
    since = int(rt.exe["last_completed_wt_started"])
    view: Any = rt.task_view  # returned by the write that started the task
    if view is None:
        view = await conn.fetchrow(
            Q["workflow_task_view"], rt.namespace, rt.workflow_id, uuid.UUID(rt.run_id), since + 1
        )
    events = view["events"]
    history_length = rt.exe["next_event_id"] - 1
    if rt.wt_speculative:
        events = [*events, *speculative_view(rt)]
        history_length = rt.exe["wt_started_event_id"]
    token = TaskToken(
        "wf",
        rt.namespace,
        rt.workflow_id,
        rt.run_id,
        str(rt.exe["wt_scheduled_event_id"]),
        int(rt.exe["wt_started_event_id"]),
        rt.ns.failover_version,
    )
    return {
        "task_token": token.encode(),
        "namespace": rt.namespace,
        "workflow_id": rt.workflow_id,
        "run_id": rt.run_id,
        "workflow_type": rt.exe["workflow_type"],
        "task_queue": rt.exe["task_queue"],
        "attempt": rt.exe["wt_attempt"],
        "started_event_id": rt.exe["wt_started_event_id"],
        "previous_started_event_id": since,
        "previous_started_event_version": view["previous_version"],
        "history_length": history_length,
        "events": events,
        "updates": view["updates"],
        "query": None,
        "target_version_changed": routing.target_version_changed(rt.ns.deployments, rt.exe),
    }


def activity_task(
    row: asyncpg.Record | dict[str, Any], workflow_type: str, version: int
) -> dict[str, Any]:
    """The poll response for a started activity attempt; ``version`` is the namespace's."""
    token = TaskToken(
        "act",
        row["namespace"],
        row["workflow_id"],
        str(row["run_id"]),
        str(row["scheduled_event_id"]),
        int(row["attempt"]),
        version,
    )
    return {
        "task_token": token.encode(),
        "namespace": row["namespace"],
        "workflow_id": row["workflow_id"],
        "run_id": str(row["run_id"]),
        "workflow_type": workflow_type,
        "activity_id": row["activity_id"],
        "activity_type": row["activity_type"],
        "task_queue": row["task_queue"],
        "input": row["input"],
        "attempt": row["attempt"],
        "heartbeat_details": row["heartbeat_details"],
        "scheduled_time": row["scheduled_time"].isoformat(),
        "started_time": row["started_time"].isoformat(),
        "start_to_close_s": row["start_to_close_s"],
        "schedule_to_close_s": row["schedule_to_close_s"],
        "heartbeat_s": row["heartbeat_s"],
        "scheduled_event_id": row["scheduled_event_id"],
        "first_scheduled_time": row["first_scheduled_time"].isoformat(),
    }


def started_attributes(
    req: wire.StartWorkflowRequest, run: RunTxn, continued_from: str | None = None
) -> dict[str, Any]:
    attrs = {
        "workflow_type": req.workflow_type,
        "task_queue": req.task_queue,
        "input": [p.model_dump() for p in req.input],
        "request_id": req.request_id,
        "task_timeout_s": req.task_timeout_s,
        "run_timeout_s": req.run_timeout_s,
        "continued_from_run_id": continued_from,
        "first_run_id": str(run.exe["first_run_id"]),
        # the run that wrote this event, kept by a reset's copy of it: the
        # worker seeds workflow.random() from it, so the kept events replay
        "original_run_id": run.run_id,
        "attempt": 1,
        "memo": req.memo,
        "search_attributes": run.exe.get("search_attributes") or {},
        "identity": req.identity,
        **chain_attributes(run.exe),
    }
    if req.versioning_behavior is not None:
        # what a start re-applied from this event in another region needs
        # (only when asked for, so other histories keep their shape)
        attrs["versioning_behavior"] = req.versioning_behavior
    return attrs
