"""A run an earlier release wrote replays its activity cancellations as they ran.

Since activities the workflow cancels raise an ``ActivityError`` (which is an
``Exception``) where they raised a bare ``asyncio.CancelledError``, code with
an ``except Exception`` or ``except ActivityError`` around the await takes
another path. A run open across the upgrade must replay the path its history
recorded: the ``ACTIVITY_CANCEL_ERROR_PATCH`` marker says which one it took.
"""

from __future__ import annotations

import asyncio

from tests.unit.test_workflow_instance import TIMEOUT, Sim, dec, double, enc, step, types
from worker import workflow
from worker._activity_outcome import ACTIVITY_CANCEL_ERROR_PATCH
from worker.wire import Command, CommandType, EventType


@workflow.defn(name="CancelPaths")
class CancelPaths:
    @workflow.run
    async def run(self) -> str:
        try:
            try:
                await workflow.execute_activity(step, 1, start_to_close_timeout=TIMEOUT)
            except Exception:
                # an activity cancelled by the workflow, since the ActivityError
                await workflow.execute_activity(double, 2, start_to_close_timeout=TIMEOUT)
                return "as an error"
        except asyncio.CancelledError:
            # the same, as the earlier release raised it
            await workflow.execute_activity(step, 3, start_to_close_timeout=TIMEOUT)
            return "as a cancellation"
        return "done"


def test_a_run_written_before_the_activity_error_replays_its_cancellation() -> None:
    sim = Sim(CancelPaths)
    first = sim.run_task()
    sim.request_cancel()
    # The workflow task an earlier release's worker completed on the cancel
    # request: no marker, the activity cancelled, the CancelledError's path.
    started = sim._start_task(False)
    old = [
        Command(type=CommandType.REQUEST_CANCEL_ACTIVITY, attributes={"activity_id": "1"}),
        Command(
            type=CommandType.SCHEDULE_ACTIVITY,
            attributes={**first[0].attributes, "activity_id": "2", "input": [enc(3)]},
        ),
    ]
    assert sim.task_scheduled is not None
    sim.add(
        EventType.WORKFLOW_TASK_COMPLETED,
        scheduled_event_id=sim.task_scheduled.event_id,
        started_event_id=started.event_id,
    )
    sim.task_scheduled = None
    for command in old:
        sim._record(command, {})
    # A worker of this release picks the open run up: it replays the
    # recorded path, and the run goes on along it.
    sim.instance = sim.replay()
    sim.complete_activity("2", 6)
    commands = sim.run_task()
    assert types(commands) == [CommandType.COMPLETE_WORKFLOW]
    assert dec(commands[0].attributes["result"]) == "as a cancellation"
    sim.replay()


def test_a_new_run_records_the_marker_and_replays_the_activity_error() -> None:
    sim = Sim(CancelPaths)
    sim.run_task()
    sim.request_cancel()
    commands = sim.run_task()
    assert types(commands) == [
        CommandType.RECORD_MARKER,
        CommandType.REQUEST_CANCEL_ACTIVITY,
        CommandType.SCHEDULE_ACTIVITY,
    ]
    assert commands[0].attributes["details"] == {"patch_id": ACTIVITY_CANCEL_ERROR_PATCH}
    assert commands[2].attributes["activity_type"] == "double"
    sim.complete_activity("2", 4)
    commands = sim.run_task()
    assert dec(commands[0].attributes["result"]) == "as an error"
    sim.replay()
