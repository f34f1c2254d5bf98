"""A schedule's workflow continues as new every so many passes (a minutely
schedule every few hours): what describe and list say of the schedule itself
stays the schedule's, not the latest run's."""

from __future__ import annotations

from datetime import datetime

import pytest

from scheduler import workflow as schedule_workflow
from tests.apps.scheduled import Report
from tests.helpers import eventually
from tests.integration.test_schedules import definition
from worker import Client

pytestmark = pytest.mark.integration


def parse(t: str) -> datetime:
    return datetime.fromisoformat(t.replace("Z", "+00:00"))


async def test_created_at_and_list_start_time_survive_the_schedules_continue_as_new(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Regression: once the schedule's workflow had continued as new, describe
    gave created_at None (the CLI: created -) and list gave the time of the
    latest continue-as-new as the schedule's start_time."""
    # the server runs in this process: its system worker continues the
    # schedule after two passes, not two hundred
    monkeypatch.setattr(schedule_workflow, "PASSES_PER_RUN", 2)
    await client.add_search_attribute("Team", "Keyword")
    # no worker polls the action's queue: its first run stays open and each
    # later fire is skipped, one pass a second
    sched = await definition(client, Report, {}, cron=None, spec={"intervals": [{"every": 1}]})
    h = await client.create_schedule("often", sched, search_attributes={"Team": "billing"})
    created = (await h.describe())["created_at"]
    assert created

    async def continued() -> list[str]:
        runs = [
            r
            async for r in client.list_workflows(
                "WorkflowId = 'schedule/often'", include_system=True
            )
        ]
        ended = [r.run_id for r in runs if r.status.name == "CONTINUED_AS_NEW"]
        assert len(ended) >= 2, [(r.run_id, r.status) for r in runs]
        return ended

    await eventually(continued, timeout=60, what="the schedule's workflow continued as new twice")
    d = await h.describe()
    assert d["created_at"] == created, d["created_at"]
    assert d["counters"]["skipped"] >= 2
    listed = await client.list_schedules("Team = 'billing'")
    assert [s["schedule_id"] for s in listed] == ["often"]
    assert parse(listed[0]["start_time"]) == parse(created), listed[0]
    await h.delete()
