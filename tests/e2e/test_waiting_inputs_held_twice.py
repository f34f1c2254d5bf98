"""Inputs that waited behind a started workflow task in the active region
reach a standby as waiting inputs, and the standby writes them as events
when a failover promotes it. The old region's later message of that run's
waiting inputs carries them again, with any that never shipped: the
promoted region applies only those, where it archived and re-applied every
one of them, so a signal sent without a request id (raw HTTP) was recorded
twice and the archive listed inputs that were never lost."""

from __future__ import annotations

import base64

import aiohttp
import orjson
import pytest

from replication.admin import list_conflicts
from replication.failover import forced_failover
from store import db
from tests.e2e.test_reapplied_tail_closes import QUEUE, Busy
from tests.helpers import eventually
from tests.integration.test_run_state import HoldBack
from tests.multiregion import Regions
from worker import Client, Worker

pytestmark = pytest.mark.e2e
NS = "held-twice"


async def _signal_without_request_id(url: str, n: int) -> None:
    """The signal as a script sends it over HTTP: no request id."""
    payload = {"metadata": {"encoding": "json/plain"}, "data": base64.b64encode(b"%d" % n).decode()}
    body = {"signal_name": "add", "input": [payload]}
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{url}/api/v1/namespaces/{NS}/workflows/busy/signal", json=body) as resp,
    ):
        assert resp.status == 200, await resp.text()


async def test_inputs_a_promotion_wrote_are_not_applied_again_from_the_old_region(
    a_with_own_database: Regions,
) -> None:
    rs = a_with_own_database
    a, b = rs[0], rs[1]
    events = "SELECT count(*) FROM history_events WHERE namespace = $1"
    waiting_in_b = "SELECT count(*) FROM buffered_events WHERE namespace = $1"
    async with (
        await Client.connect(rs.urls, namespace=NS) as client,
        await Client.connect([a.url], namespace=NS, follow_failover=False) as in_a,
        await Client.connect([b.url], namespace=NS) as in_b,
    ):
        await client.create_namespace(NS, regions=[a.name, b.name], active_region=a.name)
        await client.start_workflow(Busy, id="busy", task_queue=QUEUE)

        async def in_region_b() -> bool:
            return await rs.fetchval(b.name, events, NS) == 2

        await eventually(in_region_b, timeout=30, what="the run in region-b")
        async with Worker(in_a, task_queue=QUEUE, workflows=[Busy], deadlock_timeout=30):

            async def task_started() -> bool:
                sql = "SELECT wt_started_event_id IS NOT NULL FROM executions WHERE namespace = $1"
                return bool(await rs.fetchval(a.name, sql, NS))

            await eventually(task_started, timeout=30, what="the workflow task started in A")
            # waits behind the started task in A, and reaches B as a waiting input
            await _signal_without_request_id(a.url, 1)

            async def shipped() -> bool:
                return await rs.fetchval(b.name, waiting_in_b, NS) == 1

            await eventually(shipped, timeout=30, what="the waiting signal in region-b")
            slow_applier = await db.connect(a.dsn)
            try:
                async with HoldBack(a):  # type: ignore[arg-type]  # (it needs only a dsn)
                    # acknowledged by A, never shipped before the failover
                    await in_a.get_workflow_handle("busy").signal("add", 2, request_id="sig-2")
                    # A ships its waiting inputs before it applies what B writes
                    # (which would drop signal 1 there): its applier waits on
                    # the run's row, its publisher does not
                    await slow_applier.execute("BEGIN")
                    await slow_applier.execute(
                        "SELECT 1 FROM executions WHERE namespace = $1 FOR UPDATE", NS
                    )
                    # B writes signal 1 as an event when it takes the run over
                    await forced_failover(rs.config, NS, b.name)

                async def archived() -> list[dict[str, object]] | None:
                    rows = await list_conflicts(rs.config, NS, b.name)
                    return rows if any(c["reapplied"] for c in rows) else None

                rows = await eventually(archived, timeout=30, what="region-b to re-apply signal 2")
            finally:
                await slow_applier.close()
        history = await in_b.get_workflow_handle("busy").history()
        signals = [
            orjson.loads(base64.b64decode(e["attributes"]["input"][0]["data"]))
            for e in history
            if e["event_type"] == "WorkflowExecutionSignaled"
        ]
        assert signals == [1, 2], history
        # the archive holds the one input that was lost, signal 2, alone
        assert [(c["first_event_id"], c["last_event_id"]) for c in rows] == [(-2, -2)], rows
        outcomes = [(o["event_type"], o["outcome"]) for c in rows for o in c["reapplied"]]
        assert outcomes == [("WorkflowExecutionSignaled", "re-applied")], rows
