"""``execution_timeout`` on a start: the deadline of the whole chain, as in
Temporal. Continue-as-new and reset keep it, the run open at the deadline
times out (``timeout_type`` ``execution``), the timer is durable across a
restart, and a standby promoted by a failover fires it."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from ops.pg import PgCluster
from replication.failover import graceful_failover
from tests.conftest import Region, RegionPair, one_region, serve_region
from tests.helpers import baton_json, eventually
from worker import Client, RetryPolicy, Worker, workflow
from worker.errors import InvalidArgumentError, TimeoutError_, WorkflowFailureError

pytestmark = pytest.mark.integration
QUEUE = "execution-timeout"


@workflow.defn
class Hops:
    """Continues as new every half second, for ever."""

    @workflow.run
    async def run(self, hop: int) -> None:
        await workflow.sleep(0.5)
        workflow.continue_as_new(hop + 1)


@workflow.defn
class Longer:
    """Continues as new once asking for a run timeout longer than the chain's."""

    @workflow.run
    async def run(self, hop: int) -> float | None:
        if hop == 0:
            workflow.continue_as_new(1, run_timeout=timedelta(seconds=600))
        timeout = workflow.info().run_timeout
        return None if timeout is None else timeout.total_seconds()


@workflow.defn
class Waits:
    """Reports its timeouts, then waits for a signal that never comes."""

    def __init__(self) -> None:
        self.done = False

    @workflow.run
    async def run(self) -> str:
        await workflow.wait_condition(lambda: self.done)
        return "done"

    @workflow.signal
    def finish(self) -> None:
        self.done = True

    @workflow.query
    def timeouts(self) -> list[float | None]:
        info = workflow.info()
        return [
            None if t is None else t.total_seconds()
            for t in (info.execution_timeout, info.run_timeout)
        ]


async def timed_out_run(handle: Any) -> tuple[str, TimeoutError_]:
    """The run the chain's timeout ended and its ``TimeoutError_``."""
    with pytest.raises(WorkflowFailureError) as err:
        await handle.result(timeout=60)
    assert err.value.status == "timed_out"
    cause = err.value.__cause__
    assert isinstance(cause, TimeoutError_), cause
    return str(handle.result_run_id), cause


async def test_the_execution_timeout_ends_the_chain_across_continue_as_new(
    client: Client,
) -> None:
    async with Worker(client, task_queue=QUEUE, workflows=[Hops]):
        h = await client.start_workflow(
            Hops, 1, id="hops", task_queue=QUEUE, execution_timeout=timedelta(seconds=3)
        )
        first = await h.describe()
        ex = first["execution"]
        assert ex["execution_timeout_s"] == 3.0
        start = datetime.fromisoformat(ex["start_time"])
        deadline = datetime.fromisoformat(ex["execution_expiration_time"])
        assert deadline - start == timedelta(seconds=3)
        run_id, cause = await timed_out_run(h)
    # not the first run: the deadline held past each continue-as-new
    assert run_id != h.run_id
    assert cause.timeout_type == "execution"
    last = (await client.get_workflow_handle("hops", run_id=run_id).describe())["execution"]
    assert last["continued_from_run_id"] is not None
    assert last["execution_expiration_time"] == ex["execution_expiration_time"]
    closed = datetime.fromisoformat(last["close_time"])
    assert deadline <= closed < deadline + timedelta(seconds=2)
    events = await client.get_workflow_handle("hops", run_id=run_id).history()
    assert events[-1]["event_type"] == "WorkflowExecutionTimedOut"
    assert events[-1]["attributes"]["timeout_type"] == "execution"


async def test_a_run_timeout_is_told_apart_and_info_reads_both(client: Client) -> None:
    async with Worker(client, task_queue=QUEUE, workflows=[Waits]):
        h = await client.start_workflow(
            Waits, id="both", task_queue=QUEUE, execution_timeout=30.0, run_timeout=1.5
        )
        assert await h.query(Waits.timeouts) == [30.0, 1.5]
        _, cause = await timed_out_run(h)
    assert cause.timeout_type == "run"
    for option in ("execution_timeout", "run_timeout", "task_timeout"):
        # a typed error naming the option, not Python's ValueError of float()
        with pytest.raises(InvalidArgumentError, match=option):
            await client.start_workflow(Waits, id="typed", task_queue=QUEUE, **{option: "5m"})


