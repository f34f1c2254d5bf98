"""Worker versioning's pure rules: versions, the ramp hash, targets, overrides, status."""

from __future__ import annotations

import pytest

from versioning import (
    Behavior,
    DeploymentState,
    Override,
    OverrideKind,
    RevisionMismatch,
    RunVersioning,
    Version,
    VersioningError,
    VersionStatus,
    after_task,
    continued_run,
    next_task_build,
    ramp_bucket,
    resolve_behavior,
    upgrade_allowed,
    version_status,
)


def test_versions_parse_and_refuse_bad_names() -> None:
    assert Version.parse("payments:41") == Version("payments", "41")
    assert str(Version("payments", "41.2-rc")) == "payments:41.2-rc"
    bad_names = ("payments", ":41", "payments:", "pay ments:41", "payments:4:1", "-x:1")
    for bad in (*bad_names, "payments:41\n", "payments\n:41"):
        with pytest.raises(VersioningError):
            Version.parse(bad)


def test_the_ramp_hash_never_changes() -> None:
    # Regions and releases must agree on every id's slice: these values are
    # the function's contract, not an implementation detail.
    assert ramp_bucket("order-1") == pytest.approx(4.565251649803206)
    assert ramp_bucket("order-2") == pytest.approx(23.971849838330687)
    assert ramp_bucket("payments/42") == pytest.approx(7.292390687658239)


def test_the_ramp_takes_its_share_of_ids() -> None:
    buckets = [ramp_bucket(f"w-{i}") for i in range(10_000)]
    assert all(0 <= b < 100 for b in buckets)
    share = sum(b < 20 for b in buckets) / len(buckets)
    assert 0.18 < share < 0.22


def test_target_under_a_ramp_is_exactly_the_ids_below_the_percentage() -> None:
    state = DeploymentState(current="1", ramping="2", ramping_percent=20.0)
    ids = [f"order-{i}" for i in range(500)]
    to_green = {w for w in ids if state.target(w) == "2"}
    assert to_green == {w for w in ids if ramp_bucket(w) < 20}
    assert {state.target(w) for w in ids} == {"1", "2"}
    assert DeploymentState(current="1").target("order-2") == "1"
    assert DeploymentState(current=None).target("x") is None  # unversioned


def test_changes_bump_the_revision_and_refuse_a_stale_one() -> None:
    s0 = DeploymentState(current="1")
    s1 = s0.set_ramping("2", 20, expect_revision=0)
    assert (s1.ramping, s1.ramping_percent, s1.revision) == ("2", 20.0, 1)
    with pytest.raises(RevisionMismatch):
        s1.set_current("2", expect_revision=0)
    s2 = s1.set_current("2", expect_revision=1)  # the ramped build becomes current
    assert (s2.current, s2.ramping, s2.ramping_percent, s2.revision) == ("2", None, 0.0, 2)
    assert s2.set_current("3", expect_revision=None).revision == 3
    with pytest.raises(VersioningError):
        s2.set_ramping("2", 10, expect_revision=None)  # current cannot ramp too
    with pytest.raises(VersioningError):
        s2.set_ramping("3", 101, expect_revision=None)
    held = s2.set_ramping("3", 0, expect_revision=None)  # held back: still the ramping build
    assert (held.ramping, held.ramping_percent, held.target("x")) == ("3", 0.0, "2")
    assert version_status("3", held, open_pinned=0, was_routed_to=True) == VersionStatus.RAMPING
    with pytest.raises(VersioningError):
        s2.set_ramping("2", 0, expect_revision=None)  # not even at 0
    assert held.set_ramping(None, 0, expect_revision=None).ramping is None  # no build: ends it
    # a change already in place is this state, whatever revision is named
    assert s2.set_current("2", expect_revision=0) is s2
    assert held.set_ramping("3", 0, expect_revision=0) is held


def test_behaviour_comes_from_the_start_then_the_type_then_the_worker() -> None:
    P, A = Behavior.PINNED, Behavior.AUTO_UPGRADE
    assert (
        resolve_behavior(start_override=A, type_behavior=P, worker_default=P, versioned=True) == A
    )
    assert (
        resolve_behavior(start_override=None, type_behavior=P, worker_default=A, versioned=True)
        == P
    )
    assert (
        resolve_behavior(start_override=None, type_behavior=None, worker_default=A, versioned=True)
        == A
    )
    assert (
        resolve_behavior(
            start_override=None, type_behavior=None, worker_default=None, versioned=False
        )
        is None
    )
    with pytest.raises(VersioningError):
        resolve_behavior(
            start_override=None, type_behavior=None, worker_default=None, versioned=True
        )


