"""Exclusions that swallow many times in a row: refused when they swallow
every time, walked past when the fires come back after them."""

from __future__ import annotations

from datetime import timedelta

import pytest

from scheduler import spec as spec_module
from scheduler.definition import iso
from scheduler.policy import action_workflow_id
from tests.apps.scheduled import Report
from tests.helpers import eventually
from tests.integration.test_schedules import (
    QUEUE,
    align,
    now,
    processed,
    settled,
    started_ids,
    worker,
)
from worker import Client
from worker.errors import InvalidArgumentError

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def short_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    # the region runs in this process: a run of 30 excluded times stands for
    # 20,000, and describe's and create's look of 3 such runs for 60,000
    monkeypatch.setattr(spec_module, "MAX_EXCLUDED_IN_A_ROW", 30)


async def test_a_spec_minus_all_of_itself_is_refused_and_a_long_exclusion_is_walked_past(
    clock_client: Client,
) -> None:
    """Regression: ``* * * * *`` minus ``* * * * *`` was stored, and looking
    for its next fire never ended (describe hung, and so did the schedule's
    workflow task on the system worker)."""
    everything = await clock_client.schedule_definition(
        workflow=Report, task_queue=QUEUE, args=["x"], cron="* * * * *"
    )
    everything["spec"]["exclude"] = ["* * * * *"]
    with pytest.raises(InvalidArgumentError, match=r"narrow spec\.exclude"):
        await clock_client.create_schedule("never", everything)
    assert await clock_client.list_schedules() == []

    async with worker(clock_client):
        await align(clock_client, timedelta(hours=1))
        hour = (await now(clock_client)).replace(minute=0, second=0, microsecond=0)
        # every minute left of this hour is excluded: 59 times in a row
        blocked = [hour]
        sched = await clock_client.schedule_definition(
            workflow=Report,
            task_queue=QUEUE,
            args=["x"],
            cron="* * * * *",
            spec={
                "exclude": [
                    {
                        "minute": "*",
                        "hour": str(h.hour),
                        "day": str(h.day),
                        "month": str(h.month),
                        "year": str(h.year),
                    }
                    for h in blocked
                ]
            },
            policy={"overlap": "allow-all"},
        )
        h = await clock_client.create_schedule("gap", sched)
        back = hour + timedelta(hours=1)
        assert (await h.describe())["next_fires"][:2] == [
            iso(back),
            iso(back + timedelta(minutes=1)),
        ]
        await settled(clock_client, h)
        await clock_client.advance_test_clock((back - await now(clock_client)).total_seconds() + 1)

        async def fired() -> bool:
            ids = await started_ids(clock_client, "gap")
            assert ids == [action_workflow_id("gap", back)], ids
            return True

        await eventually(fired, timeout=30, what="the first fire after the exclusions")
        await processed(h, back)  # its snapshot follows the start
        d = await h.describe()
        assert d["counters"]["actions"] == 1, d["counters"]
        assert d["counters"]["missed_catchup"] == 0 and d["counters"]["skipped"] == 0
