"""Routing of a run's tasks from a namespace's deployments (plain data, no store)."""

from __future__ import annotations

from typing import Any

import pytest

from versioning import ramp_bucket, routing
from versioning.rules import VersioningError

DEPS: dict[str, Any] = {
    "shop": {
        "current": "1",
        "ramping": "2",
        "ramping_percent": 30.0,
        "revision": 4,
        "versions": {
            "1": {"task_queues": ["orders", "mail"], "created_at": "2026-01-01"},
            "2": {"task_queues": ["orders"], "created_at": "2026-02-01"},
        },
    },
    "billing": {
        "current": "7",
        "versions": {"7": {"task_queues": ["invoices"], "created_at": "2026-01-15"}},
    },
}


def run(wid: str = "w", queue: str = "orders", **kw: Any) -> dict[str, Any]:
    exe: dict[str, Any] = {
        "workflow_id": wid,
        "task_queue": queue,
        "deployment": None,
        "build_id": None,
        "versioning": None,
        "versioning_behavior": None,
    }
    exe.update(kw)
    return exe


def ids(n: int) -> list[str]:
    return [f"id-{i}" for i in range(n)]


def test_unversioned_namespaces_route_nothing() -> None:
    exe = run()
    routing.start(exe, {}, None)
    assert exe["versioning"] is None
    assert routing.workflow_task_tag({}, exe) is None
    assert routing.activity_task_tag({}, exe, "orders") is None


def test_a_new_run_goes_to_its_ids_target_under_the_ramp() -> None:
    for wid in ids(200):
        exe = run(wid)
        routing.start(exe, DEPS, None)
        assert exe["deployment"] == "shop"
        want = "2" if ramp_bucket(wid) < 30 else "1"
        assert routing.workflow_task_tag(DEPS, exe) == f"shop:{want}"


def test_a_pinned_run_pins_where_its_first_task_ran_and_stays() -> None:
    exe = run("id-3")
    routing.start(exe, DEPS, None)
    assert routing.task_completed(exe, "shop", "1", "pinned")
    assert (exe["build_id"], exe["versioning_behavior"]) == ("1", "pinned")
    moved = {**DEPS, "shop": {**DEPS["shop"], "current": "2", "ramping": None}}
    assert routing.workflow_task_tag(moved, exe) == "shop:1"
    # its second task (a signal's, say) is told: its first completed
    assert routing.target_version_changed(moved, exe) is True
    exe["versioning"]["tasks"] = 0  # a run whose first task this would be is not
    assert routing.target_version_changed(moved, exe) is False
    routing.task_completed(exe, "shop", "1", "pinned")
    assert routing.target_version_changed(moved, exe) is True
    assert routing.target_version_changed(DEPS, exe) is (ramp_bucket("id-3") < 30)


def test_an_auto_upgrade_run_follows_the_target_and_a_start_behaviour_wins() -> None:
    exe = run("id-1")
    routing.start(exe, DEPS, "auto-upgrade")
    routing.task_completed(exe, "shop", "1", "pinned")  # the type says pinned; the start said no
    assert exe["versioning_behavior"] == "auto-upgrade"
    moved = {**DEPS, "shop": {**DEPS["shop"], "current": "2", "ramping": None}}
    assert routing.workflow_task_tag(moved, exe) == "shop:2"


def test_overrides_pin_move_once_and_clear() -> None:
    exe = run("id-5")
    routing.start(exe, DEPS, None)
    routing.task_completed(exe, "shop", "1", "auto-upgrade")
    routing.set_override(exe, routing.parse_override("pinned", "2"))
    assert (exe["versioning_behavior"], exe["build_id"]) == ("pinned", "2")
    assert routing.workflow_task_tag(DEPS, exe) == "shop:2"
    routing.set_override(exe, routing.parse_override("one-time", "1"))
    assert routing.workflow_task_tag(DEPS, exe) == "shop:1"
    routing.task_completed(exe, "shop", "1", "auto-upgrade")
    assert exe["versioning"]["override"] is None  # used up
    routing.set_override(exe, None)
    assert exe["versioning_behavior"] == "auto-upgrade"
    for kind, build in (("pinned", None), ("one-time", None), ("auto-upgrade", "1"), ("x", "1")):
        with pytest.raises(VersioningError):
            routing.parse_override(kind, build)


def test_an_auto_upgrade_override_makes_a_pinned_run_auto_upgrade_until_cleared() -> None:
    """The effective behaviour is what drainage and `VersioningBehavior` read: a
    pinned run told to auto-upgrade no longer holds its build from draining."""
    exe = run("id-6")
    routing.start(exe, DEPS, None)
    routing.task_completed(exe, "shop", "1", "pinned")
    routing.set_override(exe, routing.parse_override("auto-upgrade", None))
    assert exe["versioning_behavior"] == "auto-upgrade"
    routing.task_completed(exe, "shop", "2", "pinned")  # the override outlives a task
    assert exe["versioning_behavior"] == "auto-upgrade"
    routing.set_override(exe, None)
    assert (exe["versioning_behavior"], exe["build_id"]) == ("pinned", "1")


def test_an_activity_off_its_versions_queues_goes_to_that_queues_current_version() -> None:
    exe = run("id-1")
    routing.start(exe, DEPS, None)
    routing.task_completed(exe, "shop", "2", "pinned")
    assert routing.activity_task_tag(DEPS, exe, "orders") == "shop:2"
    # build 2 does not poll "mail": shop's current build does
    assert routing.activity_task_tag(DEPS, exe, "mail") == "shop:1"
    # nor "invoices", which billing's builds poll
    assert routing.activity_task_tag(DEPS, exe, "invoices") == "billing:7"
    assert routing.activity_task_tag(DEPS, exe, "nobody-polls") is None


