"""Cancels and terminates acknowledged in a region that a forced failover
deposed before it shipped them are re-applied once in the new region, as its
signals and starts are (ARCHITECTURE, invariant 7), to the run they named; a
terminate the server wrote for another request is listed, not re-applied,
and so are an update's and an operator's pause (shown with the reason)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from replication.admin import list_conflicts
from replication.failover import forced_failover
from tests.conftest import RegionPair
from tests.helpers import eventually
from tests.integration.test_run_state import (
    QUEUE,
    HoldBack,
    Tally,
    events_in,
    fetchval,
    two_region_ns,
    verified,
)
from worker import Client, Worker, workflow

pytestmark = pytest.mark.integration


async def _outcomes(rs: RegionPair, ns: str, want: int) -> dict[str, list[Any]]:
    async def read() -> dict[str, list[Any]] | None:
        rows = [c for c in await list_conflicts(rs.a.config, ns) if c["region"] == rs.b.name]
        out: dict[str, list[Any]] = {}
        for c in rows:
            out.setdefault(c["workflow_id"], []).extend(c["reapplied"])
        return out if sum(len(v) for v in out.values()) >= want else None

    found = await eventually(read, timeout=30, what="B to re-apply the lost tail")
    assert found is not None
    return found


async def test_a_lost_terminate_and_cancel_are_re_applied_once(regions: RegionPair) -> None:
    rs, ns = regions, "reapplied-closes"
    client = await two_region_ns(rs, ns)
    for wid in ("t", "c"):
        await client.start_workflow(Tally, id=wid, task_queue=QUEUE)
        await eventually(lambda wid=wid: events_in(rs.b, ns, wid), what=f"{wid} in B")
    async with HoldBack(rs.a):
        # acknowledged by region-a, never shipped
        await client.get_workflow_handle("t").terminate("lost terminate", request_id="term-1")
        await client.get_workflow_handle("c").cancel("lost cancel", request_id="cancel-1")
        await client.start_workflow(Tally, id="st", task_queue=QUEUE, request_id="start-1")
        await client.get_workflow_handle("st").terminate("right away", request_id="term-2")
        await forced_failover(rs.a.config, ns, rs.b.name)

    out = await _outcomes(rs, ns, 4)
    await verified(rs, ns)
    in_b = await Client.connect([rs.b.url], namespace=ns)
    assert [(o["event_type"], o["outcome"]) for o in out["t"]] == [
        ("WorkflowExecutionTerminated", "re-applied")
    ], out
    assert [(o["event_type"], o["outcome"]) for o in out["c"]] == [
        ("WorkflowExecutionCancelRequested", "re-applied")
    ], out
    assert [o["outcome"] for o in out["st"]] == ["re-applied", "re-applied"], out
    t = (await in_b.get_workflow_handle("t").describe())["execution"]
    assert t["status"] == "terminated"
    st = (await in_b.get_workflow_handle("st").describe())["execution"]
    assert st["status"] == "terminated"
    assert st["run_id"] == out["st"][0]["run_id"] == out["st"][1]["run_id"]
    history = await in_b.get_workflow_handle("c").history()
    cancels = [e for e in history if e["event_type"] == "WorkflowExecutionCancelRequested"]
    assert len(cancels) == 1 and cancels[0]["attributes"]["request_id"] == "cancel-1"
    # a client's retry in B finds what was re-applied: nothing more happens
    await client.get_workflow_handle("c").cancel("lost cancel", request_id="cancel-1")
    assert len(await in_b.get_workflow_handle("c").history()) == len(history)
    await in_b.close()


@workflow.defn(name="Counter")
class Counter:
    def __init__(self) -> None:
        self.n = 0

    @workflow.run
    async def run(self) -> int:
        await workflow.wait_condition(lambda: self.n < 0)
        return self.n

    @workflow.update
    async def bump(self, by: int) -> int:
        self.n += by
        return self.n


async def test_a_lost_update_is_listed_as_not_re_applied(regions: RegionPair) -> None:
    rs, ns = regions, "lost-update"
    client = await two_region_ns(rs, ns)
    in_a = await Client.connect([rs.a.url], namespace=ns, follow_failover=False)
    async with Worker(in_a, task_queue=QUEUE, workflows=[Counter]):
        h = await client.start_workflow(Counter, id="u", task_queue=QUEUE)
        await eventually(lambda: events_in(rs.b, ns, "u"), what="u in B")
        async with HoldBack(rs.a):
            # answered by region-a's worker, never shipped
            assert await h.update("bump", 5, update_id="up-1", timeout=30) == 5
            await forced_failover(rs.a.config, ns, rs.b.name)
    out = await _outcomes(rs, ns, 2)
    shown = [(o["event_type"], o["outcome"], o.get("update_id")) for o in out["u"]]
    assert shown == [
        ("WorkflowExecutionUpdateAccepted", "not re-applied", "up-1"),
        ("WorkflowExecutionUpdateCompleted", "not re-applied", "up-1"),
    ], out
    await verified(rs, ns)
    await in_a.close()


async def test_a_lost_pause_is_listed_as_not_re_applied(regions: RegionPair) -> None:
    rs, ns = regions, "lost-pause"
    client = await two_region_ns(rs, ns)
    await client.start_workflow(Tally, id="p", task_queue=QUEUE)
    await eventually(lambda: events_in(rs.b, ns, "p"), what="p in B")
    async with HoldBack(rs.a):
        await client.get_workflow_handle("p").pause("look first", request_id="pause-1")
        await forced_failover(rs.a.config, ns, rs.b.name)
    out = await _outcomes(rs, ns, 1)
    assert [(o["event_type"], o["outcome"]) for o in out["p"]] == [
        ("WorkflowExecutionPaused", "not re-applied")
    ], out
    assert "make it again" in out["p"][0]["reason"]
    # nothing re-applied writes to the run in region-b: region-a drops its
    # branch all the same, where it kept the pause in its copy for good
    await verified(rs, ns)
    conn_sql = "SELECT paused FROM executions WHERE namespace = $1 AND workflow_id = 'p'"
    assert await fetchval(rs.a, conn_sql, ns) is False


async def test_a_lost_update_the_client_asked_again_is_listed_as_applied(
    regions: RegionPair,
) -> None:
    rs, ns = regions, "update-again"
    client = await two_region_ns(rs, ns)
    async with Worker(client, task_queue=QUEUE, workflows=[Tally]):
        h = await client.start_workflow(Tally, id="u", task_queue=QUEUE)
        await eventually(lambda: events_in(rs.b, ns, "u"), what="u in B")
        async with HoldBack(rs.a):

            async def accepted_in_a() -> bool:
                sql = (
                    "SELECT count(*) FROM history_events WHERE namespace = $1 "
                    "AND event_type = 'WorkflowExecutionUpdateAccepted'"
                )
                return int(await fetchval(rs.a, sql, ns)) == 1

            call = asyncio.create_task(h.update("slow_double", 21, update_id="u-1", timeout=60))
            await eventually(accepted_in_a, timeout=30, what="the update accepted in A")
            await forced_failover(rs.a.config, ns, rs.b.name)
            # the SDK asks region-b again with the same update id
            assert await call == 42
        out = await _outcomes(rs, ns, 1)
        shown = [(o["event_type"], o["outcome"]) for o in out["u"]]
        assert ("WorkflowExecutionUpdateAccepted", "already applied") in shown, out
        assert all(o["outcome"] != "not re-applied" for o in out["u"]), out
        await h.signal("finish")
        assert await h.result(timeout=30) == [42]


@workflow.defn(name="RollsOver")
class RollsOver:
    def __init__(self) -> None:
        self.roll = False

    @workflow.run
    async def run(self, n: int) -> int:
        await workflow.wait_condition(lambda: self.roll)
        workflow.continue_as_new(n + 1)

    @workflow.signal
    def roll_over(self) -> None:
        self.roll = True


async def test_a_lost_terminate_of_a_run_only_the_lost_region_held_ends_the_chain(
    regions: RegionPair,
) -> None:
    """A handle's terminate ended the run its workflow had continued into in
    the lost region, a run the new region never got: re-applied to the
    chain's current run there, not refused for a run it does not hold."""
    rs, ns = regions, "lost-chain-terminate"
    client = await two_region_ns(rs, ns)
    in_a = await Client.connect([rs.a.url], namespace=ns, follow_failover=False)
    h = await client.start_workflow(RollsOver, 0, id="r", task_queue=QUEUE)
    await eventually(lambda: events_in(rs.b, ns, "r"), what="r in B")
    async with HoldBack(rs.a):
        async with Worker(in_a, task_queue=QUEUE, workflows=[RollsOver]):
            await h.signal("roll_over", request_id="roll-1")

            async def continued_in_a() -> bool:
                run = (await in_a.get_workflow_handle("r").describe())["execution"]["run_id"]
                return bool(run != h.run_id)

            await eventually(continued_in_a, timeout=30, what="the run continued as new in A")
        # the handle acts on its chain: the continued run, held only by region-a
        await h.terminate("lost terminate", request_id="term-chain")
        await forced_failover(rs.a.config, ns, rs.b.name)
    in_b = await Client.connect([rs.b.url], namespace=ns)

    async def terminated_in_b() -> bool:
        run = (await in_b.get_workflow_handle("r").describe())["execution"]
        return bool(run["status"] == "terminated")

    await eventually(terminated_in_b, timeout=30, what="the chain terminated in B")
    out = await _outcomes(rs, ns, 3)
    closes = [o for o in out["r"] if o["event_type"] == "WorkflowExecutionTerminated"]
    assert [o["outcome"] for o in closes] == ["re-applied"], out
    assert closes[0]["run_id"] == h.run_id, out
    await in_a.close()
    await in_b.close()


