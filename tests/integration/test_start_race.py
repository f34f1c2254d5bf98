"""Starts of one workflow id at once: one run, the others refused.

Starts of an id serialise on an advisory lock; each must read the id's
current run after it holds the lock, or it starts a second run beside the
one the start before it committed (baton_start_checks_v1).
"""

from __future__ import annotations

import asyncio

import pytest

from tests.conftest import Region
from worker import Client, workflow
from worker.errors import WorkflowAlreadyStartedError

pytestmark = pytest.mark.integration
PARKED = "nobody-polls-this"


@workflow.defn(name="Waits")
class Waits:
    @workflow.run
    async def run(self) -> None:
        await workflow.wait_condition(lambda: False)


async def test_many_starts_of_one_workflow_id_at_once_start_one_run(
    region: Region, client: Client
) -> None:
    # each start waits for the one before it on the id's lock, and must then
    # see the run that one committed
    async def start(wid: str) -> str | None:
        try:
            return (await client.start_workflow(Waits, id=wid, task_queue=PARKED)).run_id
        except WorkflowAlreadyStartedError:
            return None

    for wid in ("race-1", "race-2", "race-3"):
        runs = await asyncio.gather(*(start(wid) for _ in range(20)))
        assert len([r for r in runs if r]) == 1
    async with region.store.pool.acquire() as conn:
        counts = await conn.fetch(
            "SELECT workflow_id, count(*) AS n FROM executions "
            "WHERE workflow_id LIKE 'race-%' GROUP BY workflow_id"
        )
    assert {r["workflow_id"]: r["n"] for r in counts} == {"race-1": 1, "race-2": 1, "race-3": 1}