def test_continue_as_new_inheritance() -> None:
    pinned = run("id-2")
    routing.start(pinned, DEPS, None)
    routing.task_completed(pinned, "shop", "1", "pinned")
    routing.task_completed(pinned, "shop", "1", "pinned")
    stays = run("id-2")
    routing.continued(pinned, stays, DEPS, None)
    assert (stays["build_id"], stays["versioning_behavior"]) == ("1", "pinned")
    # onto a queue build 1 does not poll: nothing passed on
    elsewhere = run("id-2", queue="invoices")
    routing.continued(pinned, elsewhere, DEPS, None)
    assert elsewhere["build_id"] is None and elsewhere["deployment"] == "billing"
    # asked to upgrade: the first task goes to the target, nothing pinned yet
    upgraded = run("id-2")
    routing.continued(pinned, upgraded, DEPS, "auto-upgrade")
    assert upgraded["build_id"] is None and upgraded["versioning"]["upgrades"] == 1
    assert routing.workflow_task_tag(DEPS, upgraded) == routing.workflow_task_tag(
        DEPS, run("id-2", deployment="shop")
    )


def test_the_loop_guard_stops_a_run_held_on_its_build_after_three_upgrades() -> None:
    moved = {**DEPS, "shop": {**DEPS["shop"], "current": "2", "ramping": None}}
    exe = run("id-9")
    routing.start(exe, moved, None)
    routing.set_override(exe, routing.parse_override("pinned", "1"))
    exe["deployment"] = "shop"
    offered = []
    for _ in range(5):
        routing.task_completed(exe, "shop", "1", "pinned")
        routing.task_completed(exe, "shop", "1", "pinned")
        offered.append(routing.target_version_changed(moved, exe))
        nxt = run("id-9")
        routing.continued(exe, nxt, moved, "auto-upgrade")
        assert nxt["build_id"] == "1"  # the operator's pin carries over
        exe = nxt
    assert offered == [True, True, True, False, False]


def test_an_auto_upgrade_runs_activities_follow_its_target_a_pinned_runs_stay() -> None:
    wid = next(w for w in ids(100) if ramp_bucket(w) >= 30)  # routed to the current build
    moved = {**DEPS, "shop": {**DEPS["shop"], "current": "2", "ramping": None}}
    auto = run(wid)
    routing.start(auto, DEPS, None)
    routing.task_completed(auto, "shop", "1", "auto-upgrade")
    assert routing.activity_task_tag(DEPS, auto, "orders") == "shop:1"
    # set-current 2: a waiting or retried activity goes to build 2, as the next task does
    assert routing.activity_task_tag(moved, auto, "orders") == "shop:2"
    assert routing.activity_task_tag(moved, auto, "mail") == "shop:1"  # 2 does not poll it
    pinned = run(wid)
    routing.start(pinned, DEPS, None)
    routing.task_completed(pinned, "shop", "1", "pinned")
    assert routing.activity_task_tag(moved, pinned, "orders") == "shop:1"
    # an auto-upgrade override moves a pinned run's activities too
    routing.set_override(pinned, routing.parse_override("auto-upgrade", None))
    assert routing.activity_task_tag(moved, pinned, "orders") == "shop:2"


def test_an_auto_upgrade_runs_activities_go_back_to_unversioned_workers_with_the_deployment() -> (
    None
):
    wid = next(w for w in ids(100) if ramp_bucket(w) >= 30)
    back = {**DEPS, "shop": {**DEPS["shop"], "current": None, "ramping": None}}
    auto = run(wid)
    routing.start(auto, DEPS, None)
    routing.task_completed(auto, "shop", "1", "auto-upgrade")
    assert routing.workflow_task_tag(back, auto) is None
    assert routing.activity_task_tag(back, auto, "orders") is None
    assert routing.activity_task_tag(back, auto, "invoices") == "billing:7"  # not shop's queue


def test_a_deployment_that_routes_nothing_takes_no_work_from_a_queue_another_routes() -> None:
    shop = {
        "current": "1",
        "revision": 1,
        "updated_at": "2026-01-02",
        "versions": {"1": {"task_queues": ["orders"], "created_at": "2026-01-01"}},
    }
    # a newer deployment's worker polls the queue; nobody routed work to it
    stray = {
        "current": None,
        "revision": 0,
        "versions": {"x": {"task_queues": ["orders"], "created_at": "2026-03-01"}},
    }
    deps = {"shop": shop, "stray": stray}
    assert routing.deployment_for_queue(deps, "orders") == "shop"
    exe = run("w")
    routing.start(exe, deps, None)
    assert exe["deployment"] == "shop"
    assert routing.workflow_task_tag(deps, exe) == "shop:1"
    # its first set-current (a renamed deployment taking over) moves the queue's new work
    deps["stray"] = {**stray, "current": "x", "revision": 1, "updated_at": "2026-03-02"}
    assert routing.deployment_for_queue(deps, "orders") == "stray"
    # and the one an operator changed last wins while both route work
    deps["shop"] = {**shop, "current": "2", "revision": 2, "updated_at": "2026-03-03"}
    assert routing.deployment_for_queue(deps, "orders") == "shop"
    # with none routing, the newest version's deployment, as before
    unrouted = {k: {**d, "current": None} for k, d in deps.items()}
    assert routing.deployment_for_queue(unrouted, "orders") == "stray"
