"""Worker deployments: who polls each version, current and ramping, drainage.

A namespace's deployments live on its row (so they replicate with it and only
its active region changes them): for each deployment its current and ramping
builds, a revision every change bumps, and the versions its workers have
polled with the task queues each covers. Which pollers are alive is this
region's own knowledge (``version_pollers``). A version's drainage is read
from the runs pinned to it, the rows every close writes, so it is exact the
moment the last one closes.
"""

from __future__ import annotations

import time
import uuid
from datetime import datetime
from typing import Any

import asyncpg

from store.context import Store
from store.errors import (
    DeploymentNotFound,
    InvalidArgument,
    NamespaceNotActive,
    NoPollers,
    RevisionMismatch,
)
from store.mutable_state import WT_RETRY, RunTxn, utcnow
from store.namespaces import get_namespace, lock_namespace
from store.run_lock import lock_for_request, run_acted_on
from store.sql import QUERIES as Q
from versioning import routing
from versioning.rules import (
    DeploymentState,
    Override,
    Version,
    VersioningError,
    version_status,
)
from versioning.rules import RevisionMismatch as _Mismatch
from worker import wire
from worker.wire import EventType

#: A poller counts as live this long after its last poll: a long-poll lasts
#: up to 30 s, and a server records a poller at most every 10 s.
POLLER_LIVE_S = 45.0
_TOUCH_EVERY_S = 10.0


def check_version(deployment: str, build_id: str | None) -> None:
    """Refuse a deployment or build name the server cannot route (INVALID_ARGUMENT)."""
    try:
        Version(deployment, build_id or "unversioned")
    except VersioningError as exc:
        raise InvalidArgument(str(exc)) from None


def require_version(deps: routing.Deployments, deployment: str, build_id: str) -> None:
    """Refuse a build the deployment has no version of: work routed there (new
    work, or a run pinned to it) would wait for a worker that never polled."""
    versions = (deps.get(deployment) or {}).get("versions") or {}
    if build_id not in versions:
        raise DeploymentNotFound(
            f"deployment {deployment!r} has no version {build_id!r}: its versions are "
            f"{', '.join(sorted(versions)) or 'none'}; name one of them, or start a worker with "
            f"deployment=({deployment!r}, {build_id!r}) first"
        )


def require_queue(deps: routing.Deployments, deployment: str, build_id: str, queue: str) -> None:
    """Refuse to send a run's workflow tasks to a build none of whose workers
    polls the run's task queue: they would wait there for ever, while the
    build's pollers on its other queues look alive."""
    if not routing.queue_in_version(deps, deployment, build_id, queue):
        polled = (deps[deployment]["versions"][build_id].get("task_queues")) or []
        raise InvalidArgument(
            f"{deployment}:{build_id} polls task queue(s) {', '.join(polled) or 'none'}, not the "
            f"run's {queue!r}, so its tasks would wait for ever: start a worker of "
            f"{deployment}:{build_id} on {queue!r} first, or name a build that polls it"
        )


# --------------------------------------------------------------------------- pollers


def _due(store: Store, key: tuple[str, ...]) -> bool:
    now = time.monotonic()
    if now - store.poller_seen.get(key, -1e9) < _TOUCH_EVERY_S:
        return False
    store.poller_seen[key] = now
    return True


async def register_poller(store: Store, namespace: str, req: wire.PollRequest) -> None:
    """Record a versioned poller; a version (or a task queue of one) polled for
    the first time joins the namespace's deployments."""
    if req.deployment is None or req.build_id is None:
        if req.deployment is not None or req.build_id is not None:
            raise InvalidArgument("a versioned poll names both its deployment and its build id")
        return
    dep, build = req.deployment, req.build_id
    check_version(dep, build)
    if req.sticky:
        return  # a worker's own queue: its pollers are counted on its task queue
    queue = req.task_queue
    key = (namespace, dep, build, queue, req.identity)
    if not _due(store, key):
        return

    async def txn(conn: asyncpg.Connection) -> None:
        await conn.execute(Q["touch_poller"], *key)
        ns = await get_namespace(conn, namespace)
        if routing.queue_in_version(ns.deployments, dep, build, queue):
            return
        ns = await lock_namespace(store, conn, namespace, exclusive=True)
        deps = dict(ns.deployments)
        d = dict(deps.get(dep) or {"current": None, "revision": 0})
        versions = dict(d.get("versions") or {})
        v = dict(versions.get(build) or {"created_at": utcnow().isoformat()})
        v["task_queues"] = sorted({*v.get("task_queues", []), queue})
        versions[build] = v
        d["versions"] = versions
        deps[dep] = d
        await _save(conn, namespace, deps)

    await store.txn(txn)


