"""A region deposed by a forced failover archives its own tail when the new
active region writes the run first, and ships the archive for the requests
in it to be applied again there: its cancels and terminates travel with its
signals (where only signals and starts did, so a terminate the client was
told succeeded was lost), in the order they came."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from replication.admin import list_conflicts
from replication.failover import forced_failover
from tests.helpers import eventually
from tests.integration.test_run_state import HoldBack, Tally
from tests.multiregion import Regions
from worker import Client, Worker, workflow

pytestmark = pytest.mark.e2e
NS, QUEUE = "tail-closes", "tail-closes"


async def test_a_terminate_in_a_tail_archived_before_it_shipped_is_re_applied(
    a_with_own_database: Regions,
) -> None:
    rs = a_with_own_database
    a, b = rs[0], rs[1]
    events = "SELECT count(*) FROM history_events WHERE namespace = $1"
    async with (
        await Client.connect(rs.urls, namespace=NS) as client,
        await Client.connect([b.url], namespace=NS) as in_b,
    ):
        await client.create_namespace(NS, regions=[a.name, b.name], active_region=a.name)
        await client.start_workflow(Tally, id="lt", task_queue=QUEUE)

        async def in_region_b() -> bool:
            return await rs.fetchval(b.name, events, NS) == 2

        await eventually(in_region_b, timeout=30, what="the run in region-b")
        async with HoldBack(a):  # type: ignore[arg-type]  # (it needs only a dsn)
            # acknowledged by region-a, never shipped
            await client.get_workflow_handle("lt").signal("add", 1, request_id="sig-1")
            await client.get_workflow_handle("lt").terminate("lost", request_id="term-1")
            await forced_failover(rs.config, NS, b.name)
            await in_b.get_workflow_handle("lt").signal("add", 2, request_id="sig-2")

            async def archived_in_a() -> bool:
                rows = await list_conflicts(rs.config, NS, a.name)
                return any(c["kind"] == "local_tail" for c in rows)

            await eventually(archived_in_a, timeout=30, what="region-a to archive its tail")

        async def reapplied() -> list[tuple[str, str]]:
            rows = await list_conflicts(rs.config, NS, b.name)
            return [(o["event_type"], o["outcome"]) for c in rows for o in c["reapplied"]]

        outcomes = await eventually(reapplied, timeout=30, what="region-b to re-apply the tail")
        assert outcomes == [
            ("WorkflowExecutionSignaled", "re-applied"),
            ("WorkflowExecutionTerminated", "re-applied"),
        ]
        history = await in_b.get_workflow_handle("lt").history()
        signals = [
            e["attributes"]["request_id"]
            for e in history
            if e["event_type"] == "WorkflowExecutionSignaled"
        ]
        assert signals == ["sig-2", "sig-1"]
        assert history[-1]["event_type"] == "WorkflowExecutionTerminated"


@workflow.defn(name="Busy")
class Busy:
    def __init__(self) -> None:
        self.got: list[int] = []

    @workflow.run
    async def run(self) -> list[int]:
        time.sleep(4)  # noqa: ASYNC251  # holds its workflow task started while signals come
        await workflow.wait_condition(lambda: len(self.got) > 9)
        return self.got

    @workflow.signal
    def add(self, n: int) -> None:
        self.got.append(n)


@contextlib.asynccontextmanager
async def _signals_behind_a_task_lost_in_a(
    rs: Regions, client: Client, in_a: Client
) -> AsyncIterator[None]:
    """Busy's run in both regions; in A (its stream held back) a worker holds
    its workflow task started while signals 1, 2 and 3 wait behind it; then a
    forced failover to B. Yields with A still held back and the worker running."""
    a, b = rs[0], rs[1]
    events = "SELECT count(*) FROM history_events WHERE namespace = $1"
    await client.create_namespace(NS, regions=[a.name, b.name], active_region=a.name)
    await client.start_workflow(Busy, id="busy", task_queue=QUEUE)

    async def in_region_b() -> bool:
        return await rs.fetchval(b.name, events, NS) == 2

    await eventually(in_region_b, timeout=30, what="the run in region-b")
    async with (
        HoldBack(a),  # type: ignore[arg-type]  # (it needs only a dsn)
        Worker(in_a, task_queue=QUEUE, workflows=[Busy], deadlock_timeout=30),
    ):

        async def task_started() -> bool:
            sql = "SELECT wt_started_event_id IS NOT NULL FROM executions WHERE namespace = $1"
            return bool(await rs.fetchval(a.name, sql, NS))

        await eventually(task_started, timeout=30, what="the workflow task started in A")
        for n in (1, 2, 3):  # they wait behind the started task
            await in_a.get_workflow_handle("busy").signal("add", n, request_id=f"sig-{n}")
        await forced_failover(rs.config, NS, b.name)
        yield


async def test_signals_that_waited_behind_a_lost_task_are_re_applied_in_their_order(
    a_with_own_database: Regions,
) -> None:
    rs = a_with_own_database
    a, b = rs[0], rs[1]
    async with (
        await Client.connect(rs.urls, namespace=NS) as client,
        await Client.connect([a.url], namespace=NS, follow_failover=False) as in_a,
        await Client.connect([b.url], namespace=NS) as in_b,
    ):
        async with _signals_behind_a_task_lost_in_a(rs, client, in_a):
            await in_b.get_workflow_handle("busy").signal("add", 9, request_id="sig-9")

            async def archived_in_a() -> bool:
                rows = await list_conflicts(rs.config, NS, a.name)
                return any(c["kind"] == "local_tail" for c in rows)

            await eventually(archived_in_a, timeout=30, what="region-a to archive its tail")

        async def reapplied() -> list[Any]:
            rows = await list_conflicts(rs.config, NS, b.name)
            return [o for c in rows for o in c["reapplied"]]

        await eventually(reapplied, timeout=30, what="region-b to re-apply the tail")
        history = await in_b.get_workflow_handle("busy").history()
        signals = [
            e["attributes"]["request_id"]
            for e in history
            if e["event_type"] == "WorkflowExecutionSignaled"
        ]
        assert signals == ["sig-9", "sig-1", "sig-2", "sig-3"]


async def test_signals_that_waited_behind_a_lost_task_and_shipped_late_are_re_applied(
    a_with_own_database: Regions,
) -> None:
    """Shipped after the failover (the new region wrote nothing to the run
    first), the inputs that waited in the lost region reach the new active
    region as waiting inputs of a region no longer active: re-applied once
    each, in order, where they were dropped."""
    rs = a_with_own_database
    a, b = rs[0], rs[1]
    async with (
        await Client.connect(rs.urls, namespace=NS) as client,
        await Client.connect([a.url], namespace=NS, follow_failover=False) as in_a,
        await Client.connect([b.url], namespace=NS) as in_b,
    ):
        async with _signals_behind_a_task_lost_in_a(rs, client, in_a):
            pass  # (shipped only after the failover)

        async def signals_in_b() -> list[str] | None:
            history = await in_b.get_workflow_handle("busy").history()
            got = [
                e["attributes"]["request_id"]
                for e in history
                if e["event_type"] == "WorkflowExecutionSignaled"
            ]
            return got if len(got) >= 3 else None

        got = await eventually(signals_in_b, timeout=30, what="the signals in region-b")
        assert got == ["sig-1", "sig-2", "sig-3"]
        rows = await list_conflicts(rs.config, NS, b.name)
        outcomes = [o["outcome"] for c in rows for o in c["reapplied"]]
        assert outcomes.count("re-applied") == 3, rows
