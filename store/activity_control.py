"""Pausing, unpausing and resetting one activity of a running workflow.

A paused activity starts no new attempt: an attempt already running goes on
and learns of the pause from its next heartbeat response (``paused``); if it
fails, its next attempt waits for unpause. A retry policy with
``on_max_attempts="pause"`` pauses the activity instead of failing it when its
attempts run out. A reset starts the activity again from attempt 1, keeps its
heartbeat details unless told otherwise, and unpauses it unless
``keep_paused``; with an attempt running, the reset applies when that attempt
ends. A cancel request wins over both: an activity asked to cancel is left to
its cancel. Each change is a history event (who, why, when).
"""

from __future__ import annotations

import uuid
from typing import Any, TypeAlias

import asyncpg

from store.context import Store
from store.errors import InvalidArgument, TaskNotFound
from store.mutable_state import RunTxn
from store.run_lock import keep_request_id, lock_for_request
from store.sql import QUERIES as Q
from worker import wire
from worker.wire import EventType

Activity: TypeAlias = asyncpg.Record | dict[str, Any]


def activity_paused(act: Activity) -> bool:
    return bool(act.get("paused"))


def reset_pending(act: Activity) -> bool:
    return bool((act.get("control") or {}).get("reset_pending"))


def pauses_at_max_attempts(
    act: Activity, failure: dict[str, Any], error_type: str | None, budget_spent: bool
) -> bool:
    """Whether this failed attempt was the last its policy allows, and the policy
    says pause rather than fail (a non-retryable error still fails it).

    ``error_type`` is the type the policy's non-retryable types are matched
    against: None for a timeout of the server's.
    """
    policy = act["retry_policy"] or {}
    if policy.get("on_max_attempts") != "pause" or budget_spent:
        return False
    if failure.get("non_retryable") or (
        error_type is not None and error_type in (policy.get("non_retryable_error_types") or ())
    ):
        return False
    maximum = int(policy.get("maximum_attempts") or 0)
    return maximum > 0 and int(act["attempt"]) >= maximum


async def _set(
    rt: RunTxn,
    act: Activity,
    *,
    paused: bool,
    control: dict[str, Any],
    attempt: int | None = None,
    keep_details: bool = True,
    due: Any = None,
) -> None:
    await rt.conn.execute(
        Q["set_activity_control"],
        rt.namespace,
        rt.workflow_id,
        uuid.UUID(rt.run_id),
        act["scheduled_event_id"],
        paused,
        control or None,
        attempt,
        keep_details,
        due,
    )


def _event(rt: RunTxn, kind: EventType, act: Activity, **attrs: Any) -> None:
    rt.add_input_event(
        kind,
        {
            "scheduled_event_id": act["scheduled_event_id"],
            "activity_id": act["activity_id"],
            **attrs,
        },
    )


async def pause_for_retries(rt: RunTxn, act: Activity, failure: dict[str, Any]) -> None:
    reason = (
        f"attempt {act['attempt']} of {act['retry_policy'].get('maximum_attempts')} failed "
        f"({failure.get('type') or 'Error'}: {failure.get('message', '')}); its retry policy "
        "pauses it: reset it to try again"
    )
    info = {
        "reason": reason,
        "identity": "server",
        "since": rt.now.isoformat(),
        "source": "retries",
    }
    await _set(rt, act, paused=True, control={**(act.get("control") or {}), "pause": info})
    _event(
        rt,
        EventType.ACTIVITY_TASK_PAUSED,
        act,
        reason=reason,
        identity="server",
        request_id=None,
        source="retries",
    )


async def clear_reset(rt: RunTxn, act: Activity) -> None:
    control = {k: v for k, v in (act.get("control") or {}).items() if k != "reset_pending"}
    await _set(rt, act, paused=activity_paused(act), control=control)


