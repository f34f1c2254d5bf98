"""A reset the deposed region made and never shipped is made again where the
namespace is active now, when that region returns: the same reset (its run,
its point, its reason and request id), where its new run's start was
refused beside the open old run and the reset a client was told succeeded
was lost."""

from __future__ import annotations

import pytest

from replication.admin import list_conflicts
from replication.failover import forced_failover
from tests.helpers import eventually
from tests.integration.test_run_state import HoldBack, Tally
from tests.multiregion import Regions
from worker import Client, Worker

pytestmark = pytest.mark.e2e
NS, QUEUE = "lost-reset", "lost-reset"
EVENTS = "SELECT count(*) FROM history_events WHERE namespace = $1"


async def test_a_reset_in_a_lost_tail_is_made_again(a_with_own_database: Regions) -> None:
    rs = a_with_own_database
    a, b = rs[0], rs[1]
    async with (
        await Client.connect(rs.urls, namespace=NS) as client,
        await Client.connect([a.url], namespace=NS, follow_failover=False) as in_a,
        await Client.connect([b.url], namespace=NS) as in_b,
    ):
        await client.create_namespace(NS, regions=[a.name, b.name], active_region=a.name)
        old = await client.start_workflow(Tally, id="rt", task_queue=QUEUE)
        async with Worker(in_a, task_queue=QUEUE, workflows=[Tally]):
            await in_a.get_workflow_handle("rt").signal("add", 1, request_id="sig-1")

            async def settled() -> bool:
                last = await rs.fetchval(
                    a.name,
                    "SELECT event_type FROM history_events WHERE namespace = $1 "
                    "AND event_type <> 'WorkflowExecutionStarted' ORDER BY event_id DESC LIMIT 1",
                    NS,
                )
                signaled = await rs.fetchval(
                    a.name,
                    "SELECT count(*) FROM history_events WHERE namespace = $1 "
                    "AND event_type = 'WorkflowExecutionSignaled'",
                    NS,
                )
                in_a_now = await rs.fetchval(a.name, EVENTS, NS)
                return (
                    last == "WorkflowTaskCompleted"
                    and signaled == 1
                    and await rs.fetchval(b.name, EVENTS, NS) == in_a_now
                )

            await eventually(settled, timeout=30, what="both tasks done, and in region-b")
        async with HoldBack(a):  # type: ignore[arg-type]  # (it needs only a dsn)
            # acknowledged by region-a, never shipped
            new_run = await in_a.get_workflow_handle("rt").reset(
                to="first-workflow-task", reason="redo", request_id="reset-1"
            )
            # the new run's own input, after its reset
            await in_a.get_workflow_handle("rt").signal("add", 5, request_id="sig-5")
            await forced_failover(rs.config, NS, b.name)

        async def reapplied() -> list[dict[str, object]] | None:
            rows = await list_conflicts(rs.config, NS, b.name)
            got = [o for c in rows for o in c["reapplied"]]
            return got or None

        async def both() -> list[dict[str, object]] | None:
            got = await reapplied()
            return (
                got if got and any(o["event_type"] == "WorkflowTaskFailed" for o in got) else None
            )

        outcomes = await eventually(both, timeout=30, what="region-b to re-apply the tail")
        reset = [o for o in outcomes if o["event_type"] == "WorkflowTaskFailed"]
        assert [o["outcome"] for o in reset] == ["re-applied"], outcomes
        # the copied start and signal come with the reset, not one by one
        with_it = [o["event_type"] for o in outcomes if o["outcome"] == "with its reset"]
        assert with_it == ["WorkflowExecutionStarted", "WorkflowExecutionSignaled"], outcomes
        # the old run is closed by the reset, and the new run is current
        current = "SELECT run_id::text FROM current_executions WHERE namespace = $1"
        again = await rs.fetchval(b.name, current, NS)
        assert again == reset[0]["run_id"] and again != old.run_id, outcomes
        status = "SELECT status FROM executions WHERE namespace = $1 AND run_id::text = $2"
        assert await rs.fetchval(b.name, status, NS, old.run_id) == "terminated"
        assert await rs.fetchval(b.name, status, NS, again) == "running"
        history = await in_b.get_workflow_handle("rt", run_id=again).history()
        failed = [e for e in history if e["event_type"] == "WorkflowTaskFailed"]
        assert failed[-1]["attributes"]["request_id"] == "reset-1"
        assert failed[-1]["attributes"]["reset_from_run_id"] == old.run_id
        # the signal after the point is taken again, once, and the new run's
        # own signal is re-applied to the new run made here
        signals = [e for e in history if e["event_type"] == "WorkflowExecutionSignaled"]
        assert [e["attributes"]["request_id"] for e in signals] == ["sig-1", "sig-5"], history
        # a retry of the reset finds it made
        async with Worker(in_b, task_queue=QUEUE, workflows=[Tally]):
            retried = await in_b.get_workflow_handle("rt", run_id=old.run_id).reset(
                to="first-workflow-task", reason="redo", request_id="reset-1"
            )
            assert retried == again
            assert new_run != again  # (made anew here: a run id of its own)
            await in_b.get_workflow_handle("rt").signal("finish")
            assert await in_b.get_workflow_handle("rt").result() == [1, 5]
