"""What a run's describe says of its versioning, and what its tasks wait for.

A task waits for a poller of the version it routes to on its task queue; the
pollers are this region's own (``version_pollers``, see
:mod:`store.deployments`), so only the active region answers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import asyncpg

from store.deployments import POLLER_LIVE_S
from store.mutable_state import utcnow
from store.namespaces import Namespace
from store.sql import QUERIES as Q
from versioning import routing


async def run_versioning_view(
    conn: asyncpg.Connection,
    ns: Namespace,
    exe: dict[str, Any],
    activities: Sequence[Mapping[str, Any]] = (),
) -> dict[str, Any] | None:
    """What ``describe`` says of a run's versioning, and whether it waits for a
    poller: for its next workflow task, or for an activity attempt that is due
    (``activities``, the run's pending ones), on a version none of whose
    workers polls the task's queue."""
    if not exe.get("versioning") and not exe.get("deployment"):
        return None
    deps = ns.deployments
    v = exe.get("versioning") or {}
    view: dict[str, Any] = {
        "deployment": exe.get("deployment"),
        "build_id": exe.get("build_id"),
        "behavior": v.get("behavior"),
        "effective_behavior": exe.get("versioning_behavior"),
        "pinned_build": v.get("pinned_build"),
        "override": v.get("override"),
        "next_task_version": routing.workflow_task_tag(deps, exe),
        "target_version_changed": routing.target_version_changed(deps, exe),
        "waiting_for_poller": False,
    }
    # a paused run waits for an unpause, which a poller would not end
    if exe.get("status") != "running" or exe.get("paused"):
        return view
    waits: list[tuple[str, str, str]] = []
    tag = view["next_task_version"]
    if tag and exe.get("wt_scheduled_event_id") and not exe.get("wt_started_event_id"):
        waits.append(("the next workflow task", str(tag), str(exe["task_queue"])))
    now = utcnow()
    for a in activities:
        # an attempt due and not taken; one in retry backoff, paused, or asked
        # to cancel does not wait for a poller yet
        if a["state"] != "scheduled" or a["paused"] or a["cancel_requested"]:
            continue
        if a["scheduled_time"] > now:
            continue
        queue = str(a["task_queue"])
        atag = routing.activity_task_tag(deps, exe, queue)
        if atag:
            what = f"activity {a['activity_id']!r} ({a['activity_type']})"
            waits.append((what, atag, queue))
    notes: list[str] = []
    pollers: dict[str, list[asyncpg.Record]] = {}
    for what, wtag, queue in waits:
        dep, _, build = wtag.partition(":")
        if dep not in pollers:
            pollers[dep] = await conn.fetch(Q["pollers_of_deployment"], ns.name, dep, POLLER_LIVE_S)
        # the build's pollers of the task's queue: those of its other queues never take it
        seen = [r for r in pollers[dep] if r["build_id"] == build and r["task_queue"] == queue]
        if any(r["live"] for r in seen):
            continue
        # a poller's last_seen is written at most every few seconds; its
        # worker's stop is exact, and always later
        last = max((r["stopped_at"] or r["last_seen"] for r in seen), default=None)
        notes.append(
            f"{what} waits for a worker of {wtag} on task queue {queue!r}: "
            + (
                f"none has polled since {last.isoformat()}"
                if last
                else "none has ever polled this region"
            )
            + "; it is never handed to another version (start one, or override)"
        )
    if notes:
        view["waiting_for_poller"] = True
        view["note"] = "; ".join(notes)
    elif tag is None and exe.get("wt_scheduled_event_id") and not exe.get("wt_started_event_id"):
        hint = await _to_unversioned(conn, ns, exe)
        if hint is not None:
            view["note"] = hint
    return view


async def _to_unversioned(
    conn: asyncpg.Connection, ns: Namespace, exe: Mapping[str, Any]
) -> str | None:
    """Why a run whose next workflow task goes to unversioned workers is not
    taken by the versioned ones of its deployment that poll its queue (the
    first step of a deploy forgotten: a deployment takes work from its first
    `set-current`). Unversioned pollers are not recorded, so whether one
    polls the queue is not known: this is a hint, not ``waiting_for_poller``.
    """
    deps = ns.deployments
    dep = routing.run_deployment(deps, exe)
    if dep is None:
        return None
    state = routing.state_of(deps, dep)
    if state.target(str(exe["workflow_id"])) is not None:
        return None
    queue = str(exe["task_queue"])
    rows = await conn.fetch(Q["pollers_of_deployment"], ns.name, dep, POLLER_LIVE_S)
    builds = sorted(
        {f"{dep}:{r['build_id']}" for r in rows if r["live"] and r["task_queue"] == queue}
    )
    if not builds:
        return None
    why = "it has no current build" if state.current is None else "its ramp to them takes this id"
    return (
        f"the next workflow task goes to unversioned workers on task queue {queue!r}, as "
        f"deployment {dep!r} sends this run's work there ({why}); the workers of "
        f"{', '.join(builds)} polling the queue take only their own version's tasks: "
        f"`baton deployment set-current {dep} BUILD` sends the deployment's work to one"
    )
