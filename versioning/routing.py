"""Routing of a run's tasks, from a namespace's deployments and the run's row.

Pure functions over plain data, so the store calls them inside its
transactions and the unit tests call them without one. A namespace's
deployments are the jsonb its row keeps::

    {"payments": {"current": "41", "ramping": "42", "ramping_percent": 20.0,
                  "revision": 7,
                  "versions": {"41": {"task_queues": ["orders"], "routed": true,
                                      "created_at": "..."}}}}

A run's row keeps ``deployment``, ``build_id`` (the build it is pinned to, or
the one that ran its last workflow task), ``versioning_behavior`` (its
effective behaviour: ``pinned`` while a pin or a pinned override holds it) and
``versioning`` (behaviour, whether the start chose it, pin, override, task and
upgrade counters). A task row's ``build_id`` is the version tag
``deployment:build`` of the pollers that may take it, or NULL for unversioned
pollers.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from versioning.rules import (
    Behavior,
    DeploymentState,
    Override,
    OverrideKind,
    RunVersioning,
    VersioningError,
    after_task,
    continued_run,
    next_task_build,
    upgrade_allowed,
)

Deployments = Mapping[str, Any]


def tag(deployment: str | None, build_id: str | None) -> str | None:
    """A task row's version tag (None: unversioned pollers take it)."""
    if deployment is None or build_id is None:
        return None
    return f"{deployment}:{build_id}"


def state_of(deps: Deployments, deployment: str) -> DeploymentState:
    d = deps.get(deployment) or {}
    return DeploymentState(
        current=d.get("current"),
        ramping=d.get("ramping"),
        ramping_percent=float(d.get("ramping_percent") or 0.0),
        revision=int(d.get("revision") or 0),
    )


def deployment_for_queue(deps: Deployments, queue: str) -> str | None:
    """The deployment whose versions poll ``queue`` and take its new work.

    Of several, one that routes work to a build (a current or ramping one)
    wins over one that does not, and among those the one whose routing an
    operator changed last, as in Temporal, where a task queue follows the
    latest routing change of its deployments; with none routing, the one of
    the newest version. So a worker of another deployment that starts polling
    the queue (a renamed deployment's first build, a stray worker) takes none
    of its work until an operator routes work to it.
    """
    best: tuple[tuple[bool, str, str], str] | None = None
    for name, d in deps.items():
        created = [
            str(v.get("created_at") or "")
            for v in (d.get("versions") or {}).values()
            if queue in (v.get("task_queues") or ())
        ]
        if not created:
            continue
        routes = d.get("current") is not None or d.get("ramping") is not None
        key = (routes, str(d.get("updated_at") or "") if routes else "", max(created))
        if best is None or key > best[0]:
            best = (key, name)
    return None if best is None else best[1]


def queue_in_version(deps: Deployments, deployment: str, build_id: str, queue: str) -> bool:
    v = ((deps.get(deployment) or {}).get("versions") or {}).get(build_id) or {}
    return queue in (v.get("task_queues") or ())


def run_versioning(exe: Mapping[str, Any]) -> RunVersioning:
    v = exe.get("versioning") or {}
    o = v.get("override")
    behavior = v.get("behavior")
    return RunVersioning(
        behavior=Behavior(behavior) if behavior else None,
        pinned_build=v.get("pinned_build"),
        override=Override(OverrideKind(o["kind"]), o.get("build_id")) if o else None,
    )


def _store(exe: dict[str, Any], run: RunVersioning, **extra: Any) -> None:
    """Write ``run`` into the row's versioning fields, effective columns too."""
    v = dict(exe.get("versioning") or {})
    v["behavior"] = run.behavior.value if run.behavior else None
    v["pinned_build"] = run.pinned_build
    v["override"] = (
        {"kind": run.override.kind.value, "build_id": run.override.build_id}
        if run.override
        else None
    )
    v.update(extra)
    exe["versioning"] = v
    pin = effective_pin(run)
    if pin is not None:
        exe["versioning_behavior"] = Behavior.PINNED.value
        exe["build_id"] = pin
    elif run.override is not None and run.override.kind == OverrideKind.AUTO_UPGRADE:
        # A pinned type under an auto-upgrade override moves at its next task:
        # drainage, describe and `VersioningBehavior` must not count it pinned.
        exe["versioning_behavior"] = Behavior.AUTO_UPGRADE.value
    else:
        exe["versioning_behavior"] = run.behavior.value if run.behavior else None


def effective_pin(run: RunVersioning) -> str | None:
    """The build a run is held on (a pinned override, or its own pin), if any."""
    if run.override is not None and run.override.kind == OverrideKind.PINNED:
        return run.override.build_id
    if run.override is None and run.behavior == Behavior.PINNED:
        return run.pinned_build
    return None


def run_deployment(deps: Deployments, exe: Mapping[str, Any]) -> str | None:
    """The deployment a run's tasks route in: its own, else its task queue's."""
    if not deps:
        return None
    dep = exe.get("deployment")
    return str(dep) if dep else deployment_for_queue(deps, str(exe["task_queue"]))


def workflow_task_tag(deps: Deployments, exe: Mapping[str, Any]) -> str | None:
    """The version tag of the run's next workflow task."""
    dep = run_deployment(deps, exe)
    if dep is None:
        return None
    build = next_task_build(run_versioning(exe), state_of(deps, dep), str(exe["workflow_id"]))
    return tag(dep, build)


