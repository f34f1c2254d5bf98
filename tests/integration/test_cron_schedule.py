"""``cron_schedule`` on a start, as Temporal's cron workflow: the first run's
first workflow task waits for the schedule's next time; each run that
completes, fails or times out closes linked to the chain's next run at the
next time, with the same input, the last completion result and the failure
it closed with; cancel and terminate end the chain; bad cron text is
INVALID_ARGUMENT naming the option; the backoff timer survives a restart and
a graceful failover."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from ops.pg import PgCluster
from replication.failover import graceful_failover
from tests.conftest import Region, RegionPair, one_region, serve_region
from tests.helpers import baton_json, eventually
from worker import ApplicationError, Client, Worker, workflow
from worker.errors import InvalidArgumentError, WorkflowFailureError, WorkflowNotFoundError

pytestmark = pytest.mark.integration
QUEUE = "cron"
EVERY_SECOND = "* * * * * *"  # six fields: seconds first


@workflow.defn
class Tick:
    """Counts its completed runs; the run numbered ``fail_on`` fails once."""

    @workflow.run
    async def run(self, fail_on: int) -> dict[str, Any]:
        last = workflow.get_last_completion_result(dict)
        n = (last or {}).get("n", 0) + 1
        failure = workflow.get_last_failure()
        if n == fail_on and failure is None:
            raise ApplicationError("tick failed", type="Tock", non_retryable=True)
        return {
            "n": n,
            "cron": workflow.info().cron_schedule,
            "had_last": workflow.has_last_completion_result(),
            "last_failure": None if failure is None else str(failure),
        }


@workflow.defn
class Waits:
    @workflow.run
    async def run(self) -> None:
        await workflow.wait_condition(lambda: False)


async def runs_of(client: Client, workflow_id: str, first: str) -> list[dict[str, Any]]:
    """The chain's runs from ``first``, each as describe gives it."""
    out, run_id = [], first
    while run_id is not None:
        d = await client.get_workflow_handle(workflow_id, run_id=run_id).describe()
        out.append(d["execution"])
        run_id = d["execution"]["continued_to_run_id"]
    return out


async def chain_of(client: Client, workflow_id: str, first: str, n: int) -> list[dict[str, Any]]:
    async def enough() -> list[dict[str, Any]] | None:
        runs = await runs_of(client, workflow_id, first)
        return runs if len(runs) >= n else None

    return await eventually(enough, timeout=60, what=f"{n} runs of {workflow_id}")


async def own_outcome(client: Client, workflow_id: str, run_id: str) -> Any:
    h = client.get_workflow_handle(workflow_id, run_id=run_id)
    try:
        return await h.result(follow_runs=False, timeout=30)
    except WorkflowFailureError as err:
        return err


async def test_each_close_starts_the_next_run_at_the_next_time(client: Client) -> None:
    async with Worker(client, task_queue=QUEUE, workflows=[Tick]):
        h = await client.start_workflow(
            Tick, 2, id="ticks", task_queue=QUEUE, cron_schedule=EVERY_SECOND
        )
        runs = await chain_of(client, "ticks", h.run_id, 5)
        outcomes = [await own_outcome(client, "ticks", r["run_id"]) for r in runs[:4]]
    assert runs[0]["cron_schedule"] == EVERY_SECOND
    assert [r["status"] for r in runs[:4]] == ["completed", "failed", "completed", "completed"]
    first, failed, third, fourth = outcomes
    assert first == {"n": 1, "cron": EVERY_SECOND, "had_last": False, "last_failure": None}
    assert isinstance(failed, WorkflowFailureError)
    assert "tick failed" in str(failed.__cause__)
    # the failed run's successor has the last completion result and the failure
    assert third == {"n": 2, "cron": EVERY_SECOND, "had_last": True, "last_failure": "tick failed"}
    assert fourth["n"] == 3 and fourth["last_failure"] is None
    assert all(r["cron_schedule"] == EVERY_SECOND for r in runs)
    events = await client.get_workflow_handle("ticks", run_id=runs[2]["run_id"]).history()
    started = events[0]["attributes"]
    assert started["initiator"] == "cron_schedule"
    assert started["attempt"] == 1
    assert 0 < started["first_workflow_task_backoff_s"] <= 1
    closing = (await client.get_workflow_handle("ticks", run_id=runs[0]["run_id"]).history())[-1]
    assert closing["event_type"] == "WorkflowExecutionCompleted"
    assert closing["attributes"]["new_execution_run_id"] == runs[1]["run_id"]
    # terminate ends the chain: no run after the terminated one
    await client.get_workflow_handle("ticks").terminate(reason="enough")
    with pytest.raises(WorkflowFailureError) as err:
        await h.result(timeout=30)
    assert err.value.status == "terminated"
    last = (await client.get_workflow_handle("ticks").describe())["execution"]
    assert last["status"] == "terminated" and last["continued_to_run_id"] is None