async def pollers_stopped(store: Store, namespace: str, req: wire.PollersStoppedRequest) -> None:
    if (req.deployment is None) != (req.build_id is None):
        raise InvalidArgument("a versioned worker names both its deployment and its build id")
    for key in [k for k in store.poller_seen if k[0] == namespace and k[4] == req.identity]:
        del store.poller_seen[key]
    async with store.pool.acquire() as conn:
        # its task queue rows (`baton task-queue describe`) show it stopped too
        await conn.execute(Q["queue_pollers_stopped"], namespace, req.identity)
        if req.deployment is not None:
            await conn.execute(
                Q["pollers_stopped"], namespace, req.deployment, req.build_id, req.identity
            )


# --------------------------------------------------------------------------- routing state


async def _save(conn: asyncpg.Connection, namespace: str, deps: dict[str, Any]) -> None:
    await conn.execute(Q["set_namespace_deployments"], namespace, deps)
    await conn.execute(Q["outbox_namespace"], namespace)


async def _require_pollers(
    conn: asyncpg.Connection,
    namespace: str,
    deployment: str,
    build: str,
    replaced: str | None,
    versions: dict[str, Any],
) -> None:
    """Refuse to route work to ``build`` unless its workers poll, and poll every
    task queue of the build whose work it takes (``replaced``, the current
    one): new work on a queue it left would wait there for ever."""
    rows = await conn.fetch(Q["pollers_of_deployment"], namespace, deployment, POLLER_LIVE_S)
    polled = {r["task_queue"] for r in rows if r["live"] and r["build_id"] == build}
    if not polled:
        raise NoPollers(
            f"no worker of {deployment}:{build} has polled in the last {POLLER_LIVE_S:.0f} s: "
            "start one, or pass --allow-no-pollers to route work there anyway"
        )
    if replaced is None or replaced == build:
        return
    missing = sorted(set((versions.get(replaced) or {}).get("task_queues") or ()) - polled)
    if missing:
        raise NoPollers(
            f"no worker of {deployment}:{build} polls task queue(s) {', '.join(missing)}, which "
            f"{deployment}:{replaced} (current) polls: their new work would wait there; start "
            f"{deployment}:{build} workers on them, or pass --allow-no-pollers to route work "
            "there anyway"
        )