async def _locked(
    store: Store,
    conn: asyncpg.Connection,
    namespace: str,
    workflow_id: str,
    activity_id: str,
    action: str,
    req: wire.ActivityControlRequest,
) -> tuple[RunTxn, asyncpg.Record] | str:
    """The run and its activity to change, or the run id a retried request
    (its request id seen) acted on."""
    rt = await lock_for_request(
        store, conn, namespace, workflow_id, req.run_id, req.request_id, kind=f"activity-{action}"
    )
    if isinstance(rt, str):
        return rt
    act = await conn.fetchrow(
        Q["activity_by_id"], namespace, workflow_id, uuid.UUID(rt.run_id), activity_id
    )
    if act is None:
        # not found, as Temporal answers it (and as completing an activity by id does)
        raise TaskNotFound(
            f"workflow {workflow_id!r} has no pending activity {activity_id!r} (it completed, or "
            "was never scheduled): `baton workflow describe` lists its pending activities"
        )
    return rt, act


def _answer(act: Activity, changed: bool, **extra: Any) -> dict[str, Any]:
    return {
        "workflow_id": act["workflow_id"],
        "run_id": str(act["run_id"]),
        "activity_id": act["activity_id"],
        "scheduled_event_id": act["scheduled_event_id"],
        "changed": changed,
        **extra,
    }


async def control_activity(
    store: Store,
    namespace: str,
    workflow_id: str,
    activity_id: str,
    action: str,
    req: wire.ActivityControlRequest,
) -> dict[str, Any]:
    """``action``: pause, unpause or reset."""
    if action not in ("pause", "unpause", "reset"):
        raise InvalidArgument(f"an activity is paused, unpaused or reset, not {action!r}")

    async def txn(conn: asyncpg.Connection) -> dict[str, Any]:
        got = await _locked(store, conn, namespace, workflow_id, activity_id, action, req)
        if isinstance(got, str):
            # a retried request: answered as the first was, from the activity now
            act = await conn.fetchrow(
                Q["activity_by_id"], namespace, workflow_id, uuid.UUID(got), activity_id
            )
            if act is None:  # it ended since
                return {
                    "workflow_id": workflow_id,
                    "run_id": got,
                    "activity_id": activity_id,
                    "changed": False,
                }
            if action == "reset":
                return _answer(act, False, paused=activity_paused(act), pending=reset_pending(act))
            return _answer(act, False, paused=activity_paused(act))
        rt, act = got
        kind = f"activity-{action}"
        if act["cancel_requested"]:
            # cancel wins: the activity is on its way out
            await keep_request_id(rt, req.request_id, kind)
            return _answer(act, False, note="the activity was asked to cancel")
        control = dict(act["control"] or {})
        who = {"reason": req.reason, "identity": req.identity, "request_id": req.request_id}
        scheduled = act["state"] == "scheduled"
        if action == "pause":
            if activity_paused(act):
                await keep_request_id(rt, req.request_id, kind)
                return _answer(act, False, paused=True)
            control["pause"] = {**who, "since": rt.now.isoformat(), "source": "operator"}
            await _set(rt, act, paused=True, control=control)
            _event(rt, EventType.ACTIVITY_TASK_PAUSED, act, **who, source="operator")
            result = _answer(act, True, paused=True)
        elif action == "unpause":
            if not activity_paused(act):
                await keep_request_id(rt, req.request_id, kind)
                return _answer(act, False, paused=False)
            control.pop("pause", None)
            await _set(rt, act, paused=False, control=control)
            _event(rt, EventType.ACTIVITY_TASK_UNPAUSED, act, **who)
            if scheduled:
                rt.add_task(
                    "activity", act["task_queue"], act["scheduled_event_id"], act["attempt"]
                )
            result = _answer(act, True, paused=False)
        else:
            paused = activity_paused(act) and req.keep_paused
            if not paused:
                control.pop("pause", None)
            keep = not req.reset_heartbeat_details
            if scheduled:
                control.pop("reset_pending", None)
                await _set(
                    rt,
                    act,
                    paused=paused,
                    control=control,
                    attempt=1,
                    keep_details=keep,
                    due=rt.now,
                )
                if not paused:
                    rt.add_task("activity", act["task_queue"], act["scheduled_event_id"], 1)
            else:
                control["reset_pending"] = True
                await _set(rt, act, paused=paused, control=control, keep_details=keep)
            _event(
                rt,
                EventType.ACTIVITY_TASK_RESET,
                act,
                **who,
                keep_heartbeat_details=keep,
                keep_paused=paused,
                pending=not scheduled,
            )
            result = _answer(act, True, paused=paused, pending=not scheduled)
        rt.seen_request(req.request_id, kind)
        await rt.write_txn()
        return result

    return await store.txn(txn)