async def test_a_lost_terminate_of_a_new_execution_leaves_the_older_run_alone(
    regions: RegionPair,
) -> None:
    """A start of the lost tail that the new region refuses (the id's earlier
    run is still open there) took its terminate with it: that terminate is
    refused too, never applied to the earlier run, another execution."""
    rs, ns = regions, "lost-new-execution"
    client = await two_region_ns(rs, ns)
    in_a = await Client.connect([rs.a.url], namespace=ns, follow_failover=False)
    first = await client.start_workflow(Tally, id="x", task_queue=QUEUE)
    await eventually(lambda: events_in(rs.b, ns, "x"), what="x in B")
    async with HoldBack(rs.a):
        async with Worker(in_a, task_queue=QUEUE, workflows=[Tally]):
            await first.signal("finish", request_id="finish-1")
            assert await first.result(timeout=30) == []
        again = await in_a.start_workflow(Tally, id="x", task_queue=QUEUE, request_id="start-new")
        await again.terminate("lost terminate", request_id="term-new")
        await forced_failover(rs.a.config, ns, rs.b.name)
    out = await _outcomes(rs, ns, 3)
    in_b = await Client.connect([rs.b.url], namespace=ns)
    run = (await in_b.get_workflow_handle("x").describe())["execution"]
    assert (run["run_id"], run["status"]) == (first.run_id, "running"), out
    closes = [o for o in out["x"] if o["event_type"] == "WorkflowExecutionTerminated"]
    assert [o["outcome"] for o in closes] == ["refused"], out
    await in_a.close()
    await in_b.close()
