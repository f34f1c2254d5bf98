"""Schedule requests as a user sends them: actions the start would refuse are
refused when the schedule is made, and retried calls act once."""

from __future__ import annotations

from typing import Any

import pytest

from tests.apps.scheduled import Report
from worker import Client
from worker.errors import InvalidArgumentError

pytestmark = pytest.mark.integration
QUEUE = "scheduled"


async def _definition(client: Client, **action: Any) -> dict[str, Any]:
    sched = await client.schedule_definition(
        workflow=Report, task_queue=QUEUE, args=["tick"], cron="0 0 1 1 *"
    )
    sched["action"].update(action)
    return sched


@pytest.mark.parametrize(
    ("action", "field"),
    [
        ({"input": [1, "x"]}, "action.input.0"),
        ({"task_timeout_s": 7200}, "action.task_timeout_s"),
        ({"run_timeout_s": 1e12}, "action.run_timeout_s"),
        ({"task_queue": "q" * 1001}, "action.task_queue"),
    ],
)
async def test_an_action_the_start_would_refuse_is_refused_at_create_and_update(
    clock_client: Client, action: dict[str, Any], field: str
) -> None:
    """Regression: these were stored, and every fire then failed as
    ``start-failed`` with the start's INVALID_ARGUMENT."""
    bad = await _definition(clock_client, **action)
    with pytest.raises(InvalidArgumentError, match=field) as caught:
        await clock_client.create_schedule("refused", bad)
    assert caught.value.details["problems"][0]["field"].startswith(field)
    assert await clock_client.list_schedules() == []
    h = await clock_client.create_schedule("kept", await _definition(clock_client), paused=True)
    before = (await h.describe())["schedule"]
    with pytest.raises(InvalidArgumentError, match=field):
        await h.update(bad)
    with pytest.raises(InvalidArgumentError, match=field):
        await clock_client.get_schedule_handle("upserted").update(bad, create=True)
    assert (await h.describe())["schedule"] == before
    assert [s["schedule_id"] for s in await clock_client.list_schedules()] == ["kept"]