async def set_version(
    store: Store,
    namespace: str,
    deployment: str,
    which: str,
    req: wire.SetDeploymentVersionRequest,
) -> dict[str, Any]:
    """Make ``req.build_id`` the deployment's current (``which`` = "current")
    or ramping version, and move the waiting tasks that follow it."""
    check_version(deployment, req.build_id)

    async def txn(conn: asyncpg.Connection) -> dict[str, Any]:
        ns = await lock_namespace(store, conn, namespace, exclusive=True)
        deps = dict(ns.deployments)
        if deployment not in deps:
            raise DeploymentNotFound(
                f"no worker of deployment {deployment!r} has polled namespace {namespace!r}: "
                "start one with Worker(deployment=(NAME, BUILD)) first"
            )
        before = dict(deps)
        d = dict(deps[deployment])
        versions = dict(d.get("versions") or {})
        b = req.build_id
        if b is not None:
            require_version(deps, deployment, b)
        state = routing.state_of(deps, deployment)
        try:
            if which == "current":
                new = state.set_current(b, expect_revision=req.expect_revision)
            else:
                if req.percent is None:
                    # no default: taken as 100 it sent all new work to the build
                    raise InvalidArgument(
                        "a ramp names its percent (0-100; 0 holds the build with no ids, "
                        "and 0 with no build ends the ramp)"
                    )
                new = state.set_ramping(b, req.percent, expect_revision=req.expect_revision)
        except _Mismatch as exc:
            raise RevisionMismatch(str(exc), revision=state.revision) from None
        except VersioningError as exc:
            raise InvalidArgument(str(exc)) from None
        if new is state:
            # already so: a retried or repeated step changes nothing, not even the revision
            return {**_state_view(deployment, new), "changed": False, "tasks_rerouted": 0}
        if b is not None and b in (new.current, new.ramping) and not req.allow_no_pollers:
            await _require_pollers(conn, namespace, deployment, b, state.current, versions)
        # a ramp held at 0 percent sends no work: its build has not been routed to
        ramped = new.ramping if new.ramping_percent > 0 else None
        for routed in (new.current, ramped):
            if routed is not None and routed in versions:
                versions[routed] = {**versions[routed], "routed": True}
        # a build that stops being current or ramping drains from now: its
        # drained_since is never before this (a pinned run that closed while it
        # was current did not drain it)
        now = utcnow().isoformat()
        for left in {state.current, state.ramping} - {new.current, new.ramping, None}:
            if left in versions:
                versions[left] = {**versions[left], "unrouted_at": now}
        d.update(
            current=new.current,
            ramping=new.ramping,
            ramping_percent=new.ramping_percent,
            revision=new.revision,
            versions=versions,
            updated_at=now,
            updated_by=req.identity,
        )
        deps[deployment] = d
        await _save(conn, namespace, deps)
        moved = await reroute(conn, namespace, deps, deployment=deployment)
        moved += await hurry_rerouted_retries(conn, namespace, before, deps, deployment)
        return {**_state_view(deployment, new), "changed": True, "tasks_rerouted": moved}

    return await store.txn(txn)


def _state_view(deployment: str, s: DeploymentState) -> dict[str, Any]:
    return {
        "deployment": deployment,
        "current": s.current,
        "ramping": s.ramping,
        "ramping_percent": s.ramping_percent,
        "revision": s.revision,
    }


async def reroute(
    conn: asyncpg.Connection,
    namespace: str,
    deps: dict[str, Any],
    *,
    deployment: str | None = None,
    run: RunTxn | None = None,
) -> int:
    """Send waiting tasks to the version their run now routes to.

    Either every task of runs in ``deployment``, or those of one ``run``
    (whose row in memory is newer than the table's). Returns how many moved.
    """
    queues: list[str] = []
    if deployment is not None:
        for v in ((deps.get(deployment) or {}).get("versions") or {}).values():
            queues.extend(v.get("task_queues") or [])
    rows = await conn.fetch(
        Q["routable_tasks"],
        namespace,
        deployment,
        queues,
        run.workflow_id if run else None,
        uuid.UUID(run.run_id) if run else None,
    )
    ids, tags, task_queues = [], [], []
    for r in rows:
        exe = run.exe if run is not None else dict(r)
        if r["kind"] == "workflow":
            tag = routing.workflow_task_tag(deps, exe)
            queue = r["run_queue"]  # off a sticky queue: its worker is of the old version
        else:
            tag = routing.activity_task_tag(deps, exe, r["task_queue"])
            queue = r["task_queue"]
        if tag != r["tag"]:
            ids.append(r["id"])
            tags.append(tag)
            task_queues.append(queue)
    if ids:
        await conn.execute(Q["retag_tasks"], ids, tags, task_queues)
    return len(ids)


async def hurry_rerouted_retries(
    conn: asyncpg.Connection,
    namespace: str,
    before: dict[str, Any],
    after: dict[str, Any],
    deployment: str,
) -> int:
    """Make due now the workflow task retries, waiting out a backoff, of the
    runs whose next workflow task this change sends to another version.

    A bad build rolled back (``set-current`` to the old one, a ramp ended) is
    the fix of its failing runs: they go on at once on the build they now
    route to, as a worker new to their queue, or an override, makes them,
    rather than up to ``workflow_task_retry_max_s`` later. Returns how many.
    """
    queues: list[str] = []
    for v in ((after.get(deployment) or {}).get("versions") or {}).values():
        queues.extend(v.get("task_queues") or [])
    now = utcnow()
    rows = await conn.fetch(Q["retries_of_deployment"], namespace, deployment, queues, now)
    due = [
        r["id"]
        for r in rows
        if routing.workflow_task_tag(before, r) != routing.workflow_task_tag(after, r)
    ]
    if due:
        await conn.execute(Q["hurry_timers"], due, now)
        await conn.execute(Q["notify_timers"])
    return len(due)


