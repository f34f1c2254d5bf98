"""A third region, a standby through a forced failover, does not keep the
waiting inputs the deposed region ships late: the new active region
re-applies them as events of its own, which reach the third region as
history. Kept there as waiting inputs too, a later failover to that region
wrote them a second time (a signal sent without a request id twice)."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import orjson
import pytest

from ops.pg import PgCluster
from replication.failover import caught_up, forced_failover, graceful_failover
from tests.e2e.test_reapplied_tail_closes import QUEUE, Busy
from tests.helpers import eventually
from tests.integration.test_run_state import HoldBack
from tests.multiregion import Regions, server_regions
from worker import Client, Worker

pytestmark = pytest.mark.e2e
NS = "late-inputs"
EVENTS = "SELECT count(*) FROM history_events WHERE namespace = $1"


@pytest.fixture
async def three_with_a_apart(
    pg: PgCluster, template_db: str, kafka: str, state_dir: Path, tmp_path: Path
) -> AsyncIterator[Regions]:
    """Three regions, region-a on a PostgreSQL of its own (a transaction held
    open there holds back its publisher only)."""
    async with server_regions(
        pg, template_db, kafka, state_dir, tmp_path, count=3, own_pg=(0,)
    ) as regions:
        yield regions


def _signals(history: list[dict[str, object]]) -> list[object]:
    return [
        orjson.loads(base64.b64decode(e["attributes"]["input"][0]["data"]))  # type: ignore[index]
        for e in history
        if e["event_type"] == "WorkflowExecutionSignaled"
    ]


async def test_a_third_region_keeps_no_late_inputs_the_active_region_re_applied(
    three_with_a_apart: Regions,
) -> None:
    rs = three_with_a_apart
    a, b, c = rs[0], rs[1], rs[2]
    async with (
        await Client.connect(rs.urls, namespace=NS) as client,
        await Client.connect([a.url], namespace=NS, follow_failover=False) as in_a,
        await Client.connect([c.url], namespace=NS) as in_c,
    ):
        await client.create_namespace(NS, regions=[a.name, b.name, c.name], active_region=a.name)
        await client.start_workflow(Busy, id="busy", task_queue=QUEUE)

        async def in_b_and_c() -> bool:
            return all([await rs.fetchval(r.name, EVENTS, NS) == 2 for r in (b, c)])

        await eventually(in_b_and_c, timeout=30, what="the run in region-b and region-c")
        async with Worker(in_a, task_queue=QUEUE, workflows=[Busy], deadlock_timeout=30):

            async def task_started() -> bool:
                sql = "SELECT wt_started_event_id IS NOT NULL FROM executions WHERE namespace = $1"
                return bool(await rs.fetchval(a.name, sql, NS))

            await eventually(task_started, timeout=30, what="the workflow task started in A")
            async with HoldBack(a):  # type: ignore[arg-type]  # (it needs only a dsn)
                # waits behind the started task in A, acknowledged, not shipped
                payload = {
                    "metadata": {"encoding": "json/plain"},
                    "data": base64.b64encode(b"1").decode(),
                }
                async with (
                    aiohttp.ClientSession() as http,
                    http.post(
                        f"{a.url}/api/v1/namespaces/{NS}/workflows/busy/signal",
                        json={"signal_name": "add", "input": [payload]},
                    ) as resp,
                ):
                    assert resp.status == 200, await resp.text()
                await forced_failover(rs.config, NS, b.name)

            async def re_applied_in_b() -> bool:
                history = await client.get_workflow_handle("busy").history()
                return _signals(history) == [1]

            # (the client follows the namespace to region-b)
            await eventually(re_applied_in_b, timeout=30, what="region-b to re-apply signal 1")

        async def c_has_everything() -> bool:
            return await caught_up(rs.config, a.name, c.name, NS) and await caught_up(
                rs.config, b.name, c.name, NS
            )

        await eventually(c_has_everything, timeout=30, what="region-c to apply both streams")
        waiting = "SELECT count(*) FROM buffered_events WHERE namespace = $1"
        assert await rs.fetchval(c.name, waiting, NS) == 0
        # B numbers its own waiting inputs from 1 too: the one C keeps is B's
        async with Worker(client, task_queue=QUEUE, workflows=[Busy], deadlock_timeout=30):

            async def task_started_in_b() -> bool:
                sql = "SELECT wt_started_event_id IS NOT NULL FROM executions WHERE namespace = $1"
                return bool(await rs.fetchval(b.name, sql, NS))

            await eventually(task_started_in_b, timeout=30, what="a workflow task started in B")
            await client.get_workflow_handle("busy").signal("add", 2, request_id="sig-2")
            # C writes it when it takes the run over, B's task still started
            await graceful_failover(rs.config, NS, c.name, timeout_s=30)
        assert _signals(await in_c.get_workflow_handle("busy").history()) == [1, 2]
