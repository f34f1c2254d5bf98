"""A reset of a run before the current one, racing the current run's
continue-as-new: the run the chain moved on to is the one the reset ends, so
a workflow id never has two running runs."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import timedelta

import asyncpg
import pytest

from tests.conftest import Region
from tests.helpers import eventually
from worker import Client, Worker, workflow

pytestmark = pytest.mark.integration
QUEUE = "reset-chain-race"


@workflow.defn
class Stepper:
    """Each run waits for ``go``, then continues as new (the third run stays)."""

    def __init__(self) -> None:
        self.go = False

    @workflow.run
    async def run(self, generation: int) -> int:
        await workflow.wait_condition(lambda: self.go)
        if generation < 2:
            if generation == 1:
                # slow code: the test takes the run's lock while it runs
                time.sleep(1.5)  # noqa: ASYNC251
            workflow.continue_as_new(generation + 1)
        await workflow.wait_condition(lambda: False)
        return generation

    @workflow.signal
    def advance(self) -> None:
        self.go = True


async def _lock_waiters(conn: asyncpg.Connection) -> int:
    return int(
        await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
    )


async def test_a_reset_racing_the_current_runs_continue_as_new_ends_the_next_run(
    region: Region, client: Client
) -> None:
    wid = "stepper-race"
    async with Worker(
        client,
        task_queue=QUEUE,
        workflows=[Stepper],
        max_cached_workflows=0,
        deadlock_timeout=timedelta(seconds=20),
    ):
        h = await client.start_workflow(Stepper, 0, id=wid, task_queue=QUEUE)
        first = h.run_id
        assert first is not None
        await h.signal(Stepper.advance)

        async def current_run() -> str | None:
            run = (await client.get_workflow_handle(wid).describe())["execution"]
            return run["run_id"] if run["run_id"] != first else None

        second = await eventually(current_run, what="the second run")
        conn = await asyncpg.connect(region.dsn)
        other = await asyncpg.connect(region.dsn)
        try:
            await client.get_workflow_handle(wid).signal(Stepper.advance)

            async def task_started() -> bool:
                events = await client.get_workflow_handle(wid, run_id=second).history()
                return events[-1]["event_type"] == "WorkflowTaskStarted"

            await eventually(task_started, interval=0.02, what="the second run's task")
            # hold the second run while its code runs: its continue-as-new
            # waits for the lock, and so does a reset of the first run
            tx = conn.transaction()
            await tx.start()
            await conn.execute(
                "SELECT 1 FROM executions WHERE namespace = 'default' AND workflow_id = $1 "
                "AND run_id = $2 FOR UPDATE",
                wid,
                uuid.UUID(second),
            )

            async def waiters(n: int) -> bool:
                return await _lock_waiters(other) >= n

            await eventually(lambda: waiters(1), interval=0.02, what="the completion waits")
            base = client.get_workflow_handle(wid, run_id=first)
            reset = asyncio.create_task(base.reset(to="first-workflow-task", reason="race"))
            await eventually(lambda: waiters(2), interval=0.02, what="the reset waits")
            await tx.rollback()
            new_run = await asyncio.wait_for(reset, 30)
        finally:
            await conn.close()
            await other.close()
        third = (await client.get_workflow_handle(wid, run_id=second).describe())["execution"][
            "continued_to_run_id"
        ]
        # the run the chain reached while the reset waited is the one it ended
        ended = (await client.get_workflow_handle(wid, run_id=third).describe())["execution"]
        assert (ended["status"], ended["continued_to_run_id"]) == ("terminated", new_run)
        running = [
            r async for r in client.list_workflows(f"WorkflowId = '{wid}'") if r.status == "running"
        ]
        # one run runs: the reset run (or the run it went on to)
        assert len(running) == 1, running
