"""A schedule's or batch job's own workflow is Baton's state of it: a client's
signal, cancel, terminate, pause, reset or update by workflow id is refused,
naming the command that changes it, and leaves the run as it was."""

from __future__ import annotations

import pytest

from tests.helpers import eventually
from worker import Client, WorkflowIdReusePolicy
from worker.errors import InvalidArgumentError, ScheduleNotFoundError

pytestmark = pytest.mark.integration


async def test_a_schedules_workflow_takes_no_writes_from_clients(client: Client) -> None:
    """Regression: ``baton workflow terminate schedule/S`` terminated the
    schedule's workflow, and the schedule was gone without a trace."""
    sched = await client.schedule_definition(
        workflow="Report", task_queue="reports", cron="0 0 1 1 *"
    )
    schedule = await client.create_schedule("yearly", sched)
    wf = client.get_workflow_handle("schedule/yearly")
    before = await wf.describe()
    assert before["execution"]["status"] == "running"
    length = before["execution"]["history_length"]

    writes = {
        "terminate": lambda: wf.terminate("gone"),
        "cancel": lambda: wf.cancel("gone"),
        "signal": lambda: wf.signal("trigger"),
        "pause": lambda: wf.pause("hold"),
        "reset": lambda: wf.reset(reason="again", to="first-workflow-task"),
        "update": lambda: wf.update("anything", timeout=5),
        "signal-with-start": lambda: client.signal_with_start_workflow(
            "Report", id="schedule/yearly", task_queue="reports", signal="trigger"
        ),
        "start terminating the running run": lambda: client.start_workflow(
            "Report",
            id="schedule/yearly",
            task_queue="reports",
            id_reuse_policy=WorkflowIdReusePolicy.TERMINATE_IF_RUNNING,
        ),
    }
    for name, write in writes.items():
        with pytest.raises(InvalidArgumentError, match=r"`baton schedule` \(update, pause") as e:
            await write()
        assert "schedule 'yearly'" in str(e.value), name

    after = await wf.describe()
    assert after["execution"]["status"] == "running"
    assert after["execution"]["history_length"] == length
    assert not after["execution"]["paused"]
    assert (await schedule.describe())["schedule_id"] == "yearly"

    # the schedule's own commands still act on it
    await schedule.pause("a note")

    async def paused() -> bool:
        return bool((await schedule.describe())["paused"])

    await eventually(paused, what="the schedule's pause applied")
    await schedule.delete()
    with pytest.raises(ScheduleNotFoundError):
        await schedule.describe()


async def test_a_batch_jobs_workflow_takes_no_writes_from_clients(client: Client) -> None:
    started = await client.start_batch(
        "WorkflowType = 'NothingRunsThis'", "terminate", reason="none", job_id="quiet"
    )
    assert started["started"] is True
    wf = client.get_workflow_handle("batch/quiet")
    with pytest.raises(InvalidArgumentError, match=r"batch job 'quiet'.*`baton batch` \(stop\)"):
        await wf.terminate("gone")
    with pytest.raises(InvalidArgumentError, match=r"`baton batch`"):
        await wf.signal("stop", "from a client")

    async def completed() -> bool:
        return (await client.describe_batch("quiet"))["state"] == "completed"

    await eventually(completed)
    # nothing a client sent reached it: it ended as its query made it end
    history = [e["event_type"] for e in await wf.history()]
    assert "WorkflowExecutionSignaled" not in history
    assert "WorkflowExecutionTerminated" not in history
