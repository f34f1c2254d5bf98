"""Describe and list schedules, folded from each schedule's own history.

``describe`` folds the schedule workflow's history (its start input, its last
recorded snapshot, the signals since), so it needs no worker and reads the
same in every region. :mod:`store.schedules` makes the changes.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError

from scheduler import definition
from scheduler.definition import iso, parse_time
from scheduler.policy import Counters
from scheduler.spec import ScheduleSpec, SpecError, jittered, next_fires
from scheduler.workflow import PREFIX, REPORT_ACTIVITY, WORKFLOW_TYPE, schedule_workflow_id
from store.clock import utcnow
from store.context import Store
from store.errors import ScheduleNotFound
from store.namespaces import get_namespace
from store.sql import QUERIES as Q
from store.visibility import listing
from store.visibility.query import split_order
from worker import wire
from worker.converter import PayloadConverter
from worker.wire import EventType

_CONVERTER = PayloadConverter()
#: How many of a schedule's next fires describe lists.
NEXT_FIRES = 10


def not_found(namespace: str, schedule_id: str) -> ScheduleNotFound:
    """The error of a schedule id the namespace does not hold."""
    return ScheduleNotFound(
        f"no schedule {schedule_id!r} in namespace {namespace!r}: `baton schedule list` shows them"
    )


def decode_payload(payload: Any) -> Any:
    return (
        None if payload is None else _CONVERTER.from_payload(wire.Payload.model_validate(payload))
    )


def fold(events: list[dict[str, Any]]) -> dict[str, Any]:
    """A schedule's state from its current run's history."""
    out: dict[str, Any] = {}
    signals = applied = 0
    sent: list[dict[str, Any]] = []
    for e in events:
        kind, attrs = e["event_type"], e["attributes"]
        if kind == EventType.WORKFLOW_EXECUTION_STARTED.value:
            inp = decode_payload((attrs.get("input") or [None])[0]) or {}
            st = inp.get("state") or {}
            out.update(
                schedule=inp.get("schedule"),
                created_at=inp.get("created_at"),
                paused=st.get("paused", bool(inp.get("paused"))),
                note=st.get("note", inp.get("note") or ""),
                paused_at=st.get("paused_at"),
                last_processed=st.get("last_processed", inp.get("created_at")),
                # before its first workflow task: the counters it starts with
                counters=st.get("counters") or vars(Counters()).copy(),
                # before its first workflow task the run has no state yet: the
                # policy's limit is what is left
                remaining_actions=st.get(
                    "remaining_actions",
                    ((inp.get("schedule") or {}).get("policy") or {}).get("limited_actions"),
                ),
                recent=st.get("recent") or [],
                running=[{"workflow_id": w, **i} for w, i in (st.get("running") or {}).items()],
                running_count=len(st.get("running") or {}),
                buffer=(st.get("buffer") or [])[:10],
                buffered=len(st.get("buffer") or []),
            )
        elif (
            kind == EventType.ACTIVITY_TASK_SCHEDULED.value
            and attrs.get("activity_type") == REPORT_ACTIVITY
        ):
            snap = decode_payload((attrs.get("input") or [None, None, None])[2]) or {}
            snap.pop("schedule_id", None)
            applied = snap.pop("signals_applied", signals)
            out.update(snap)
        elif kind == EventType.WORKFLOW_EXECUTION_SIGNALED.value:
            signals += 1
            sent.append(e)
    out["pending_signals"] = max(signals - applied, 0)
    for e in sent[applied:]:
        _as_taken(out, e)
    return out


def _as_taken(out: dict[str, Any], event: dict[str, Any]) -> None:
    """Show a pause, an unpause or an update the schedule has not taken yet
    as it will take it (in the order sent), so a describe or list right after
    the call says what the call did (as Temporal's describe does); the fires
    and counts they lead to wait for the schedule (``pending_signals``)."""
    attrs = event["attributes"]
    try:
        body = decode_payload((attrs.get("input") or [None])[0])
    except (ValidationError, ValueError, TypeError):
        return  # not sent by the schedule API: the schedule ignores it too
    if not isinstance(body, dict):
        return
    name = attrs.get("signal_name")
    if name == "update" and isinstance(body.get("schedule"), dict):
        try:
            definition.load(body["schedule"])
        except (SpecError, KeyError, TypeError, ValueError, AttributeError):
            return  # as the schedule ignores a definition it cannot load
        out["schedule"] = body["schedule"]
    elif name == "pause":
        if not out.get("paused"):
            at = event.get("event_time")
            out["paused_at"] = iso(at) if isinstance(at, datetime) else at
        out["paused"], out["note"] = True, body.get("note") or ""
    elif name == "unpause" and out.get("paused"):
        out["paused"], out["note"], out["paused_at"] = False, body.get("note") or "", None


async def describe_schedule(store: Store, namespace: str, schedule_id: str) -> dict[str, Any]:
    wid = schedule_workflow_id(schedule_id)
    async with store.pool.acquire() as conn:
        await get_namespace(conn, namespace)
        row = await conn.fetchrow(Q["get_current_execution"], namespace, wid)
        if (
            row is None
            or row["workflow_type"] != WORKFLOW_TYPE
            or row["status"]
            not in (
                "running",
                "continued_as_new",
            )
        ):
            raise not_found(namespace, schedule_id)
        # one snapshot: a task's end moves what waited behind it into the history
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            events = [
                dict(e)
                for e in await conn.fetch(
                    Q["history_from"], namespace, wid, row["run_id"], 1, 1_000_000
                )
            ]
            # a call that came while the schedule's workflow task ran waits
            # behind it, outside the history: it shows all the same, in order
            waiting = await conn.fetch(Q["buffered_of_run"], namespace, wid, row["run_id"], 0)
        out = await _folded(conn, namespace, row, events, waiting)
        ids = [r["workflow_id"] for r in out.get("running") or []]
        live = {
            x["workflow_id"]: x for x in await conn.fetch(Q["current_status_of"], namespace, ids)
        }
    out["running"] = [
        {
            **r,
            "status": live[r["workflow_id"]]["status"] if r["workflow_id"] in live else "unknown",
            "paused": bool(r["workflow_id"] in live and live[r["workflow_id"]]["paused"]),
        }
        for r in out.get("running") or []
    ]
    sched = definition.load(out["schedule"])
    nexts = _next_fires(out, sched.spec, schedule_id, NEXT_FIRES)
    out["next_fires"] = [iso(t) for t in nexts]
    # when each acts: later by its jitter (Temporal's future action times)
    out["next_action_times"] = [iso(jittered(sched.spec, schedule_id, t)) for t in nexts]
    out["schedule_id"] = schedule_id
    out["workflow_id"] = wid
    out["run_id"] = str(row["run_id"])
    return out


async def _folded(
    conn: Any,
    namespace: str,
    row: Any,
    events: list[dict[str, Any]],
    waiting: list[Any],
) -> dict[str, Any]:
    """The state of schedule run ``row`` from its events (all, or its start, its
    last report and its signals) and the signals ``waiting`` behind its task."""
    now = utcnow()
    events += [
        {"event_type": b["event_type"], "attributes": b["attributes"], "event_time": now}
        for b in waiting
        if b["event_type"] == EventType.WORKFLOW_EXECUTION_SIGNALED.value
    ]
    out = fold(events)
    if not out.get("created_at") and row["first_run_id"] != row["run_id"]:
        # a run an earlier release continued as new without it: the
        # schedule was made when its first run started (while kept)
        first = await conn.fetchrow(
            Q["get_execution"], namespace, row["workflow_id"], row["first_run_id"]
        )
        out["created_at"] = iso(first["start_time"]) if first else None
    return out


def _next_fires(
    out: dict[str, Any], spec: ScheduleSpec, schedule_id: str, most: int
) -> list[datetime]:
    """Up to ``most`` fires the schedule folded into ``out`` will act on."""
    now = utcnow()
    last = parse_time(out.get("last_processed"), "last_processed") or now
    left = out.get("remaining_actions")
    # scheduled fires waiting in the buffer use up actions left too (a
    # schedule of an earlier release reports the first few it holds)
    shown = sum(1 for f in out.get("buffer") or [] if f.get("kind") == "scheduled")
    waiting = out.pop("buffered_scheduled", shown)
    if left is not None:
        left -= waiting
    # a schedule acts on as many more fires as it has actions left (as Temporal's
    # future action times), none when used up; past its end the spec yields none
    count = most if left is None else max(min(most, left), 0)
    return _upcoming(spec, schedule_id, last, now, count)


def _upcoming(
    spec: ScheduleSpec, schedule_id: str, last: datetime, now: datetime, count: int
) -> list[datetime]:
    """The next ``count`` fires not yet acted on, after ``last``: one whose time
    has passed but whose jittered time has not is still to come."""
    if count <= 0:
        return []
    waiting = _waiting_out_jitter(spec, schedule_id, last, now)
    return [*waiting, *next_fires(spec, max(last, now), count - len(waiting))]


def _waiting_out_jitter(
    spec: ScheduleSpec, schedule_id: str, last: datetime, now: datetime
) -> list[datetime]:
    """The fire after ``last`` whose time has passed and whose jittered time has
    not, if any. Only the last fire up to ``now`` can be one (a fire never acts
    past the next), and it is at most the jitter old: look back in growing steps."""
    if spec.jitter <= timedelta(0):
        return []
    back = timedelta(seconds=1)
    while True:
        start = max(last, now - min(back, spec.jitter))
        found = next_fires(spec, start, 1)
        if found and found[0] <= now:
            t = found[0]
            for _ in range(1000):  # to the last fire up to now
                later = next_fires(spec, t, 1)
                if not later or later[0] > now:
                    return [t] if jittered(spec, schedule_id, t) > now else []
                t = later[0]
            return []
        if start <= max(last, now - spec.jitter):
            return []
        back *= 2


async def list_schedules(
    store: Store,
    namespace: str,
    *,
    query: str = "",
    page_size: int = 100,
    page_token: str | None = None,
) -> dict[str, Any]:
    """Open schedules, optionally narrowed by a list query over the schedule workflows."""
    base = f"WorkflowType = '{WORKFLOW_TYPE}' AND ExecutionStatus = 'Running'"
    if query.strip():
        async with store.pool.acquire() as conn:
            ns = await get_namespace(conn, namespace)
        # INVALID_QUERY names its token in the query as given
        where, order = split_order(query, ns.active_search_attributes())
        base = f"{base} AND ({where}) {order}" if where.strip() else f"{base} {order}"
    rows, token = await listing.list_runs(
        store,
        namespace,
        base,
        page_size=page_size,
        page_token=page_token,
        include_system=True,
        # the user's query was checked on its own: what wraps it may pass the limit
        max_chars=len(base),
    )
    states = await _list_states(store, namespace, rows)
    out = []
    for r in rows:
        sid = r["workflow_id"][len(PREFIX) :]
        d = states[r["workflow_id"]]
        if not d.get("schedule"):
            continue  # deleted between the list and here: its history went with it
        sched = definition.load(d["schedule"])
        nexts = _next_fires(d, sched.spec, sid, 1)
        out.append(
            {
                "schedule_id": sid,
                "paused": d.get("paused"),
                "note": d.get("note"),
                "workflow_type": d["schedule"]["action"]["workflow_type"],
                "overlap": d["schedule"]["policy"]["overlap"],
                "next_fire": iso(nexts[0]) if nexts else None,
                "running": d.get("running_count", 0),
                "actions": (d.get("counters") or {}).get("actions", 0),
                # when the schedule was made, not when its workflow last
                # continued as new
                "start_time": _created(d.get("created_at")) or r["start_time"].isoformat(),
            }
        )
    return {"schedules": out, "next_page_token": token}


async def _list_states(store: Store, namespace: str, rows: list[Any]) -> dict[str, dict[str, Any]]:
    """Each listed schedule run's state, folded as describe folds it from what
    it needs of the history (its start, last report and signals): reading every
    run's whole history made a list of idle schedules take seconds."""
    wids = [r["workflow_id"] for r in rows]
    runs = [r["run_id"] for r in rows]
    events: dict[str, list[dict[str, Any]]] = {w: [] for w in wids}
    waiting: dict[str, list[Any]] = {w: [] for w in wids}
    async with store.pool.acquire() as conn:
        # one snapshot: a task's end moves what waited behind it into the history
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            for e in await conn.fetch(
                Q["schedule_list_events"], namespace, wids, runs, REPORT_ACTIVITY
            ):
                events[e["workflow_id"]].append(dict(e))
            for b in await conn.fetch(Q["schedule_list_buffered"], namespace, wids, runs):
                waiting[b["workflow_id"]].append(b)
        return {
            r["workflow_id"]: await _folded(
                conn, namespace, r, events[r["workflow_id"]], waiting[r["workflow_id"]]
            )
            for r in rows
        }


def _created(created_at: str | None) -> str | None:
    """A schedule's ``created_at`` as list's ``start_time`` gives times (``+00:00``)."""
    t = parse_time(created_at, "created_at") if isinstance(created_at, str) else None
    return t.isoformat() if t else None
