"""Applying a workflow task completion: its commands become events and tasks."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from pydantic import ValidationError

from store.activity_commands import (
    request_cancel_activity,
    schedule_activity,
)
from store.chain import add_execution_timer, capped_run_timeout, carried
from store.context import Store
from store.cron import cron_run
from store.errors import InvalidArgument
from store.mutable_state import (
    RUN_TIMEOUT,
    USER_TIMER,
    RunTxn,
)
from store.namespaces import get_namespace
from store.new_run import new_execution
from store.pause import OPERATOR_EVENTS, carry_pause, pause_run
from store.sql import QUERIES as Q
from store.task_views import activity_task, build_workflow_task, started_attributes
from store.update_tasks import drop_rejecting_task, only_rejects
from store.visibility.attributes import validate_upsert
from store.workflow_retry import close_attributes, retried_run
from versioning import routing
from worker import wire
from worker._payloads import merged_memo
from worker.wire import CommandType, EventType

CLOSE_COMMANDS = frozenset(
    {
        CommandType.COMPLETE_WORKFLOW,
        CommandType.FAIL_WORKFLOW,
        CommandType.CANCEL_WORKFLOW,
        CommandType.CONTINUE_AS_NEW,
    }
)


def check_commands(commands: list[wire.Command]) -> None:
    """Refuse a completion whose commands do not have their documented attributes
    (nothing is written: the worker's SDK or the code that built them is wrong)."""
    for i, cmd in enumerate(commands):
        try:
            wire.COMMAND_ATTRIBUTES[cmd.type].model_validate(cmd.attributes)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'attributes'}: {e['msg']}"
                for e in exc.errors()[:5]
            )
            raise InvalidArgument(
                f"command {i} ({cmd.type.value}) has bad attributes: {problems}"
            ) from None


def _cancel_timer(rt: RunTxn, attrs: dict[str, Any]) -> None:
    timer_id = str(attrs.get("timer_id") or "")
    # A firing that is still buffered never reaches the workflow (the
    # completion flushes the rest, which removes every stored row).
    rt.drop_buffered(
        keep=lambda kind, attrs: (
            not (kind == EventType.TIMER_FIRED.value and attrs.get("timer_id") == timer_id)
        )
    )
    rt.delete_timers(USER_TIMER, timer_id)
    rt.add_event(EventType.TIMER_CANCELED, {"timer_id": timer_id})


async def _update_state(
    rt: RunTxn, update_id: str, state: str, result: Any = None, failure: Any = None
) -> None:
    got = await rt.conn.fetchval(
        Q["set_update_state"],
        rt.namespace,
        rt.workflow_id,
        update_id,
        state,
        result,
        failure,
        uuid.UUID(rt.run_id),
    )
    if got is None:
        raise InvalidArgument(f"no update {update_id!r} is open on this workflow")
    await rt.conn.execute(Q["notify_update"], f"{rt.namespace}/{rt.workflow_id}/{update_id}")


async def _upsert_search_attributes(rt: RunTxn, attrs: dict[str, Any]) -> None:
    """Record the change and set the run's list entry in the same transaction."""
    changes = attrs.get("search_attributes") or {}
    ns = await get_namespace(rt.conn, rt.namespace)
    merged = validate_upsert(
        ns.active_search_attributes(), rt.exe.get("search_attributes") or {}, changes
    )
    rt.add_event(EventType.UPSERT_WORKFLOW_SEARCH_ATTRIBUTES, {"search_attributes": changes})
    rt.exe["search_attributes"] = merged
    await rt.conn.execute(
        Q["set_search_attributes"], rt.namespace, rt.workflow_id, uuid.UUID(rt.run_id), merged
    )


async def _modify_properties(rt: RunTxn, attrs: dict[str, Any]) -> None:
    """A workflow's memo upsert: the change as its event, the merged memo on the
    run's row in the same transaction (so describe, a continue-as-new that keeps
    the memo and the outbox row carry it)."""
    changes = attrs.get("upserted_memo") or {}
    memo = merged_memo(rt.exe.get("memo") or {}, changes)
    rt.add_event(EventType.WORKFLOW_PROPERTIES_MODIFIED, {"upserted_memo": changes})
    rt.exe["memo"] = memo
    await rt.conn.execute(Q["set_memo"], rt.namespace, rt.workflow_id, uuid.UUID(rt.run_id), memo)


