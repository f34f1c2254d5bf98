"""A signal-with-start's signal is applied once across a forced failover: the
losing branch's start and signal are re-applied together, as a
signal-with-start, where its signal (which carried no request id) was applied
a second time beside the client's retry in the new region."""

from __future__ import annotations

from typing import Any

import pytest

from replication.admin import list_conflicts
from replication.failover import forced_failover
from tests.conftest import RegionPair
from tests.helpers import eventually
from tests.integration.test_run_state import QUEUE, HoldBack, Tally, events_in, two_region_ns
from worker import Worker

pytestmark = pytest.mark.integration


async def test_a_signal_with_start_retried_in_the_new_region_signals_once(
    regions: RegionPair,
) -> None:
    rs, ns = regions, "sws-once"
    client = await two_region_ns(rs, ns)
    await client.start_workflow(Tally, id="warm", task_queue=QUEUE)
    await eventually(lambda: events_in(rs.b, ns, "warm"), what="the namespace in B")

    async def sws() -> None:
        await client.signal_with_start_workflow(
            Tally, id="t", task_queue=QUEUE, signal="add", signal_args=[7], request_id="sws-7"
        )

    async with HoldBack(rs.a):
        await sws()  # acknowledged by A (a new run), not shipped
        await forced_failover(rs.a.config, ns, rs.b.name)
        await sws()  # the client's retry lands in B: a new run there

    async def reapplied() -> list[Any]:
        rows = [c for c in await list_conflicts(rs.a.config, ns) if c["region"] == rs.b.name]
        return [o for c in rows for o in c["reapplied"]]

    outcomes = await eventually(reapplied, timeout=30, what="B to archive A's run")
    assert {o["outcome"] for o in outcomes} <= {
        "already applied",
        "with its start",
        "already re-applied",
    }, outcomes
    h = client.get_workflow_handle("t")
    async with Worker(client, task_queue=QUEUE, workflows=[Tally]):
        await h.signal("finish")
        assert await h.result(timeout=30) == [7]