async def test_the_run_timeout_is_capped_to_the_execution_timeout(client: Client) -> None:
    """As in Temporal: without a run timeout, a run's is the execution
    timeout, and a longer one is cut to it; the run open at the deadline
    still times out as the chain's (``execution``), not its own."""
    async with Worker(client, task_queue=QUEUE, workflows=[Waits]):
        alone = await client.start_workflow(
            Waits, id="capped-alone", task_queue=QUEUE, execution_timeout=2
        )
        longer = await client.start_workflow(
            Waits, id="capped-longer", task_queue=QUEUE, execution_timeout=30, run_timeout=60
        )
        assert await alone.query(Waits.timeouts) == [2.0, 2.0]
        assert await longer.query(Waits.timeouts) == [30.0, 30.0]
        assert (await longer.describe())["execution"]["run_timeout_s"] == 30.0
        _, cause = await timed_out_run(alone)
    assert cause.timeout_type == "execution"
    await longer.terminate(reason="done")


async def test_a_continue_as_new_run_timeout_is_capped_too(client: Client) -> None:
    async with Worker(client, task_queue=QUEUE, workflows=[Longer]):
        out = await client.execute_workflow(
            Longer, 0, id="longer", task_queue=QUEUE, execution_timeout=30
        )
    assert out == 30.0


async def test_a_reset_keeps_the_chains_deadline(client: Client) -> None:
    async with Worker(client, task_queue=QUEUE, workflows=[Waits]):
        h = await client.start_workflow(Waits, id="reset-me", task_queue=QUEUE, execution_timeout=4)
        assert await h.query(Waits.timeouts) == [4.0, 4.0]
        ex = (await h.describe())["execution"]
        deadline = datetime.fromisoformat(ex["execution_expiration_time"])
        new_run = await h.reset(to="first-workflow-task", reason="try again")
        reset = client.get_workflow_handle("reset-me", run_id=new_run)
        # the reset run's code sees the chain's timeout too
        assert await reset.query(Waits.timeouts) == [4.0, 4.0]
        run_id, cause = await timed_out_run(h)
    assert run_id == new_run
    assert cause.timeout_type == "execution"
    closed = datetime.fromisoformat((await reset.describe())["execution"]["close_time"])
    # at the first run's deadline, not four seconds after the reset
    assert deadline <= closed < deadline + timedelta(seconds=2)


async def test_the_deadline_is_a_durable_timer_across_a_server_restart(
    pg: PgCluster, template_db: str, tmp_path: Path
) -> None:
    async with (
        one_region(pg, template_db, tmp_path) as region,
        await Client.connect(region.url) as client,
    ):
        await client.create_namespace("default")
        h = await client.start_workflow(
            "Waits", id="restarted", task_queue=QUEUE, execution_timeout=3
        )
        run_id = h.run_id
    # no server ran through the deadline: the next one fires the stored timer
    async with (
        serve_region(region.config, "region-a"),
        await Client.connect(region.url) as client,
    ):
        handle = client.get_workflow_handle("restarted", run_id=run_id)
        _, cause = await timed_out_run(handle)
    assert cause.timeout_type == "execution"


async def test_a_standby_promoted_by_a_failover_times_the_chain_out(regions: RegionPair) -> None:
    rs, ns = regions, "deadlines"
    async with await Client.connect([rs.a.url, rs.b.url], namespace=ns) as client:
        await client.create_namespace(ns, regions=[rs.a.name, rs.b.name], active_region=rs.a.name)
        h = await client.start_workflow("Waits", id="moves", task_queue=QUEUE, execution_timeout=8)
        in_a = (await h.describe())["execution"]

        async def replicated() -> dict[str, Any] | None:
            async with await Client.connect(rs.b.url, namespace=ns) as in_b:
                try:
                    d = await in_b.get_workflow_handle("moves", run_id=h.run_id).describe()
                except Exception:
                    return None
                return d["execution"] if d["execution"]["history_length"] >= 2 else None

        in_b = await eventually(replicated, timeout=30, what="the run in region-b")
        assert in_b["execution_expiration_time"] == in_a["execution_expiration_time"]
        assert in_b["execution_timeout_s"] == 8.0
        await graceful_failover(rs.a.config, ns, rs.b.name, timeout_s=60)
        _, cause = await timed_out_run(h)
        assert cause.timeout_type == "execution"
        events = await h.history()
        # region-b (failover version 2 and up) closed it, at the chain's deadline
        assert events[-1]["event_type"] == "WorkflowExecutionTimedOut"
        assert events[-1]["version"] % 100 == 2
        closed = datetime.fromisoformat(events[-1]["event_time"])
        deadline = datetime.fromisoformat(in_a["execution_expiration_time"])
        assert deadline <= closed < deadline + timedelta(seconds=3)