async def _continue_as_new(store: Store, rt: RunTxn, attrs: dict[str, Any]) -> RunTxn:
    e = rt.exe
    req = wire.StartWorkflowRequest(
        workflow_id=rt.workflow_id,
        workflow_type=attrs.get("workflow_type") or e["workflow_type"],
        task_queue=attrs.get("task_queue") or e["task_queue"],
        input=attrs.get("input") or [],
        task_timeout_s=attrs.get("task_timeout_s") or e["task_timeout_s"],
        # at most the chain's execution timeout, as a start's (Temporal's)
        run_timeout_s=capped_run_timeout(
            attrs.get("run_timeout_s") or e["run_timeout_s"], e.get("execution_timeout_s")
        ),
        memo=e["memo"] if attrs.get("memo") is None else attrs["memo"],
    )
    new = new_execution(
        rt.conn,
        rt.ns,
        workflow_id=rt.workflow_id,
        workflow_type=req.workflow_type,
        task_queue=req.task_queue,
        request_id=None,
        task_timeout_s=req.task_timeout_s,
        run_timeout_s=req.run_timeout_s,
        memo=req.memo,
        first_run_id=str(e["first_run_id"]),
        continued_from_run_id=rt.run_id,
        now=rt.now,
        search_attributes=await _continued_attributes(rt, attrs),
        chain=carried(e),
    )
    routing.continued(e, new.exe, rt.ns.deployments, attrs.get("versioning"))
    new.add_event(
        EventType.WORKFLOW_EXECUTION_STARTED, started_attributes(req, new, continued_from=rt.run_id)
    )
    carry_pause(rt, new)
    new.schedule_workflow_task()
    if req.run_timeout_s:
        new.add_timer(RUN_TIMEOUT, "run", rt.now + timedelta(seconds=req.run_timeout_s))
    add_execution_timer(new)
    rt.close(
        EventType.WORKFLOW_EXECUTION_CONTINUED_AS_NEW,
        {
            "new_run_id": new.run_id,
            "workflow_type": req.workflow_type,
            "task_queue": req.task_queue,
            "input": [p.model_dump() for p in req.input],
        },
    )
    rt.exe["continued_to_run_id"] = new.run_id
    return new


async def _continued_attributes(rt: RunTxn, attrs: dict[str, Any]) -> dict[str, Any]:
    """The search attributes of a continue-as-new's run: the ones the command
    gives (checked as a start's are), else this run's."""
    given = attrs.get("search_attributes")
    if given is None:
        return dict(rt.exe.get("search_attributes") or {})
    # the registry as it is now, as an upsert reads it
    ns = await get_namespace(rt.conn, rt.namespace)
    return validate_upsert(ns.active_search_attributes(), {}, given)


def _version_attrs(req: wire.RespondWorkflowTaskCompleted) -> dict[str, Any]:
    """What a completed task records of worker versioning: the version that ran it."""
    version = routing.tag(req.deployment, req.build_id)
    if version is None:
        return {}
    return {"worker_version": version, "versioning_behavior": req.versioning_behavior}


#: Commands whose every change goes through the run's RunTxn: a completion
#: made only of these may be written unlocked (RunTxn.read_unlocked). The
#: others read or write rows beside the run (updates, search attributes, a
#: new run) in the same transaction.
RUN_ONLY_COMMANDS = frozenset(
    {
        CommandType.SCHEDULE_ACTIVITY,
        CommandType.START_TIMER,
        CommandType.CANCEL_TIMER,
        CommandType.RECORD_MARKER,
        CommandType.COMPLETE_WORKFLOW,
        CommandType.FAIL_WORKFLOW,
        CommandType.CANCEL_WORKFLOW,
    }
)


def retries_beside(exe: dict[str, Any], commands: Iterable[wire.Command]) -> bool:
    """Whether the commands close a run whose retry policy or cron schedule
    may start a new run beside it (written in one transaction: not unlocked)."""
    closes = {c.type for c in commands}
    if exe.get("cron_schedule"):
        return bool(closes & {CommandType.COMPLETE_WORKFLOW, CommandType.FAIL_WORKFLOW})
    return bool(exe.get("retry_policy")) and CommandType.FAIL_WORKFLOW in closes


def writes_only_the_run(commands: Iterable[wire.Command]) -> bool:
    """Whether a completion's commands change nothing but its run (given no
    pending updates)."""
    return all(c.type in RUN_ONLY_COMMANDS for c in commands)


