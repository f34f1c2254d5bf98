"""A request to a workflow's current run that meets its continue-as-new, on real PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import pytest

from tests.conftest import Region
from tests.helpers import eventually
from worker import Client
from worker._http import API
from worker.wire import WorkflowIdReusePolicy

pytestmark = pytest.mark.integration
QUEUE = "no-worker-polls-this"


async def waiting_on_locks(conn: asyncpg.Connection) -> int:
    return int(
        await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
            "AND datname = current_database()"
        )
    )


async def race_with_continue_as_new(
    region: Region, client: Client, workflow_id: str, request: Callable[[], Awaitable[Any]]
) -> tuple[str, Any]:
    """Run ``request`` while a continue-as-new of ``workflow_id``'s run holds its
    row: the first run's id and what the request answered."""
    handle = await client.start_workflow("Loops", id=workflow_id, task_queue=QUEUE)
    ns = f"{API}/namespaces/default"
    polled = await client.call(
        "POST", f"{ns}/workflow-tasks/poll", {"task_queue": QUEUE, "identity": "t", "wait_s": 5.0}
    )
    token = polled["task"]["task_token"]
    holder = await asyncpg.connect(region.dsn)
    watcher = await asyncpg.connect(region.dsn)
    try:
        # Hold the run's row so that the continue-as-new and then the signal
        # queue behind it, in that order.
        txn = holder.transaction()
        await txn.start()
        await holder.execute(
            "SELECT 1 FROM executions WHERE namespace = 'default' AND run_id = $1 FOR UPDATE",
            uuid.UUID(handle.run_id),
        )
        continued = asyncio.create_task(
            client.call(
                "POST",
                f"{ns}/workflow-tasks/complete",
                {
                    "task_token": token,
                    "identity": "t",
                    "commands": [{"type": "ContinueAsNew", "attributes": {"input": []}}],
                },
            )
        )
        await eventually(lambda: _at_least(watcher, 1), timeout=10)
        answer = asyncio.create_task(request())
        await eventually(lambda: _at_least(watcher, 2), timeout=10)
        await txn.rollback()
        await continued
        return handle.run_id, await answer
    finally:
        await holder.close()
        await watcher.close()


async def test_a_signal_that_waited_for_a_continue_as_new_goes_to_the_new_run(
    region: Region, client: Client
) -> None:
    handle = client.get_workflow_handle("loops")
    # before: the signal's statement had read the old run as current,
    # locked it once the continue-as-new committed, and answered
    # WORKFLOW_NOT_RUNNING for a workflow that was running
    first, _ = await race_with_continue_as_new(
        region, client, "loops", lambda: handle.signal("poke")
    )
    current = await client.get_workflow_handle("loops").describe()
    assert current["execution"]["run_id"] != first
    events = await client.get_workflow_handle("loops").history()
    assert "WorkflowExecutionSignaled" in [e["event_type"] for e in events]


async def _at_least(conn: asyncpg.Connection, n: int) -> bool:
    return await waiting_on_locks(conn) >= n


async def test_a_signal_with_start_that_waited_for_a_continue_as_new_signals_the_new_run(
    region: Region, client: Client
) -> None:
    first, answer = await race_with_continue_as_new(
        region,
        client,
        "loops-sws",
        lambda: client.signal_with_start_workflow(
            "Loops", id="loops-sws", task_queue=QUEUE, signal="poke"
        ),
    )
    # before: the signal was appended to the first run's history after its
    # ContinuedAsNew event, where no code ever sees it, and the call answered
    # with that closed run
    assert answer.run_id != first
    closed = await client.get_workflow_handle("loops-sws", run_id=first).history()
    assert closed[-1]["event_type"] == "WorkflowExecutionContinuedAsNew"
    current = await client.get_workflow_handle("loops-sws").describe()
    assert current["execution"]["run_id"] == answer.run_id
    events = await client.get_workflow_handle("loops-sws", run_id=answer.run_id).history()
    assert [e["event_type"] for e in events].count("WorkflowExecutionSignaled") == 1


async def test_a_terminating_start_that_waited_for_a_continue_as_new_ends_the_new_run(
    region: Region, client: Client
) -> None:
    first, answer = await race_with_continue_as_new(
        region,
        client,
        "loops-tir",
        lambda: client.start_workflow(
            "Loops",
            id="loops-tir",
            task_queue=QUEUE,
            id_reuse_policy=WorkflowIdReusePolicy.TERMINATE_IF_RUNNING,
        ),
    )
    closed = await client.get_workflow_handle("loops-tir", run_id=first).history()
    assert closed[-1]["event_type"] == "WorkflowExecutionContinuedAsNew"
    running = [r async for r in client.list_workflows("WorkflowId = 'loops-tir'")]
    assert [r.run_id for r in running if r.status == "running"] == [answer.run_id]
    assert sorted(r.status for r in running) == ["continued_as_new", "running", "terminated"]
