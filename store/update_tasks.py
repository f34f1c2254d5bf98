"""Workflow tasks for updates alone: speculative, kept out of history until needed.

An update that finds no workflow task pending schedules one that is not
written to history (Temporal's speculative workflow task): its scheduled and
started events have the ids they will take, from the run's ``next_event_id``
on, and the worker is handed them as if written. A completion that only
rejects updates drops the task: the run's history, its ``next_event_id`` and
what replicates stay exactly as they were, so a client retrying a rejected
update cannot grow the run toward ``history_events_max``.

Anything else makes it an ordinary task in the same write: any event of the
run (a signal, timer, activity result, cancel, terminate, pause, the task's
timeout or failure, a completion that accepts an update or has other
commands) writes the task's events first (``RunTxn.add_event``). No event is
ever written on top of a speculative task, so the outbox row of a write
always carries a run row whose task matches its history, and a standby
never learns of a speculative task: after a failover the client's retry of
the update (same id) schedules one in the new region.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from store.sql import QUERIES as Q
from worker import wire
from worker.wire import CommandType, EventType

if TYPE_CHECKING:
    import asyncpg

    from store.mutable_state import RunTxn


class SuggestAt:
    """History size from which a started workflow task suggests continue-as-new.

    As in Temporal, by size as well as by length: a run that grows by large
    payloads is told before ``history_bytes_max`` terminates it. The server
    sets it from ``history_bytes_warn``, where ``describe`` starts to warn.
    """

    history_bytes: ClassVar[int] = 10 * 1024 * 1024


def suggest_can(exe: dict[str, Any], history_length: int, suggest_after: int) -> bool:
    """Whether a workflow task started at ``history_length`` suggests continue-as-new."""
    size = int(exe.get("history_size_bytes") or 0)
    return history_length >= suggest_after or size >= SuggestAt.history_bytes


def speculative_events(
    exe: dict[str, Any], suggest_after: int
) -> list[tuple[EventType, dict[str, Any]]]:
    """The events of a run's speculative task as it stands: scheduled, and
    started if a worker took it. The worker is handed these; they are written
    with these attributes if the task becomes an ordinary one."""
    events: list[tuple[EventType, dict[str, Any]]] = [
        (
            EventType.WORKFLOW_TASK_SCHEDULED,
            {
                "task_queue": exe["task_queue"],
                "attempt": int(exe["wt_attempt"]),
                "timeout_s": float(exe["task_timeout_s"]),
            },
        )
    ]
    started = exe["wt_started_event_id"]
    if started is not None:
        events.append(
            (
                EventType.WORKFLOW_TASK_STARTED,
                {
                    "scheduled_event_id": int(exe["wt_scheduled_event_id"]),
                    "identity": exe["wt_identity"],
                    "history_length": int(started),
                    "suggest_continue_as_new": suggest_can(exe, int(started), suggest_after),
                },
            )
        )
    return events


def speculative_view(rt: RunTxn) -> list[dict[str, Any]]:
    """The speculative task's events as a poll hands them to a worker."""
    at = rt.exe["wt_started_at"] or rt.now
    first = int(rt.exe["wt_scheduled_event_id"])
    return [
        {
            "event_id": first + i,
            "event_type": event_type.value,
            "event_time": at.isoformat(),
            "version": rt.ns.failover_version,
            "attributes": attributes,
        }
        for i, (event_type, attributes) in enumerate(
            speculative_events(rt.exe, rt.suggest_continue_as_new_events)
        )
    ]


def only_rejects(rt: RunTxn, commands: list[wire.Command]) -> bool:
    """Whether a completion of ``rt``'s started task drops it: the task is
    speculative and its commands only reject updates (or are none)."""
    return (
        rt.wt_speculative
        and rt.wt_started
        and all(c.type == CommandType.REJECT_UPDATE for c in commands)
    )


async def drop_rejecting_task(
    rt: RunTxn,
    req: wire.RespondWorkflowTaskCompleted,
    unhandled_updates: list[asyncpg.Record],
    set_state: Any,
) -> dict[str, Any]:
    """Complete a speculative task that only rejects updates: no event is
    written, the updates are rejected, and updates that came while it ran
    get a speculative task of their own."""
    for cmd in req.commands:
        a = cmd.attributes
        await set_state(rt, str(a.get("update_id")), "rejected", failure=a.get("failure"))
    rt.exe["pending_updates"] = bool(unhandled_updates)
    rt.clear_workflow_task()
    rt.exe["sticky_queue"] = req.sticky_task_queue
    rt.exe["sticky_timeout_s"] = req.sticky_schedule_to_start_s if req.sticky_task_queue else None
    if unhandled_updates:
        rt.schedule_workflow_task(speculative=True)
    await rt.write_txn()
    # a query that waited for the task (none should: see store.messages) goes on
    await rt.conn.execute(Q["notify_history"], f"{rt.namespace}/{rt.workflow_id}")
    return {"activity_tasks": [], "workflow_task": None}