# --------------------------------------------------------------------------- reading


async def list_deployments(store: Store, namespace: str) -> list[dict[str, Any]]:
    async with store.pool.acquire() as conn:
        ns = await get_namespace(conn, namespace)
        return [
            {
                **_state_view(name, routing.state_of(ns.deployments, name)),
                "versions": len(d.get("versions") or {}),
            }
            for name, d in sorted(ns.deployments.items())
        ]


async def describe_deployment(store: Store, namespace: str, deployment: str) -> dict[str, Any]:
    """Routing, and per version: status, task queues, pollers, pinned runs.

    Only the namespace's active region answers: workers poll there, so a
    standby's pollers are none (or stale), and it would show every version
    without a live poller. A standby names the active region, where the SDK
    asks again.
    """
    async with store.pool.acquire() as conn:
        ns = await get_namespace(conn, namespace)
        if ns.active_region != store.region:
            url = store.region_urls.get(ns.active_region)
            raise NamespaceNotActive(
                f"namespace {namespace!r} is active in {ns.active_region}, not in "
                f"{store.region}: its workers poll there, so only it knows which versions have "
                f"live pollers; describe the deployment at {url or ns.active_region}",
                active_region=ns.active_region,
                active_url=url,
            )
        d = ns.deployments.get(deployment)
        if d is None:
            raise DeploymentNotFound(
                f"no worker of deployment {deployment!r} has polled namespace {namespace!r}: "
                f"its deployments are {', '.join(sorted(ns.deployments)) or 'none'} "
                "(`baton deployment list`)"
            )
        state = routing.state_of(ns.deployments, deployment)
        pollers = await conn.fetch(Q["pollers_of_deployment"], namespace, deployment, POLLER_LIVE_S)
        live = sorted(
            {f"{deployment}:{p['build_id']}|{p['task_queue']}" for p in pollers if p["live"]}
        )
        waiting = {
            r["tag"]: int(r["runs"])
            for r in await conn.fetch(Q["waiting_on_versions"], namespace, deployment, live)
        }
        versions = []
        for build, v in sorted(
            (d.get("versions") or {}).items(), key=lambda kv: str(kv[1].get("created_at"))
        ):
            counts = await conn.fetchrow(Q["pinned_on_version"], namespace, deployment, build)
            mine = [p for p in pollers if p["build_id"] == build]
            live = [p for p in mine if p["live"]]
            status = version_status(
                build,
                state,
                open_pinned=int(counts["open_pinned"]),
                was_routed_to=bool(v.get("routed")),
            )
            last_close: datetime | None = counts["last_close"]
            if status.value == "drained":
                # a pinned run that an override moved off left it, as a close
                # does; and the build drains only from when it stopped being
                # routed to
                left = await conn.fetchval(Q["last_left_version"], namespace, deployment, build)
                unrouted = v.get("unrouted_at")
                since = (last_close, left, datetime.fromisoformat(unrouted) if unrouted else None)
                last_close = max((t for t in since if t is not None), default=None)
            versions.append(
                {
                    "build_id": build,
                    "version": f"{deployment}:{build}",
                    "status": status.value,
                    "task_queues": v.get("task_queues") or [],
                    "created_at": v.get("created_at"),
                    "open_pinned": int(counts["open_pinned"]),
                    "drained_since": (
                        last_close.isoformat()
                        if status.value == "drained" and last_close is not None
                        else None
                    ),
                    # runs whose workflow task or due activity attempt waits for
                    # the version on a task queue none of its live workers polls
                    "waiting_no_poller": waiting.get(f"{deployment}:{build}", 0),
                    "live_pollers": len(live),
                    "pollers": [
                        {
                            "identity": p["identity"],
                            "task_queue": p["task_queue"],
                            "last_seen": p["last_seen"].isoformat(),
                            "live": p["live"],
                            "stopped_at": p["stopped_at"].isoformat() if p["stopped_at"] else None,
                        }
                        for p in mine
                    ],
                }
            )
        return {
            **_state_view(deployment, state),
            "updated_at": d.get("updated_at"),
            "versions": versions,
        }


