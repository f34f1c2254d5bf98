"""Overlap policies, catch-up and limited actions of a schedule (plain data)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from scheduler.policy import (
    CatchUp,
    Decision,
    Fire,
    Overlap,
    ScheduleState,
    action_workflow_id,
    catch_up,
    on_action_closed,
    on_fire,
)

T = [datetime(2026, 6, 1, 12, m, tzinfo=UTC) for m in range(10)]


def run(policy: Overlap, fires: int) -> tuple[ScheduleState, list[Decision]]:
    """``fires`` fires while the first action keeps running."""
    state = ScheduleState()
    return state, [on_fire(policy, state, T[i]) for i in range(fires)]


def test_each_fire_starts_when_nothing_runs_whatever_the_policy() -> None:
    for policy in Overlap:
        state = ScheduleState()
        for t in T[:3]:
            assert on_fire(policy, state, t) == Decision(start=True)
            assert on_action_closed(state) is None
        assert state.counters.actions == 3


def test_skip() -> None:
    state, ds = run(Overlap.SKIP, 3)
    assert ds == [Decision(start=True), Decision(), Decision()]
    assert (state.counters.actions, state.counters.skipped) == (1, 2)
    assert on_action_closed(state) is None


def test_buffer_one_keeps_one_and_drops_the_rest() -> None:
    state, ds = run(Overlap.BUFFER_ONE, 4)
    assert ds[1] == Decision(buffer=True) and ds[2] == ds[3] == Decision()
    # Temporal counts a fire buffer-one turns away as skipped for the overlap
    assert (state.counters.skipped, state.counters.buffer_dropped) == (2, 0)
    assert on_action_closed(state) == Fire(T[1])
    assert on_action_closed(state) is None
    assert state.counters.actions == 2


def test_buffer_all_runs_every_fire_one_after_another() -> None:
    state, ds = run(Overlap.BUFFER_ALL, 4)
    assert ds[1:] == [Decision(buffer=True)] * 3
    assert [on_action_closed(state) for _ in range(4)] == [Fire(T[1]), Fire(T[2]), Fire(T[3]), None]
    assert state.counters.actions == 4 and state.counters.buffer_dropped == 0


def test_cancel_other_cancels_and_starts_the_newest_after_the_cancel() -> None:
    state, ds = run(Overlap.CANCEL_OTHER, 3)
    assert ds[1] == Decision(buffer=True, cancel_running=True)
    assert ds[2] == Decision(buffer=True, cancel_running=True)
    assert state.counters.buffer_dropped == 1  # the newest replaces the one waiting
    assert on_action_closed(state) == Fire(T[2])  # after the canceled one closed
    assert state.counters.actions == 2


def test_terminate_other_starts_at_once() -> None:
    state, ds = run(Overlap.TERMINATE_OTHER, 3)
    assert ds[1:] == [Decision(start=True, terminate_running=True)] * 2
    assert state.counters.actions == 3 and state.running


def test_allow_all() -> None:
    state, ds = run(Overlap.ALLOW_ALL, 3)
    assert ds == [Decision(start=True)] * 3
    assert state.counters.actions == 3


def test_limited_actions_are_used_up_by_fires_that_start() -> None:
    state = ScheduleState(remaining_actions=2)
    assert on_fire(Overlap.SKIP, state, T[0]).start
    assert not on_fire(Overlap.SKIP, state, T[1]).start  # skipped: not used up
    on_action_closed(state)
    assert on_fire(Overlap.SKIP, state, T[2]).start
    on_action_closed(state)
    assert on_fire(Overlap.SKIP, state, T[3]) == Decision()
    assert state.remaining_actions == 0 and state.counters.actions == 2


def test_catch_up_inside_the_window_by_mode_and_counts_the_rest() -> None:
    now = datetime(2026, 6, 1, tzinfo=UTC)
    missed = [now - timedelta(days=d) for d in (400, 370, 200, 10, 1)]
    state = ScheduleState()
    assert catch_up(missed, now, counters=state.counters) == missed[2:]
    assert state.counters.missed_catchup == 2
    state = ScheduleState()
    got = catch_up(missed, now, mode=CatchUp.LATEST, counters=state.counters)
    assert got == missed[-1:] and state.counters.missed_catchup == 4
    state = ScheduleState()
    got = catch_up(missed, now, mode=CatchUp.NONE, counters=state.counters)
    assert got == [] and state.counters.missed_catchup == 5
    short = catch_up(missed, now, window=timedelta(days=5))
    assert short == missed[-1:]


def test_the_action_workflow_id_names_the_nominal_time_in_utc() -> None:
    berlin_noon = datetime.fromisoformat("2026-06-01T12:00:00.250+02:00")
    assert action_workflow_id("nightly", berlin_noon) == "nightly-2026-06-01T10:00:00Z"


def test_a_tagged_fire_has_an_id_of_its_own_in_the_same_second() -> None:
    fire = action_workflow_id("nightly", T[0])
    trigger = action_workflow_id("nightly", T[0] + timedelta(milliseconds=300), "trigger-0a1b2c3d")
    other = action_workflow_id("nightly", T[0], "trigger-4e5f6a7b")
    assert trigger == "nightly-2026-06-01T12:00:00Z-trigger-0a1b2c3d"
    assert len({fire, trigger, other}) == 3


def test_triggers_and_backfills_do_not_use_up_limited_actions() -> None:
    state = ScheduleState(remaining_actions=1)
    assert on_fire(Overlap.ALLOW_ALL, state, Fire(T[0], "trigger")).start
    assert on_fire(Overlap.ALLOW_ALL, state, T[1]).start
    assert state.remaining_actions == 0
    assert on_fire(Overlap.ALLOW_ALL, state, T[2]) == Decision()  # used up
    assert on_fire(Overlap.ALLOW_ALL, state, Fire(T[3], "backfill")).start
    assert on_fire(Overlap.BUFFER_ALL, state, Fire(T[4], "backfill")) == Decision(buffer=True)
    assert on_action_closed(state) == Fire(T[4], "backfill")
    assert state.remaining_actions == 0 and state.counters.actions == 4


def test_buffered_fires_count_against_limited_actions() -> None:
    state = ScheduleState(remaining_actions=2, limit_buffered=True)
    assert on_fire(Overlap.BUFFER_ALL, state, T[0]).start
    assert on_fire(Overlap.BUFFER_ALL, state, T[1]) == Decision(buffer=True)
    assert on_fire(Overlap.BUFFER_ALL, state, T[2]) == Decision()  # no action left for it
    assert on_fire(Overlap.BUFFER_ALL, state, Fire(T[3], "trigger")).buffer  # no fire
    assert on_action_closed(state) == Fire(T[1])
    assert on_action_closed(state) == Fire(T[3], "trigger")
    assert on_action_closed(state) is None
    assert state.remaining_actions == 0 and state.counters.actions == 3


def test_buffer_one_holds_no_fire_the_limit_has_no_room_for() -> None:
    state = ScheduleState(remaining_actions=1, limit_buffered=True)
    assert on_fire(Overlap.BUFFER_ONE, state, T[0]).start
    assert on_fire(Overlap.BUFFER_ONE, state, T[1]) == Decision()
    assert state.buffer == [] and on_action_closed(state) is None
    assert state.remaining_actions == 0 and state.counters.actions == 1


def test_a_buffered_fire_past_a_lowered_limit_is_dropped() -> None:
    state = ScheduleState(remaining_actions=3, limit_buffered=True)
    on_fire(Overlap.BUFFER_ALL, state, T[0])
    on_fire(Overlap.BUFFER_ALL, state, T[1])
    on_fire(Overlap.BUFFER_ALL, state, T[2])
    state.remaining_actions = 1  # an update gave a new, lower limit
    assert on_action_closed(state) == Fire(T[1])
    assert on_action_closed(state) is None and state.buffer == []
    assert state.remaining_actions == 0
