"""Recorded schedule histories replayed against today's code: a run that
counted an unpause's passed-over fires inside its workflow task (before
``PATCH_COUNT_IN_ACTIVITY``) replays as it ran, with no count activity."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from scheduler.workflow import ScheduleWorkflow
from worker._definition import WorkflowDefinition
from worker._history import events_from_wire
from worker._workflow_instance import WorkflowInstance
from worker.converter import DataConverter

HISTORIES = Path(__file__).parent / "histories"


def replay(name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The recorded run's last ``describe`` and the state replaying it rebuilds."""
    recorded = json.loads((HISTORIES / name).read_text())
    converter = DataConverter().payload_converter
    inst = WorkflowInstance(
        definition=WorkflowDefinition.from_class(ScheduleWorkflow),
        namespace="default",
        workflow_id="schedule/old",
        run_id="recorded",
        converter=converter,
    )
    try:
        # a NonDeterminismError here: the code no longer does what the run did
        inst.activate(events_from_wire(recorded["history"]), run_final=False)
        state = converter.from_payload(inst.query("state", []), dict)
    finally:
        inst.dispose()
    return recorded, state


def test_unpauses_counted_before_the_count_patch_replay_as_they_ran() -> None:
    # an hourly schedule paused 3 hours, unpaused with latest (one acted on,
    # two counted), paused 2 more hours and unpaused without catch-up
    recorded, state = replay("schedule_unpause_before_count_patch.json")
    assert state["counters"] == recorded["counters"]
    assert state["counters"]["missed_paused"] == 4 and state["counters"]["actions"] == 1
    assert state["last_processed"] == recorded["last_processed"]
    assert not state["paused"]


def test_a_buffering_schedule_past_its_limit_before_the_patch_replays_as_it_ran() -> None:
    # every 2 s, buffer-all, limited_actions 2, its first action held running:
    # before PATCH_LIMIT_BUFFERED the buffer took every fire and five actions
    # started (the actions left went to -3); the run replays so, not refusing them
    recorded, state = replay("schedule_limited_buffer_before_patch.json")
    assert state["counters"] == recorded["counters"]
    assert state["remaining_actions"] == recorded["remaining_actions"] == -3
    assert state["buffered"] == recorded["buffered"]
    assert state["last_processed"] == recorded["last_processed"]
