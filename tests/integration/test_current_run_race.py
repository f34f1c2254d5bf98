"""A request to a workflow's current run that meets its continue-as-new, on real PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import pytest

from tests.conftest import Region
from tests.helpers import eventually
from worker import Client
from worker._http import API

pytestmark = pytest.mark.integration
QUEUE = "no-worker-polls-this"


async def waiting_on_locks(conn: asyncpg.Connection) -> int:
    return int(
        await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
            "AND datname = current_database()"
        )
    )


async def test_a_signal_that_waited_for_a_continue_as_new_goes_to_the_new_run(
    region: Region, client: Client
) -> None:
    handle = await client.start_workflow("Loops", id="loops", task_queue=QUEUE)
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
        signaled = asyncio.create_task(handle.signal("poke"))
        await eventually(lambda: _at_least(watcher, 2), timeout=10)
        await txn.rollback()
        await continued
        # before: the signal's statement had read the old run as current,
        # locked it once the continue-as-new committed, and answered
        # WORKFLOW_NOT_RUNNING for a workflow that was running
        await signaled
    finally:
        await holder.close()
        await watcher.close()
    current = await client.get_workflow_handle("loops").describe()
    assert current["execution"]["run_id"] != handle.run_id
    events = await client.get_workflow_handle("loops").history()
    assert "WorkflowExecutionSignaled" in [e["event_type"] for e in events]


async def _at_least(conn: asyncpg.Connection, n: int) -> bool:
    return await waiting_on_locks(conn) >= n
