"""What Temporal users type: ``arg=`` for a call's one argument (start,
execute, signal, query, update, activities, continue-as-new), and the id
policies spelled ``WorkflowIDReusePolicy`` / ``WorkflowIDConflictPolicy``."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.helpers import eventually
from worker import (
    ArgumentsGivenTwiceError,
    Client,
    Worker,
    WorkflowContinuedAsNewError,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
    activity,
    workflow,
)
from worker.common import WorkflowIDReusePolicy as FromCommon
from worker.errors import WorkflowAlreadyStartedError

pytestmark = pytest.mark.integration
QUEUE = "temporal-spellings"


@activity.defn
async def double(n: int) -> int:
    return 2 * n


@workflow.defn
class Counter:
    def __init__(self) -> None:
        self.total = 0
        self.done = False

    @workflow.run
    async def run(self, start: int) -> int:
        if start < 0:
            workflow.continue_as_new(arg=-start)
        self.total = await workflow.execute_activity(
            double, arg=start, start_to_close_timeout=timedelta(seconds=10)
        )
        await workflow.wait_condition(lambda: self.done)
        return self.total

    @workflow.signal
    def add(self, n: int) -> None:
        self.total += n

    @workflow.query
    def plus(self, n: int) -> int:
        return self.total + n

    @workflow.update
    def finish(self, n: int) -> int:
        self.total += n
        self.done = True
        return self.total


async def test_arg_is_one_argument_everywhere_temporal_takes_it(client: Client) -> None:
    async with Worker(client, task_queue=QUEUE, workflows=[Counter], activities=[double]):
        h = await client.start_workflow(Counter.run, arg=-5, id="by-arg", task_queue=QUEUE)

        async def doubled() -> bool:
            return bool(await h.query(Counter.plus, arg=0) == 10)  # 2 * 5, continued as new

        await eventually(doubled, what="the activity's result")
        await h.signal(Counter.add, arg=1)
        assert await h.query(Counter.plus, arg=100) == 111  # 2 * 5 + 1 + 100
        assert await h.execute_update(Counter.finish, arg=1) == 12
        assert await h.result() == 12
        last = h.result_run_id
        # the first run continued as new: not followed, it says so, as Temporal's does
        with pytest.raises(WorkflowContinuedAsNewError) as can:
            await h.result(follow_runs=False)
        assert can.value.new_execution_run_id == last != h.run_id
        with pytest.raises(ArgumentsGivenTwiceError):
            await client.start_workflow(Counter.run, 1, arg=2, id="twice", task_queue=QUEUE)
        with pytest.raises(ArgumentsGivenTwiceError):
            await client.execute_workflow(
                Counter.run, arg=1, args=[2], id="twice", task_queue=QUEUE
            )
        # nothing was started by the refused calls
        assert [r async for r in client.list_workflows("WorkflowId = 'twice'")] == []


async def test_the_id_policies_spelled_as_in_temporal(client: Client) -> None:
    assert FromCommon is WorkflowIDReusePolicy
    h = await client.start_workflow("Counter", 1, id="spelled", task_queue=QUEUE)
    same = await client.start_workflow(
        "Counter",
        1,
        id="spelled",
        task_queue=QUEUE,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
    )
    assert same.run_id == h.run_id
    await h.terminate(reason="done")
    with pytest.raises(WorkflowAlreadyStartedError):
        await client.start_workflow(
            "Counter",
            1,
            id="spelled",
            task_queue=QUEUE,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        )
