"""A bad build rolled back: the auto-upgrade runs it broke go on at once.

Build 2 is incompatible with build 1's histories (a non-determinism error on
every task of a run begun on 1). Made current, it fails the runs that follow
it, whose workflow task retries back off (up to ``workflow_task_retry_max_s``,
ten minutes by default). ``set-current`` back to build 1 (or ending the ramp
of build 2) is their fix: they go on at once on build 1, as they do when an
operator overrides one or a fixed worker starts, where they waited out the
backoff (minutes on a build that had been live a while).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from ops.pg import PgCluster
from tests.apps.versioned import ACTIVITIES, V1, V2_BAD
from tests.conftest import default_namespace_client, one_region
from tests.helpers import eventually
from tests.versioning_helpers import QUEUE, registered
from worker import Client, Worker

pytestmark = pytest.mark.integration


@pytest.fixture
async def client(pg: PgCluster, template_db: str, tmp_path: Path) -> AsyncIterator[Client]:
    # the default backoff (the test regions cap it at a second)
    async with (
        one_region(pg, template_db, tmp_path, workflow_task_retry_max_s=600.0) as region,
        default_namespace_client(region) as c,
    ):
        yield c


def build(client: Client, build_id: str) -> Worker:
    return Worker(
        client,
        task_queue=QUEUE,
        workflows=V1 if build_id == "1" else V2_BAD,
        activities=ACTIVITIES,
        deployment=("shop", build_id),
    )


async def backing_off(client: Client, wid: str, *, at_least_s: float) -> dict[str, Any] | None:
    """The run's failed workflow task, once its next retry is ``at_least_s`` away."""
    task = (await client.get_workflow_handle(wid).describe())["pending_workflow_task"]
    if not task or not task.get("retry_at"):
        return None
    wait = datetime.fromisoformat(task["retry_at"]) - datetime.now(UTC)
    return task if wait >= timedelta(seconds=at_least_s) else None


@pytest.mark.parametrize("rollback", ["set-current", "end-ramp"])
async def test_rolling_back_a_bad_build_retries_its_failed_runs_at_once(
    client: Client, rollback: str
) -> None:
    async with build(client, "1"), build(client, "2"):
        await registered(client, "1", "2")
        await client.set_current_version("shop", "1")
        h = await client.start_workflow("Flow", id="flow", task_queue=QUEUE)
        await h.signal("next", "a")

        async def did_a() -> bool:
            d = await h.describe()
            return not d["pending_activities"] and not d["pending_workflow_task"]

        await eventually(did_a, timeout=20, what="item a done on build 1")
        if rollback == "set-current":
            await client.set_current_version("shop", "2")
        else:
            await client.set_ramping_version("shop", "2", 100)
        await h.signal("next", "b")
        task = await eventually(
            lambda: backing_off(client, "flow", at_least_s=6),
            timeout=40,
            what="build 2's failures backing off",
        )
        assert task["last_failure_cause"] == "NonDeterminism", task

        if rollback == "set-current":
            answer = await client.set_current_version("shop", "1")
        else:
            answer = await client.set_ramping_version("shop", None, 0)

        async def did_b() -> bool:
            d = await h.describe()
            return not d["pending_activities"] and not d["pending_workflow_task"]

        # well before the retry the backoff had set (6 s or more away)
        await eventually(did_b, timeout=4, what="item b done on build 1 at once")
        assert answer["tasks_rerouted"] == 1, answer  # the retry counts
        await h.signal("finish")
        assert await h.result(timeout=20) == ["did a", "did b"]