async def apply_commands(
    store: Store, rt: RunTxn, req: wire.RespondWorkflowTaskCompleted
) -> dict[str, Any]:
    """Record a workflow task completion and everything its commands ask for."""
    commands = req.commands
    check_commands(commands)
    closing = any(c.type in CLOSE_COMMANDS for c in commands)
    pending_updates = []
    if rt.exe.get("pending_updates"):
        pending_updates = await rt.conn.fetch(
            Q["pending_updates"], rt.namespace, rt.workflow_id, uuid.UUID(rt.run_id)
        )
    handled = {
        c.attributes.get("update_id")
        for c in commands
        if c.type in (CommandType.ACCEPT_UPDATE, CommandType.REJECT_UPDATE)
    }
    unhandled_updates = [u for u in pending_updates if u["update_id"] not in handled]
    if only_rejects(rt, commands):
        return await drop_rejecting_task(rt, req, unhandled_updates, _update_state)
    if rt.wt_speculative:
        # it becomes an ordinary task: its events, and this write's, have the
        # time its code saw (nothing was written since it started)
        rt.now = rt.exe["wt_started_at"] or rt.now
    rt.exe["pending_updates"] = bool(unhandled_updates)
    started_id = rt.exe["wt_started_event_id"]
    scheduled_id = rt.exe["wt_scheduled_event_id"]
    unseen = [b for b in rt.exe["buffered_events"] if b[0] not in OPERATOR_EVENTS]
    if closing and (unseen or unhandled_updates):
        # The workflow would close without seeing what arrived while it ran:
        # fail this task so the next one delivers those events first.
        rt.add_event(
            EventType.WORKFLOW_TASK_FAILED,
            {
                "scheduled_event_id": scheduled_id,
                "started_event_id": started_id,
                "cause": "UnhandledEvents",
                "failure": {
                    "message": "new events arrived while the workflow task ran; "
                    "retrying the task with them",
                    "type": "UnhandledEvents",
                },
                "identity": req.identity,
            },
        )
        rt.clear_workflow_task()
        rt.flush_buffered()
        rt.schedule_workflow_task()
        await rt.write_txn()
        return {"activity_tasks": [], "workflow_task": None}

    completed_id = rt.add_event(
        EventType.WORKFLOW_TASK_COMPLETED,
        {
            "scheduled_event_id": scheduled_id,
            "started_event_id": started_id,
            "identity": req.identity,
            **_version_attrs(req),
        },
    )
    if routing.task_completed(rt.exe, req.deployment, req.build_id, req.versioning_behavior):
        rt.versioning_changed = True
    worker_version = routing.tag(req.deployment, req.build_id)
    rt.clear_workflow_task()
    rt.exe["last_completed_wt_started"] = started_id
    rt.exe["wt_attempt"] = 1
    # The worker keeps the run cached and polls its sticky queue: send the
    # run's next workflow tasks there first.
    rt.exe["sticky_queue"] = req.sticky_task_queue
    rt.exe["sticky_timeout_s"] = req.sticky_schedule_to_start_s if req.sticky_task_queue else None
    eager: list[dict[str, Any]] = []
    new_run: RunTxn | None = None
    canceled_here = False  # an activity the workflow canceled closed in this write
    for cmd in commands:
        if not rt.running:
            break  # commands after a close command have nothing to act on
        a = cmd.attributes
        t = cmd.type
        if t == CommandType.SCHEDULE_ACTIVITY:
            await schedule_activity(
                rt, a, completed_id, eager, req.eager_activities, req.identity, worker_version
            )
        elif t == CommandType.REQUEST_CANCEL_ACTIVITY:
            canceled_here |= await request_cancel_activity(rt, a)
        elif t == CommandType.START_TIMER:
            duration = float(a.get("duration_s") or 0)
            if duration < 0:
                raise InvalidArgument("StartTimer duration_s must be >= 0")
            fire_at = rt.now + timedelta(seconds=duration)
            timer_id = str(a.get("timer_id") or "")
            rt.add_event(
                EventType.TIMER_STARTED,
                {"timer_id": timer_id, "duration_s": duration, "fire_at": fire_at.isoformat()},
            )
            rt.add_timer(USER_TIMER, timer_id, fire_at)
        elif t == CommandType.CANCEL_TIMER:
            _cancel_timer(rt, a)
        elif t == CommandType.RECORD_MARKER:
            rt.add_event(
                EventType.MARKER_RECORDED,
                {
                    "marker_name": a.get("marker_name", ""),
                    "details": a.get("details") or {},
                },
            )
        elif t == CommandType.ACCEPT_UPDATE:
            uid = str(a.get("update_id"))
            row = await rt.conn.fetchrow(
                Q["get_update"], rt.namespace, rt.workflow_id, uid, uuid.UUID(rt.run_id)
            )
            if row is None or row["state"] != "requested":
                raise InvalidArgument(f"no requested update {uid!r} to accept")
            rt.add_event(
                EventType.WORKFLOW_EXECUTION_UPDATE_ACCEPTED,
                {
                    "update_id": uid,
                    "name": row["name"],
                    "input": row["input"],
                    "identity": req.identity,
                },
            )
            await _update_state(rt, uid, "accepted")
        elif t == CommandType.REJECT_UPDATE:
            await _update_state(rt, str(a.get("update_id")), "rejected", failure=a.get("failure"))
        elif t == CommandType.COMPLETE_UPDATE:
            uid = str(a.get("update_id"))
            rt.add_event(
                EventType.WORKFLOW_EXECUTION_UPDATE_COMPLETED,
                {
                    "update_id": uid,
                    "result": a.get("result"),
                    "failure": a.get("failure"),
                },
            )
            await rt.conn.execute(
                Q["complete_update"],
                rt.namespace,
                rt.workflow_id,
                uid,
                uuid.UUID(rt.run_id),
                a.get("result"),
                a.get("failure"),
            )
            await rt.conn.execute(Q["notify_update"], f"{rt.namespace}/{rt.workflow_id}/{uid}")
        elif t == CommandType.COMPLETE_WORKFLOW:
            # a cron chain's next run waits for the schedule's next time
            new_run = await cron_run(rt, result=a.get("result"))
            attrs = close_attributes(rt, {"result": a.get("result")}, new_run)
            rt.close(EventType.WORKFLOW_EXECUTION_COMPLETED, attrs)
        elif t == CommandType.FAIL_WORKFLOW:
            # the chain's retry policy may start it again, else its cron schedule
            new_run = await retried_run(rt, a.get("failure")) or await cron_run(
                rt, failure=a.get("failure")
            )
            attrs = close_attributes(rt, {"failure": a.get("failure")}, new_run)
            rt.close(EventType.WORKFLOW_EXECUTION_FAILED, attrs)
        elif t == CommandType.CANCEL_WORKFLOW:
            # the reason the client gave travels with the close to its result
            asked = await rt.cancel_request()
            attrs = {"details": a.get("details")}
            if asked is not None and asked.get("reason"):
                attrs["reason"] = asked["reason"]
            rt.close(EventType.WORKFLOW_EXECUTION_CANCELED, attrs)
        elif t == CommandType.CONTINUE_AS_NEW:
            new_run = await _continue_as_new(store, rt, a)
        elif t == CommandType.UPSERT_SEARCH_ATTRIBUTES:
            await _upsert_search_attributes(rt, a)
        elif t == CommandType.MODIFY_WORKFLOW_PROPERTIES:
            await _modify_properties(rt, a)
        elif t == CommandType.PAUSE_WORKFLOW:
            pause_run(
                rt,
                reason=str(a.get("reason") or ""),
                identity=req.identity,
                request_id=None,
                source="workflow",
                completed_event_id=completed_id,
            )
    if not rt.running:
        # the write rejects the updates the run leaves open
        rt.fail_updates = {
            "message": f"workflow {rt.exe['status']} before the update completed",
            "type": "WorkflowClosed",
        }
    start_next = False
    if rt.running:
        flushed = rt.flush_buffered()
        if flushed or unhandled_updates or canceled_here:
            # the next task goes back to this worker only if it is of the version
            # the run's next task routes to
            hand_back = req.return_new_workflow_task and (
                routing.workflow_task_tag(rt.ns.deployments, rt.exe) == worker_version
            )
            rt.schedule_workflow_task(dispatch=not hand_back)
            start_next = hand_back and rt.wt_pending
        if start_next:
            rt.start_workflow_task(req.identity, store.config.suggest_continue_as_new_events)
    await rt.write_txn()
    if new_run is not None:
        await new_run.write_txn()
    response: dict[str, Any] = {
        "activity_tasks": [
            activity_task(r, rt.exe["workflow_type"], rt.ns.failover_version)
            for r in eager
            if not r.get("_canceled")
        ],
        "workflow_task": None,
    }
    if start_next:
        response["workflow_task"] = await build_workflow_task(rt.conn, rt)
    elif req.return_history_tail and rt.running and not rt.wt_pending:
        response["history_tail"] = history_tail(rt)
    return response


def history_tail(rt: RunTxn) -> dict[str, Any]:
    """The events ``rt`` wrote after its run's last completed workflow task
    started, as a task would carry them: all of them, since inputs that arrive
    while a task runs wait in the buffer until its completion writes them."""
    since = int(rt.exe["last_completed_wt_started"])
    at = rt.now.isoformat()
    version = rt.ns.failover_version
    return {
        "next_event_id": int(rt.exe["next_event_id"]),
        "events": [
            {
                "event_id": event_id,
                "event_type": event_type,
                "event_time": at,
                "version": version,
                "attributes": attributes,
            }
            for event_id, event_type, attributes in rt.events
            if event_id > since
        ],
    }
