"""A reset in a losing branch, made again where the namespace is active now.

A reset writes a new run whose history copies the old run's up to the reset
point, then a ``WorkflowTaskFailed`` (cause ``ResetWorkflow``) naming the run
it reset, the point, the reason and the request id, then the signals it took
again from after the point. When a forced failover loses that new run, its
start is not a client's (the start it copies was applied here long ago):
what a client asked for is the reset, so the reset is made again here, on
this region's copy of the old run. The events the reset writes itself (the
copied history, the signals it takes again) come with it; the inputs the new
run received after its reset are re-applied to the new run made here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import asyncpg

from store.context import Store
from store.reset import reset_txn
from worker import wire
from worker.wire import EventType

RESET_CAUSE = "ResetWorkflow"
_STARTED = EventType.WORKFLOW_EXECUTION_STARTED.value
_SIGNALED = EventType.WORKFLOW_EXECUTION_SIGNALED.value
_TASK_FAILED = EventType.WORKFLOW_TASK_FAILED.value


@dataclass(frozen=True)
class LostReset:
    """The reset that made a losing branch's run."""

    #: the new run's WorkflowTaskFailed event naming the reset
    event: dict[str, Any]
    #: event ids the reset wrote itself: made again with it, not one by one
    covered: frozenset[int]
    reapply: str


def lost_reset(events: list[dict[str, Any]]) -> LostReset | None:
    """The reset whose new run ``events`` (a losing branch) are, if they are
    a whole run a reset made (they may be only its requests, as a conflict
    archive ships them: the reset's own event travels with them)."""
    if not events or int(events[0]["event_id"]) != 1 or events[0]["event_type"] != _STARTED:
        return None
    for i, e in enumerate(events):
        attrs = e.get("attributes") or {}
        if not (
            e["event_type"] == _TASK_FAILED
            and attrs.get("cause") == RESET_CAUSE
            and attrs.get("reset_from_run_id")
            and isinstance(attrs.get("started_event_id"), int)
        ):
            continue
        covered = {int(x["event_id"]) for x in events[: i + 1]}
        # the signals it took again follow it, before its workflow task is
        # scheduled: later ones (after that event) are the new run's own
        nxt = int(e["event_id"]) + 1
        for x in events[i + 1 :]:
            if int(x["event_id"]) != nxt or x["event_type"] != _SIGNALED:
                break
            covered.add(nxt)
            nxt += 1
        took_again = nxt > int(e["event_id"]) + 1 or bool(attrs.get("reapplied_updates"))
        return LostReset(e, frozenset(covered), "all" if took_again else "none")
    return None


async def redo_reset(
    store: Store, conn: asyncpg.Connection, namespace: str, workflow_id: str, reset: LostReset
) -> str:
    """Make the reset again here; the id of the run it makes (or made, if its
    request id is here already)."""
    attrs = reset.event["attributes"]
    message = str((attrs.get("failure") or {}).get("message") or "")
    reason = message.removeprefix("reset: ")[:1000] or "a reset made in a region that was lost"
    req = wire.ResetRequest(
        run_id=str(attrs["reset_from_run_id"]),
        event_id=int(attrs["started_event_id"]),
        reapply=reset.reapply,
        reason=reason,
        request_id=attrs.get("request_id") or None,
        identity=str(attrs.get("identity") or "")[:1000],
    )
    done = await reset_txn(store, conn, namespace, workflow_id, req)
    return done.run_id
