"""A schedule triggered and deleted at once starts the run the trigger named,
where the delete ended the schedule before it acted on the trigger, so the
workflow id `trigger` answered with never existed."""

from __future__ import annotations

import pytest

from tests.helpers import eventually
from worker import Client, ScheduleNotFoundError, WorkflowNotFoundError

pytestmark = pytest.mark.integration


async def test_a_trigger_then_a_delete_starts_the_triggered_run(client: Client) -> None:
    sched = await client.schedule_definition(
        workflow="Report", task_queue="nobody-polls", args=["tick"], cron="0 0 1 1 *"
    )
    named = []
    for i in range(3):
        h = await client.create_schedule(f"poke-{i}", sched)
        answer = await h.trigger()
        assert answer["triggered"] and answer["workflow_id"]
        named.append(answer["workflow_id"])
        await h.delete()

    async def started(wid: str) -> bool:
        try:
            await client.get_workflow_handle(wid).describe()
        except WorkflowNotFoundError:
            return False
        return True

    for wid in named:
        assert await started(wid), f"{wid}: the triggered run was never started"
    # deleted: a second delete finds nothing
    with pytest.raises(ScheduleNotFoundError):
        await client.get_schedule_handle("poke-0").delete()
    await eventually(lambda: started(named[0]), what="still there")