def follows_target(run: RunVersioning) -> bool:
    """Whether the run moves with its deployment's target (auto-upgrade, by its
    type or an override), rather than staying on a build."""
    if run.override is not None:
        return run.override.kind == OverrideKind.AUTO_UPGRADE
    return run.behavior == Behavior.AUTO_UPGRADE


def activity_task_tag(deps: Deployments, exe: Mapping[str, Any], queue: str) -> str | None:
    """The version tag of an activity task of the run on ``queue``.

    An auto-upgrade run's activities go where its workflow tasks go, its
    deployment's target for its id, when that version polls ``queue``: one
    waiting, or retried, when the target moves follows it off the old build
    (which shows drained, with no pinned run, and may be gone). Otherwise the
    run's own version when it polls ``queue``, else the current version of
    the deployment that does (None: unversioned workers).
    """
    if not deps:
        return None
    dep = run_deployment(deps, exe)
    if dep is not None and follows_target(run_versioning(exe)):
        target = state_of(deps, dep).target(str(exe["workflow_id"]))
        if target is not None and queue_in_version(deps, dep, target, queue):
            return tag(dep, target)
        if target is None and deployment_for_queue(deps, queue) == dep:
            return None  # the deployment's work of this queue went back to unversioned workers
    build = exe.get("build_id")
    if dep is not None and build is not None and queue_in_version(deps, dep, str(build), queue):
        return tag(dep, str(build))
    other = deployment_for_queue(deps, queue)
    if other is None:
        return None
    return tag(other, state_of(deps, other).current)


def start(exe: dict[str, Any], deps: Deployments, behavior: str | None) -> None:
    """A new run: its deployment from its task queue, and the start's behaviour."""
    dep = deployment_for_queue(deps, str(exe["task_queue"])) if deps else None
    if dep is None and behavior is None:
        return
    exe["deployment"] = dep
    b = Behavior(behavior) if behavior else None
    _store(exe, RunVersioning(b), behavior_from_start=b is not None, tasks=0, upgrades=0)


def task_completed(
    exe: dict[str, Any], deployment: str | None, build_id: str | None, behavior: str | None
) -> bool:
    """Record a workflow task completed by a worker of ``deployment:build_id``.

    Returns whether the row's versioning changed. The type's behaviour the
    worker reports applies unless the start chose one; a pinned run is pinned
    where its first task ran; a one-time override is used up.
    """
    v = exe.get("versioning") or {}
    if deployment is None and not v:
        return False
    run = run_versioning(exe)
    if behavior and not v.get("behavior_from_start"):
        run = RunVersioning(Behavior(behavior), run.pinned_build, run.override)
    if deployment is not None and exe.get("deployment") != deployment:
        exe["deployment"] = deployment
    run = after_task(run, build_id)
    exe["build_id"] = build_id
    _store(exe, run, tasks=int(v.get("tasks") or 0) + 1)
    return True


def set_override(exe: dict[str, Any], override: Override | None) -> None:
    run = run_versioning(exe)
    _store(exe, RunVersioning(run.behavior, run.pinned_build, override))


def target_version_changed(deps: Deployments, exe: Mapping[str, Any]) -> bool:
    """A pinned run's deployment now targets another build for it (and the
    continue-as-new loop guard lets it move)."""
    run = run_versioning(exe)
    pin = effective_pin(run)
    dep = exe.get("deployment")
    if pin is None or not dep or not deps:
        return False
    target = state_of(deps, str(dep)).target(str(exe["workflow_id"]))
    v = exe.get("versioning") or {}
    return target != pin and upgrade_allowed(
        upgrades_in_a_row=int(v.get("upgrades") or 0), tasks_since_start=int(v.get("tasks") or 0)
    )


def continued(
    old: Mapping[str, Any], new: dict[str, Any], deps: Deployments, requested: str | None
) -> None:
    """What a continue-as-new passes on: see :func:`versioning.rules.continued_run`."""
    v = old.get("versioning") or {}
    if not v and requested is None:
        start(new, deps, None)
        return
    run = run_versioning(old)
    dep, pin = old.get("deployment"), effective_pin(run)
    in_version = bool(dep and pin and queue_in_version(deps, str(dep), pin, str(new["task_queue"])))
    req = Behavior(requested) if requested else None
    nxt = continued_run(run, requested=req, queue_in_version=in_version)
    held = effective_pin(nxt) is not None
    new["deployment"] = dep if held else run_deployment(deps, new)
    # The loop guard counts upgrade continue-as-news in a row; a run that did
    # real work before it asked starts the count again.
    upgrades = 0
    if req == Behavior.AUTO_UPGRADE:
        upgrades = 1 if int(v.get("tasks") or 0) > 3 else int(v.get("upgrades") or 0) + 1
    from_start = bool(v.get("behavior_from_start")) and req is None
    _store(new, nxt, behavior_from_start=from_start, tasks=0, upgrades=upgrades)
    if not held:
        new["build_id"] = None


def parse_override(kind: str | None, build_id: str | None) -> Override | None:
    """An override from its API form (``kind`` None clears the override)."""
    if kind is None:
        return None
    try:
        k = OverrideKind(kind)
    except ValueError:
        raise VersioningError(
            f"override kind {kind!r} is not one of pinned, auto-upgrade, one-time"
        ) from None
    if k in (OverrideKind.PINNED, OverrideKind.ONE_TIME) and not build_id:
        raise VersioningError(f"a {k.value} override names a build id")
    if k == OverrideKind.AUTO_UPGRADE and build_id:
        raise VersioningError("an auto-upgrade override names no build id")
    return Override(k, build_id)