async def test_the_first_task_waits_for_the_next_time_and_cancel_ends_the_chain(
    client: Client,
) -> None:
    yearly = "0 0 1 1 *"
    h = await client.start_workflow(Waits, id="yearly", task_queue=QUEUE, cron_schedule=yearly)
    events = await h.history()
    # no workflow task before the schedule's time (next January)
    assert [e["event_type"] for e in events] == ["WorkflowExecutionStarted"]
    started = events[0]["attributes"]
    at = datetime.fromisoformat(events[0]["event_time"])
    assert started["cron_schedule"] == yearly
    wait = started["first_workflow_task_backoff_s"]
    nxt = datetime(at.year + 1, 1, 1, tzinfo=at.tzinfo)
    assert abs(wait - (nxt - at).total_seconds()) < 1
    ex = (await h.describe())["execution"]
    assert ex["cron_schedule"] == yearly and ex["status"] == "running"
    # a cron chain every second: a cancel ends it (its run closes canceled)
    async with Worker(client, task_queue=QUEUE, workflows=[Waits]):
        c = await client.start_workflow(
            Waits, id="cancel-me", task_queue=QUEUE, cron_schedule=EVERY_SECOND
        )

        async def has_task() -> bool:
            return any(e["event_type"] == "WorkflowTaskCompleted" for e in await c.history())

        await eventually(has_task, what="the first run's code")
        await c.cancel()
        with pytest.raises(WorkflowFailureError) as err:
            await c.result(timeout=30)
    assert err.value.status == "canceled"
    assert (await c.describe())["execution"]["continued_to_run_id"] is None
    await h.terminate(reason="done")


async def test_the_execution_timeout_ends_the_chain_timed_out(client: Client) -> None:
    """As in Temporal: the run waiting for its time when the chain's deadline
    passes times out, so the cron workflow ends timed out (its result says so)."""
    async with Worker(client, task_queue=QUEUE, workflows=[Tick]):
        h = await client.start_workflow(
            Tick,
            0,
            id="bounded",
            task_queue=QUEUE,
            cron_schedule=EVERY_SECOND,
            execution_timeout=3.5,
        )
        with pytest.raises(WorkflowFailureError) as err:
            await h.result(timeout=30)
    assert err.value.status == "timed_out"
    runs = await runs_of(client, "bounded", h.run_id)
    assert len(runs) >= 3
    assert {r["status"] for r in runs[:-1]} == {"completed"}
    assert runs[-1]["status"] == "timed_out"


