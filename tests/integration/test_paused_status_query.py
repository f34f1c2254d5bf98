"""A paused run is listed by Temporal's `ExecutionStatus = 'Paused'`, as by
`Paused = true`, where that query was refused as no execution status."""

from __future__ import annotations

from tests.conftest import Region
from tests.helpers import baton_json
from worker import Client


async def test_execution_status_paused_lists_and_counts_paused_runs(client: Client) -> None:
    paused = await client.start_workflow("Anything", id="held", task_queue="nobody")
    await client.start_workflow("Anything", id="going", task_queue="nobody")
    done = await client.start_workflow("Anything", id="ended", task_queue="nobody")
    await paused.pause("look first")
    await done.terminate("not needed")

    async def ids(query: str) -> list[str]:
        return sorted([e.workflow_id async for e in client.list_workflows(query)])

    assert await ids("ExecutionStatus = 'Paused'") == ["held"]
    assert await ids("ExecutionStatus = 8") == ["held"]
    assert await ids("ExecutionStatus != 'Paused'") == ["ended", "going"]
    assert await ids("ExecutionStatus IN ('Paused', 'Terminated')") == ["ended", "held"]
    assert await ids("ExecutionStatus NOT IN ('Paused', 'Terminated')") == ["going"]
    assert await ids("Paused = true") == ["held"]
    count = await client.count_workflows("ExecutionStatus = 'Paused'")
    assert int(count["count"]) == 1


async def test_workflow_list_takes_status_paused(client: Client, region: Region) -> None:
    held = await client.start_workflow("Anything", id="held", task_queue="nobody")
    await client.start_workflow("Anything", id="going", task_queue="nobody")
    await held.pause("look first")
    code, out, err = await baton_json(region.config_path, "workflow", "list", "--status", "Paused")
    assert code == 0, err
    assert [w["workflow_id"] for w in out] == ["held"]
    assert [e.workflow_id async for e in client.list_workflows(status="paused")] == ["held"]
