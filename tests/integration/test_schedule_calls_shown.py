"""A schedule's pause, unpause or update shows in describe and list once the
call returns, as the README says, also when it came while the schedule's
workflow task ran (it waits behind the task, outside the history)."""

from __future__ import annotations

import asyncio
import contextlib

import httpx
import pytest

from tests.apps.scheduled import Report
from tests.conftest import Region
from tests.integration.test_schedules import definition
from worker import Client

pytestmark = pytest.mark.integration


async def _stop_system_worker() -> None:
    """Stop this process's server's system worker, so the test takes the
    schedule's workflow tasks itself and holds one."""
    (task,) = [t for t in asyncio.all_tasks() if t.get_name() == "baton-system-worker"]
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def test_calls_behind_a_running_task_show_once_they_return(
    client: Client, region: Region
) -> None:
    """Regression: a call that came while the schedule's workflow task ran was
    buffered behind that task, and describe and list, which read the history
    alone, showed the schedule as it was before the call (a busy schedule, as
    one the system worker takes calls of one after another, showed them late)."""
    await _stop_system_worker()
    sched = await definition(client, Report, {"overlap": "skip"}, cron="0 0 1 1 *")
    h = await client.create_schedule("busy", sched)
    async with httpx.AsyncClient(timeout=30) as http:
        res = await http.post(
            f"{region.url}/api/v1/namespaces/default/workflow-tasks/poll",
            json={"task_queue": "baton.system", "identity": "test", "wait_s": 10},
        )
    task = res.json()["task"]
    assert task is not None and task["workflow_id"] == "schedule/busy", task

    # the schedule's first workflow task is held started: these wait behind it
    await h.pause("held")
    d = await h.describe()
    assert (d["paused"], d["note"], d["pending_signals"]) == (True, "held", 1), d
    assert d["paused_at"] is not None
    listed = [s for s in await client.list_schedules() if s["schedule_id"] == "busy"]
    assert listed[0]["paused"] is True and listed[0]["note"] == "held"

    await h.unpause("go on")
    await h.update({**sched, "policy": {"overlap": "allow-all"}})
    d = await h.describe()
    assert (d["paused"], d["note"], d["pending_signals"]) == (False, "go on", 3), d
    assert d["schedule"]["policy"]["overlap"] == "allow-all"