# --------------------------------------------------------------------------- overrides


def set_override(rt: RunTxn, override: Override | None) -> None:
    """Set (or clear) the run's override; a pinned run it moves off its build
    leaves that build as a close would, so the build's ``drained_since`` says
    when (``last_left_version``)."""
    was_on = routing.effective_pin(routing.run_versioning(rt.exe))
    rt.set_versioning_override(override)
    if was_on is not None and routing.effective_pin(routing.run_versioning(rt.exe)) != was_on:
        left = {**(rt.exe["versioning"].get("left") or {}), was_on: rt.now.isoformat()}
        rt.exe["versioning"] = {**rt.exe["versioning"], "left": left}


async def update_versioning(
    store: Store, namespace: str, workflow_id: str, req: wire.UpdateVersioningRequest
) -> dict[str, Any]:
    """Set or clear a run's versioning override, recorded in its history.

    A workflow task waiting to be retried (after a failure) is retried at
    once, on the version the override names.
    """
    o = req.override
    try:
        override = routing.parse_override(o.kind if o else None, o.build_id if o else None)
    except VersioningError as exc:
        raise InvalidArgument(str(exc)) from None
    if o is not None and o.build_id is not None:
        if o.deployment is None:
            raise InvalidArgument(f"a {o.kind} override names the deployment of its build")
        check_version(o.deployment, o.build_id)

    async def txn(conn: asyncpg.Connection) -> dict[str, Any]:
        rt = await lock_for_request(
            store, conn, namespace, workflow_id, req.run_id, req.request_id, kind="versioning"
        )
        if isinstance(rt, str):
            # a retried request: answered as the first was, from the run now
            done = await run_acted_on(store, conn, namespace, workflow_id, rt)
            return {
                "run_id": rt,
                "changed": False,
                "tasks_rerouted": 0,
                "next_task_version": routing.workflow_task_tag(done.ns.deployments, done.exe),
            }
        current = rt.exe.get("deployment")
        if o is not None and o.deployment is not None:
            if current and current != o.deployment:
                raise InvalidArgument(
                    f"workflow {workflow_id!r} is in deployment {current!r}, not "
                    f"{o.deployment!r}: an override names a version of its own deployment"
                )
            if o.build_id is not None:
                require_version(rt.ns.deployments, o.deployment, o.build_id)
                require_queue(rt.ns.deployments, o.deployment, o.build_id, rt.exe["task_queue"])
        if routing.run_versioning(rt.exe).override == override and (
            o is None or o.deployment is None or o.deployment == current
        ):
            # already so: a command run again records nothing, as pause does
            return {
                "run_id": rt.run_id,
                "changed": False,
                "tasks_rerouted": 0,
                "next_task_version": routing.workflow_task_tag(rt.ns.deployments, rt.exe),
            }
        if o is not None and o.deployment is not None:
            rt.exe["deployment"] = o.deployment
        set_override(rt, override)
        rt.add_input_event(
            EventType.WORKFLOW_EXECUTION_OPTIONS_UPDATED,
            {
                "versioning_override": o.model_dump() if o else None,
                "reason": req.reason,
                "identity": req.identity,
                "request_id": req.request_id,
            },
        )
        rt.seen_request(req.request_id, "versioning")
        if not rt.wt_pending and int(rt.exe["wt_attempt"]) > 1:
            rt.delete_timers(WT_RETRY, "retry")
            rt.schedule_workflow_task()
        await rt.write_txn()
        moved = await reroute(conn, namespace, rt.ns.deployments, run=rt)
        return {
            "run_id": rt.run_id,
            "changed": True,
            "tasks_rerouted": moved,
            "next_task_version": routing.workflow_task_tag(rt.ns.deployments, rt.exe),
        }

    return await store.txn(txn)