async def test_a_standby_row_an_older_release_applied_gets_its_chain_at_promotion(
    regions: RegionPair,
) -> None:
    """A standby that applied a run's start before it knew the chain columns
    (an older release, upgraded after the active region) holds a row without
    them; its promotion reads them from the run's started event, so the run
    keeps its deadline and retry policy in the new active region."""
    rs, ns = regions, "older-standby"
    async with await Client.connect([rs.a.url, rs.b.url], namespace=ns) as client:
        await client.create_namespace(ns, regions=[rs.a.name, rs.b.name], active_region=rs.a.name)
        policy = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_attempts=3)
        h = await client.start_workflow(
            "Waits", id="older", task_queue=QUEUE, execution_timeout=8, retry_policy=policy
        )
        in_a = (await h.describe())["execution"]

        async def replicated() -> bool:
            async with await Client.connect(rs.b.url, namespace=ns) as in_b:
                try:
                    d = await in_b.get_workflow_handle("older", run_id=h.run_id).describe()
                except Exception:
                    return False
                return bool(d["execution"]["history_length"] >= 2)

        await eventually(replicated, timeout=30, what="the run in region-b")
        conn = await asyncpg.connect(rs.b.dsn)
        try:
            await conn.execute(
                "UPDATE executions SET execution_timeout_s = NULL,"
                " execution_expiration_time = NULL, retry_policy = NULL"
                " WHERE namespace = $1 AND workflow_id = 'older'",
                ns,
            )
        finally:
            await conn.close()
        await graceful_failover(rs.a.config, ns, rs.b.name, timeout_s=60)
        d = (await h.describe())["execution"]
        assert d["execution_expiration_time"] == in_a["execution_expiration_time"]
        assert d["execution_timeout_s"] == 8.0
        assert d["retry_policy"]["maximum_attempts"] == 3
        _, cause = await timed_out_run(h)
        assert cause.timeout_type == "execution"


async def test_the_cli_starts_with_an_execution_timeout_and_describe_shows_it(
    region: Region, client: Client
) -> None:
    start = ("workflow", "start", "--type", "Waits", "--task-queue", QUEUE, "--id", "by-cli")
    code, out, err = await baton_json(region.config_path, *start, "--execution-timeout", "120")
    assert code == 0, err
    code, out, err = await baton_json(region.config_path, "workflow", "describe", "by-cli")
    assert code == 0, err
    assert out["execution"]["execution_timeout_s"] == 120.0
    code, out, err = await baton_json(
        region.config_path, *start[:-1], "bad-cli", "--execution-timeout", "-1"
    )
    assert code != 0
    # over HTTP: the start's field, and bad input is a typed error naming it
    base = f"{region.url}/api/v1/namespaces/default/workflows"
    body = {"workflow_id": "by-http", "workflow_type": "Waits", "task_queue": QUEUE}
    async with httpx.AsyncClient(timeout=30) as http:
        r = await http.post(base, json={**body, "execution_timeout_s": 0})
        assert r.status_code == 400, r.text
        assert r.json()["error"]["code"] == "INVALID_ARGUMENT"
        assert "execution_timeout_s" in r.json()["error"]["message"]
        r = await http.post(base, json={**body, "execution_timeout_s": 60})
        assert r.status_code == 201, r.text
    ex = (await client.get_workflow_handle("by-http").describe())["execution"]
    assert ex["execution_timeout_s"] == 60.0


async def test_a_schedule_starts_its_runs_with_the_execution_timeout(client: Client) -> None:
    sched = await client.schedule_definition(
        workflow=Waits,
        task_queue=QUEUE,
        cron="@yearly",
        execution_timeout=timedelta(minutes=5),
        retry_policy=RetryPolicy(maximum_attempts=4),
    )
    assert sched["action"]["execution_timeout_s"] == 300.0
    bad = {**sched, "action": {**sched["action"], "retry_policy": {"maximum_attempts": -2}}}
    with pytest.raises(InvalidArgumentError, match="maximum_attempts"):
        await client.create_schedule("bad-policy", bad)
    h = await client.create_schedule("bounded", sched)
    action = (await h.describe())["schedule"]["action"]
    assert action["execution_timeout_s"] == 300.0
    assert action["retry_policy"]["maximum_attempts"] == 4
    started = (await h.trigger())["workflow_id"]

    async def described() -> dict[str, Any] | None:
        try:
            return (await client.get_workflow_handle(started).describe())["execution"]
        except Exception:
            return None

    ex = await eventually(described, what="the triggered run")
    assert ex["execution_timeout_s"] == 300.0
    assert ex["retry_policy"]["maximum_attempts"] == 4
