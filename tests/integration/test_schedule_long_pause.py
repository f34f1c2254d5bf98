"""An unpause after a long pause of a frequent schedule: the fires it passed
over are counted by activities, not inside one workflow task, so the count
neither trips the worker's deadlock guard nor costs a replay anything."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from scheduler.definition import iso
from scheduler.policy import action_workflow_id
from scheduler.workflow import COUNT_ACTIVITY, PATCH_COUNT_IN_ACTIVITY, ScheduleWorkflow
from tests.apps.scheduled import Report
from tests.helpers import eventually
from tests.integration.test_schedules import (
    QUEUE,
    align,
    now,
    parse,
    settled,
    started_ids,
    worker,
)
from worker import Client
from worker._definition import WorkflowDefinition
from worker._history import events_from_wire
from worker._payloads import decode_wire
from worker._workflow_instance import WorkflowInstance

pytestmark = pytest.mark.integration

#: Minutely fires over 90 days: counted in one go they take several times the
#: 2 s a workflow task may run without waiting (about 60 us each).
PAUSE = timedelta(days=90)


def minutes_in(after: datetime, until: datetime) -> int:
    """Minute boundaries in (after, until]."""
    epoch = datetime(2000, 1, 1, tzinfo=after.tzinfo)
    return (until - epoch) // timedelta(minutes=1) - (after - epoch) // timedelta(minutes=1)


@pytest.mark.timeout(180)
async def test_an_unpause_after_a_long_pause_counts_its_fires_outside_the_workflow_task(
    clock_client: Client,
) -> None:
    """Regression: the count ran inside the signal's workflow task; the
    deadlock guard failed that task, every retry redid the count, and the
    schedule never moved again."""
    async with worker(clock_client):
        sched = await clock_client.schedule_definition(
            workflow=Report, task_queue=QUEUE, args=["tick"], cron="* * * * *"
        )
        await align(clock_client, timedelta(minutes=1))
        h = await clock_client.create_schedule("long", sched, paused=True, note="away")
        await settled(clock_client, h)
        created = parse((await h.describe())["last_processed"])
        await clock_client.advance_test_clock(PAUSE.total_seconds())
        await settled(clock_client, h)
        await h.unpause(catch_up="latest")

        async def counted() -> bool:
            d = await h.describe()
            assert not d["paused"] and d["pending_signals"] == 0, d
            return True

        await eventually(counted, timeout=120, what="the unpause's count")
        await settled(clock_client, h)
        d = await h.describe()
        unpaused = parse(d["last_processed"])
        passed = minutes_in(created, unpaused)
        assert passed >= PAUSE // timedelta(minutes=1)
        # the latest fire is acted on (inside the default window), the rest counted
        latest = unpaused.replace(second=0, microsecond=0)
        assert d["counters"]["missed_paused"] == passed - 1
        assert d["counters"]["missed_catchup"] == 0
        assert await started_ids(clock_client, "long") == [action_workflow_id("long", latest)]

        history = await clock_client.get_workflow_handle("schedule/long").history()
        kinds = [e["event_type"] for e in history]
        # every workflow task completed: none failed (a deadlock) or timed out
        assert "WorkflowTaskFailed" not in kinds and "WorkflowTaskTimedOut" not in kinds, kinds
        counts = [
            e
            for e in history
            if e["event_type"] == "ActivityTaskScheduled"
            and e["attributes"]["activity_type"] == COUNT_ACTIVITY
        ]
        # several slices, each its own activity and workflow task
        assert len(counts) >= 2, counts
        markers = [e for e in history if PATCH_COUNT_IN_ACTIVITY in str(e["attributes"])]
        assert markers, "the count's patch marker"

        # a worker with an empty cache replays the run without counting again:
        # no activation comes near the deadlock guard (it would raise here)
        await decode_wire(history, clock_client.data_converter)
        inst = WorkflowInstance(
            definition=WorkflowDefinition.from_class(ScheduleWorkflow),
            namespace="default",
            workflow_id="schedule/long",
            run_id="replayed",
            converter=clock_client.data_converter.payload_converter,
        )
        try:
            inst.activate(events_from_wire(history), run_final=False)
            state = clock_client.data_converter.payload_converter.from_payload(
                inst.query("state", []), dict
            )
        finally:
            inst.dispose()
        assert state["counters"] == d["counters"]
        assert state["last_processed"] == iso(unpaused)
        assert (await now(clock_client)) >= unpaused
