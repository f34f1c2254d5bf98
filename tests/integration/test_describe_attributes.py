"""``handle.describe()`` reads as Temporal's ``WorkflowExecutionDescription``
(``d.status``, ``d.run_id``, ...) and stays the dict it was."""

from __future__ import annotations

from datetime import datetime

import pytest

from tests.helpers import eventually
from worker import (
    Client,
    Worker,
    WorkflowExecutionDescription,
    WorkflowExecutionStatus,
    workflow,
)

pytestmark = pytest.mark.integration
QUEUE = "described"


@workflow.defn(name="Waits")
class Waits:
    def __init__(self) -> None:
        self.go = False

    @workflow.run
    async def run(self) -> str:
        await workflow.wait_condition(lambda: self.go)
        return "done"

    @workflow.signal
    def release(self) -> None:
        self.go = True


async def test_describe_gives_temporals_attributes_beside_the_dict(client: Client) -> None:
    async with Worker(client, task_queue=QUEUE, workflows=[Waits]):
        h = await client.start_workflow(
            Waits, id="described", task_queue=QUEUE, memo={"owner": "ops", "n": 3}
        )

        async def started() -> WorkflowExecutionDescription | None:
            d = await h.describe()
            return d if d.history_length >= 3 else None

        d = await eventually(started, what="the first workflow task")
        assert isinstance(d, dict)
        assert d.status is WorkflowExecutionStatus.RUNNING
        assert d.status == "running" == d["execution"]["status"]
        assert d.id == d.workflow_id == "described"
        assert d.run_id == h.run_id
        assert d.workflow_type == "Waits"
        assert d.task_queue == QUEUE
        assert isinstance(d.start_time, datetime) and d.start_time.tzinfo is not None
        assert d.close_time is None
        assert d.memo == {"owner": "ops", "n": 3}
        assert await d.memo() == {"owner": "ops", "n": 3}  # as Temporal reads it
        assert d.memo["owner"] == d["execution"]["memo"]["owner"]
        assert d.raw_description is d

        await h.signal(Waits.release)
        assert await h.result() == "done"
        d = await h.describe()
        assert d.status == WorkflowExecutionStatus.COMPLETED
        assert d.status.name == "COMPLETED"
        assert d.close_time is not None and d.close_time >= d.start_time
        assert d.history_length == d["execution"]["history_length"] >= 5

    listed = [run async for run in client.list_workflows("WorkflowId = 'described'")]
    assert [run.status for run in listed] == [WorkflowExecutionStatus.COMPLETED]
    assert listed[0].status == "completed"
