"""A workflow task the worker ran ahead, recorded with the activity result that schedules it.

A worker that caches a run knows its history up to the activity it just
finished (the :class:`~worker.wire.HistoryTail` of the run's last workflow task
completion). It builds the next task's events itself (the activity's started
and completed events, the task's scheduled and started events), runs the
workflow code on them, and sends the commands with the activity's result. If
the run is exactly as the worker assumed, this module records the result, the
task, its completion and its commands in the write that would have recorded
the result alone: one write and one call where there were two of each.

Otherwise the result is recorded alone, as for a plain completion, and the
answer says why (the worker then drops its instance and runs the real task).
History is the same either way: a speculative task's events are the ones the
server would have handed out, with the time the workflow code saw.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from store.commands import apply_commands, retries_beside
from store.context import Store
from store.errors import InvalidArgument
from store.mutable_state import RunTxn
from store.update_tasks import suggest_can
from worker import wire

#: How far ahead of the server's clock, and how far behind it, the time a
#: worker gives its speculative task may be. Outside that the task is refused:
#: a worker's clock far off would otherwise set the run's time. Behind is
#: wider: the task ran before its request waited its turn on a busy server.
SPECULATION_AHEAD_S = 1.0
SPECULATION_BEHIND_S = 10.0

#: Events a speculative task adds before its completion: the activity's
#: started and completed events, the task's scheduled and started events.
EVENTS_BEFORE_COMPLETION = 4


class Refused(Exception):
    """The run is not as the speculative task assumed; the result is recorded alone.

    ``reason`` is one of a few fixed words (a metric's label); ``detail`` says
    more, for the worker's log.
    """

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail

    def answer(self) -> dict[str, str]:
        """The fields of the completion's answer that say so."""
        return {
            "speculation": "refused",
            "speculation_reason": self.reason,
            "speculation_refused": self.detail,
        }


def started_time(spec: wire.SpeculativeWorkflowTask) -> datetime:
    """The task's time; InvalidArgument if it is not an ISO 8601 time with a zone."""
    try:
        at = datetime.fromisoformat(spec.started_time)
    except ValueError:
        at = None
    if at is None or at.tzinfo is None:
        raise InvalidArgument(
            f"workflow_task.started_time {spec.started_time!r} is not an ISO 8601 time with "
            "a zone (send datetime.now(UTC).isoformat())"
        )
    return at


def refusal(
    store: Store, rt: RunTxn, spec: wire.SpeculativeWorkflowTask, at: datetime
) -> Refused | None:
    """Why ``spec`` does not fit the run as read (None: it fits)."""
    e = rt.exe
    if int(e["next_event_id"]) != spec.next_event_id or rt.ns.failover_version != spec.version:
        return Refused(
            "stale",
            f"the run's next event is {e['next_event_id']} (version {rt.ns.failover_version}), "
            f"not {spec.next_event_id} (version {spec.version}): its history moved on",
        )
    if (
        rt.wt_pending
        or e["buffered_events"]
        or int(e["buffered_seq"]) != int(e["buffered_flushed_seq"])
        or e["pending_updates"]
        or int(e["wt_attempt"]) != 1
    ):
        return Refused("pending", "a workflow task, input or update is pending on the run")
    if e["paused"]:
        return Refused("paused", "the run is paused")
    if retries_beside(e, spec.commands):
        return Refused("retry", "the run fails and its retry policy starts a new run beside it")
    if rt.ns.deployments:
        return Refused("versioned", "the namespace routes tasks by worker version")
    started_id = spec.next_event_id + EVENTS_BEFORE_COMPLETION - 1
    if (
        suggest_can(e, started_id, store.config.suggest_continue_as_new_events)
        or started_id > store.config.history_events_max
        or int(e["history_size_bytes"]) > store.config.history_bytes_max
    ):
        return Refused("history", "the run's history is near a limit")
    ahead = (at - rt.now).total_seconds()
    if ahead > SPECULATION_AHEAD_S or -ahead > SPECULATION_BEHIND_S:
        return Refused(
            "clock",
            f"the task's time is {abs(ahead):.3f} s {'ahead of' if ahead > 0 else 'behind'} "
            f"the server's clock (at most {SPECULATION_AHEAD_S} s ahead and "
            f"{SPECULATION_BEHIND_S} s behind are taken)",
        )
    return None


async def record(
    store: Store,
    rt: RunTxn,
    req: wire.RespondActivityTaskCompleted,
    spec: wire.SpeculativeWorkflowTask,
    at: datetime,
) -> dict[str, Any]:
    """Record the speculative task ``spec`` that :func:`refusal` let through
    after the activity's result (added to ``rt`` by the caller), in one write;
    the answer is a workflow task completion's. Raises :class:`Refused` if the
    commands are invalid (nothing is written then)."""
    rt.now = at  # every event of the write has the time the workflow code saw
    rt.schedule_workflow_task(dispatch=False)
    started_id = rt.start_workflow_task(req.identity, store.config.suggest_continue_as_new_events)
    if started_id != spec.next_event_id + EVENTS_BEFORE_COMPLETION - 1:
        raise Refused("stale", f"the task would start at event {started_id}")
    completion = wire.RespondWorkflowTaskCompleted(
        task_token=req.task_token,
        commands=spec.commands,
        identity=req.identity,
        eager_activities=spec.eager_activities,
        return_new_workflow_task=True,
        return_history_tail=True,
        sticky_task_queue=spec.sticky_task_queue,
        sticky_schedule_to_start_s=spec.sticky_schedule_to_start_s,
    )
    try:
        done = await apply_commands(store, rt, completion)
    except InvalidArgument as exc:
        if rt.written:
            raise
        raise Refused("commands", f"the task's commands are invalid: {exc}") from None
    return {**done, "speculation": "accepted"}