async def test_bad_cron_text_is_invalid_argument_naming_the_option(
    region: Region, client: Client
) -> None:
    for bad in ("61 * * * *", "every day", "* * *", "0 0 31 2 *"):
        with pytest.raises(InvalidArgumentError, match="cron_schedule"):
            await client.start_workflow(Waits, id="bad-cron", task_queue=QUEUE, cron_schedule=bad)
    with pytest.raises(InvalidArgumentError, match="cron_schedule"):
        await client.start_workflow(Waits, id="bad-cron", task_queue=QUEUE, cron_schedule=5)  # type: ignore[arg-type]
    base = f"{region.url}/api/v1/namespaces/default/workflows"
    body = {"workflow_id": "bad-cron", "workflow_type": "Waits", "task_queue": QUEUE}
    async with httpx.AsyncClient(timeout=30) as http:
        r = await http.post(base, json={**body, "cron_schedule": "61 * * * *"})
        assert r.status_code == 400, r.text
        assert r.json()["error"]["code"] == "INVALID_ARGUMENT"
        assert "cron_schedule" in r.json()["error"]["message"]
    start = ("workflow", "start", "--type", "Waits", "--task-queue", QUEUE, "--id", "bad-cron")
    for bad in ("61 * * * *", "0 0 31 2 *"):
        code, out, err = await baton_json(region.config_path, *start, "--cron", bad)
        assert code == 2, (out, err)  # a usage error, found before anything is sent
        assert "--cron" in str(out) + err
    # nothing was stored
    with pytest.raises(WorkflowNotFoundError):
        await client.get_workflow_handle("bad-cron").describe()
    # the CLI starts a cron workflow, and describe shows its schedule
    code, out, err = await baton_json(
        region.config_path, *start[:-1], "cli-cron", "--cron", "@daily"
    )
    assert code == 0, err
    code, out, err = await baton_json(region.config_path, "workflow", "describe", "cli-cron")
    assert code == 0, err
    assert out["execution"]["cron_schedule"] == "@daily"


async def test_the_backoff_is_a_durable_timer_across_a_server_restart(
    pg: PgCluster, template_db: str, tmp_path: Path
) -> None:
    async with (
        one_region(pg, template_db, tmp_path) as region,
        await Client.connect(region.url) as client,
    ):
        await client.create_namespace("default")
        h = await client.start_workflow(
            "Tick", 0, id="restarted", task_queue=QUEUE, cron_schedule="*/3 * * * * *"
        )
    # no server ran through the first time: the next one fires the stored timer
    async with (
        serve_region(region.config, "region-a"),
        await Client.connect(region.url) as client,
        Worker(client, task_queue=QUEUE, workflows=[Tick]),
    ):
        runs = await chain_of(client, "restarted", h.run_id, 3)
        assert runs[0]["status"] == runs[1]["status"] == "completed"
        await client.get_workflow_handle("restarted").terminate(reason="done")


async def test_a_standby_promoted_by_a_failover_carries_the_chain_on(regions: RegionPair) -> None:
    rs, ns = regions, "crons"
    # once a minute, 15 s from now: its first time comes after the failover
    cron = f"{(datetime.now(UTC).second + 15) % 60} * * * * *"
    async with await Client.connect([rs.a.url, rs.b.url], namespace=ns) as client:
        await client.create_namespace(ns, regions=[rs.a.name, rs.b.name], active_region=rs.a.name)
        h = await client.start_workflow("Tick", 0, id="moves", task_queue=QUEUE, cron_schedule=cron)

        async def replicated() -> bool:
            async with await Client.connect(rs.b.url, namespace=ns) as in_b:
                try:
                    d = await in_b.get_workflow_handle("moves", run_id=h.run_id).describe()
                except Exception:
                    return False
                return d["execution"]["cron_schedule"] == cron

        await eventually(replicated, timeout=30, what="the run in region-b")
        await graceful_failover(rs.a.config, ns, rs.b.name, timeout_s=60)
        async with Worker(client, task_queue=QUEUE, workflows=[Tick]):
            runs = await chain_of(client, "moves", h.run_id, 2)
            assert runs[0]["status"] == "completed"
            events = await client.get_workflow_handle("moves", run_id=h.run_id).history()
            # region-b (failover version 2 and up) ran the first run's code
            scheduled = [e for e in events if e["event_type"] == "WorkflowTaskScheduled"]
            assert scheduled[0]["version"] % 100 == 2
            assert runs[1]["cron_schedule"] == cron
        await client.get_workflow_handle("moves").terminate(reason="done")
