"""A handle from a start cancels and terminates only runs of the chain that
start began, as Temporal's ``first_execution_run_id`` keeps it: never a later,
unrelated execution of the same workflow id. On real PostgreSQL."""

from __future__ import annotations

import pytest

from tests.helpers import eventually
from worker import Client, Worker, WorkflowIdConflictPolicy, workflow
from worker.errors import WorkflowNotFoundError

pytestmark = pytest.mark.integration
QUEUE = "stale-handles"


@workflow.defn
class Naps:
    @workflow.run
    async def run(self, seconds: float, hops: int) -> str:
        await workflow.sleep(seconds)
        if hops:
            workflow.continue_as_new(seconds, hops - 1)
        return "woke"


def worker(client: Client) -> Worker:
    return Worker(client, task_queue=QUEUE, workflows=[Naps])


@pytest.mark.parametrize("verb", ["cancel", "terminate"])
async def test_a_handle_of_a_closed_execution_leaves_a_new_one_of_its_id_alone(
    client: Client, verb: str
) -> None:
    """Regression: the handle's cancel and terminate went to the id's current
    run whatever it was, so a handle kept from a finished start ended the next
    execution someone started under the id."""
    wf_id = f"stale-{verb}"
    async with worker(client):
        old = await client.start_workflow(Naps, 0.1, 0, id=wf_id, task_queue=QUEUE)
        assert await old.result(timeout=20) == "woke"
        new = await client.start_workflow(Naps, 3600, 0, id=wf_id, task_queue=QUEUE)
        with pytest.raises(WorkflowNotFoundError) as err:
            await getattr(old, verb)("meant for the old one")
        assert new.first_run_id is not None and new.first_run_id in err.value.message
        assert (await new.describe())["execution"]["status"] == "running"
        # a handle of the new start, or by the id alone, still acts on it
        assert await getattr(new, verb)("meant for this one") == new.first_run_id
        assert (await new.describe())["execution"]["status"] in ("running", "terminated")


async def test_a_start_handle_acts_on_its_chain_after_continue_as_new(client: Client) -> None:
    async with worker(client):
        handle = await client.start_workflow(Naps, 0.5, 3, id="stale-chain", task_queue=QUEUE)

        async def continued() -> str | None:
            info = (await handle.describe())["execution"]
            return info["run_id"] if info["continued_from_run_id"] else None

        later = await eventually(continued, what="a later run of the chain")
        # a start that finds the chain running names a later run of it
        found = await client.start_workflow(
            Naps,
            0.5,
            3,
            id="stale-chain",
            task_queue=QUEUE,
            id_conflict_policy=WorkflowIdConflictPolicy.USE_EXISTING,
        )
        assert found.first_run_id == later != handle.first_run_id
        current = (await handle.describe())["execution"]["run_id"]
        assert await found.cancel("from the found handle") in (current, later)
        assert await handle.terminate("from the start's handle")
        assert (await handle.describe())["execution"]["status"] == "terminated"