def test_next_task_follows_pin_target_and_overrides() -> None:
    state = DeploymentState(current="2")
    pinned = RunVersioning(Behavior.PINNED, "1")
    auto = RunVersioning(Behavior.AUTO_UPGRADE)
    assert next_task_build(pinned, state, "w") == "1"
    assert next_task_build(auto, state, "w") == "2"
    assert next_task_build(RunVersioning(Behavior.PINNED), state, "w") == "2"  # not pinned yet
    to_1 = Override(OverrideKind.PINNED, "1")
    assert next_task_build(RunVersioning(Behavior.AUTO_UPGRADE, None, to_1), state, "w") == "1"
    unpin = Override(OverrideKind.AUTO_UPGRADE)
    assert next_task_build(RunVersioning(Behavior.PINNED, "1", unpin), state, "w") == "2"
    once = RunVersioning(Behavior.PINNED, "1", Override(OverrideKind.ONE_TIME, "3"))
    assert next_task_build(once, state, "w") == "3"
    after = after_task(once, "3")
    assert after.override is None and next_task_build(after, state, "w") == "1"  # back home
    assert (
        after_task(RunVersioning(Behavior.PINNED), "2").pinned_build == "2"
    )  # pinned where it ran
    assert after_task(RunVersioning(Behavior.PINNED, "1", to_1), "1").override == to_1  # kept


def test_continue_as_new_inheritance() -> None:
    pinned = RunVersioning(Behavior.PINNED, "1")
    assert continued_run(pinned, requested=None, queue_in_version=True) == pinned
    assert continued_run(pinned, requested=None, queue_in_version=False) == RunVersioning(
        Behavior.PINNED
    )
    # asked to upgrade: nothing passed on, the first task goes to the target
    assert continued_run(pinned, requested=Behavior.AUTO_UPGRADE, queue_in_version=True) == (
        RunVersioning(None)
    )
    overridden = RunVersioning(Behavior.AUTO_UPGRADE, None, Override(OverrideKind.PINNED, "1"))
    assert continued_run(overridden, requested=None, queue_in_version=True) == overridden
    # an operator's pin outlasts the code's request
    assert (
        continued_run(overridden, requested=Behavior.AUTO_UPGRADE, queue_in_version=True)
        == overridden
    )
    # but not onto a task queue its build does not poll: the new run would wait
    # there for ever; it routes as a new run of the queue does
    assert continued_run(overridden, requested=None, queue_in_version=False) == RunVersioning(
        Behavior.AUTO_UPGRADE
    )
    held = RunVersioning(Behavior.PINNED, "2", Override(OverrideKind.PINNED, "1"))
    assert continued_run(held, requested=None, queue_in_version=False) == RunVersioning(
        Behavior.PINNED
    )
    assert continued_run(
        held, requested=Behavior.AUTO_UPGRADE, queue_in_version=False
    ) == RunVersioning(None)
    auto = RunVersioning(Behavior.AUTO_UPGRADE, "2")
    assert continued_run(auto, requested=None, queue_in_version=True) == RunVersioning(
        Behavior.AUTO_UPGRADE
    )


def test_version_status() -> None:
    state = DeploymentState(current="2", ramping="3", ramping_percent=10)
    assert version_status("2", state, open_pinned=5, was_routed_to=True) == VersionStatus.CURRENT
    assert version_status("3", state, open_pinned=0, was_routed_to=True) == VersionStatus.RAMPING
    assert version_status("1", state, open_pinned=1, was_routed_to=True) == VersionStatus.DRAINING
    assert version_status("1", state, open_pinned=0, was_routed_to=True) == VersionStatus.DRAINED
    assert version_status("4", state, open_pinned=0, was_routed_to=False) == VersionStatus.INACTIVE
    assert version_status("4", state, open_pinned=2, was_routed_to=False) == VersionStatus.DRAINING


def test_the_upgrade_loop_guard() -> None:
    assert upgrade_allowed(upgrades_in_a_row=0, tasks_since_start=2)
    # its second task (a signal's, say): the first one completed
    assert upgrade_allowed(upgrades_in_a_row=0, tasks_since_start=1)
    assert not upgrade_allowed(upgrades_in_a_row=0, tasks_since_start=0)  # no work done yet
    assert not upgrade_allowed(upgrades_in_a_row=3, tasks_since_start=50)
