"""``start_delay`` on a start, as Temporal's: the run's first workflow task
waits that long (a durable timer, as a retry's backoff); a signal meanwhile
is recorded and waits too; not with a cron schedule."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import httpx
import pytest

from tests.conftest import Region
from tests.helpers import baton_json
from worker import Client, Worker, workflow
from worker.errors import InvalidArgumentError, WorkflowFailureError, WorkflowNotFoundError

pytestmark = pytest.mark.integration
QUEUE = "start-delay"


@workflow.defn
class Greets:
    def __init__(self) -> None:
        self.names: list[str] = []

    @workflow.run
    async def run(self) -> list[str]:
        await workflow.wait_condition(lambda: bool(self.names))
        return self.names

    @workflow.signal
    def greet(self, name: str) -> None:
        self.names.append(name)


async def test_the_first_task_waits_out_the_delay_and_a_signal_waits_too(client: Client) -> None:
    async with Worker(client, task_queue=QUEUE, workflows=[Greets]):
        h = await client.start_workflow(
            Greets, id="delayed", task_queue=QUEUE, start_delay=timedelta(seconds=2)
        )
        await h.signal(Greets.greet, "ada")
        assert await h.result(timeout=30) == ["ada"]
        events = await h.history()
        desc = await h.describe()
        # a reset's run starts its code at once: its copied started event's
        # delay is the first run's, not its own
        new_run = await h.reset(to="first-workflow-task", reason="again")
        reset = await client.get_workflow_handle("delayed", run_id=new_run).describe()
        # and the list's ExecutionTime says the same as describe's: the reset
        # run's is its own start, not its start and the first run's delay
        since, due = reset.start_time, reset.start_time + timedelta(seconds=1)
        query = (
            f"WorkflowId = 'delayed' AND ExecutionTime >= '{since.isoformat()}'"
            f" AND ExecutionTime < '{due.isoformat()}'"
        )
        early = [r.run_id async for r in client.list_workflows(query)]
    assert reset.execution_time == reset.start_time
    assert early == [new_run]
    # Temporal's execution_time: when the run's code was due
    assert desc.execution_time == desc.start_time + timedelta(seconds=2)
    started = events[0]
    assert started["attributes"]["first_workflow_task_backoff_s"] == 2.0
    # the signal was recorded at once; the code first ran after the delay
    assert events[1]["event_type"] == "WorkflowExecutionSignaled"
    scheduled = next(e for e in events if e["event_type"] == "WorkflowTaskScheduled")
    waited = datetime.fromisoformat(scheduled["event_time"]) - datetime.fromisoformat(
        started["event_time"]
    )
    assert waited >= timedelta(seconds=2)


async def test_a_start_delay_is_refused_with_a_cron_schedule_and_from_the_cli(
    region: Region, client: Client
) -> None:
    with pytest.raises(InvalidArgumentError, match="start_delay"):
        await client.start_workflow(
            Greets, id="both", task_queue=QUEUE, cron_schedule="@hourly", start_delay=5
        )
    base = f"{region.url}/api/v1/namespaces/default/workflows"
    body = {"workflow_id": "both", "workflow_type": "Greets", "task_queue": QUEUE}
    async with httpx.AsyncClient(timeout=30) as http:
        r = await http.post(base, json={**body, "start_delay_s": -1})
        assert r.status_code == 400, r.text
        assert r.json()["error"]["code"] == "INVALID_ARGUMENT"
        assert "start_delay_s" in r.json()["error"]["message"]
    with pytest.raises(WorkflowNotFoundError):
        await client.get_workflow_handle("both").describe()
    start = ("workflow", "start", "--type", "Greets", "--task-queue", QUEUE, "--id", "by-cli")
    code, _out, err = await baton_json(region.config_path, *start, "--start-delay", "1h")
    assert code == 0, err
    events = await client.get_workflow_handle("by-cli").history()
    assert [e["event_type"] for e in events] == ["WorkflowExecutionStarted"]
    assert events[0]["attributes"]["first_workflow_task_backoff_s"] == 3600.0
    code, out, err = await baton_json(region.config_path, "workflow", "describe", "by-cli")
    assert code == 0, err
    ex = out["execution"]
    due = datetime.fromisoformat(ex["start_time"]) + timedelta(hours=1)
    assert datetime.fromisoformat(ex["execution_time"]) == due


@workflow.defn
class Quick:
    @workflow.run
    async def run(self) -> str:
        return "ran"


async def test_the_run_timeout_counts_from_the_end_of_the_delay(client: Client) -> None:
    """As in Temporal: a run waiting out its start delay (or its cron time, or
    a retry's backoff) does not time out before its code ran."""
    async with Worker(client, task_queue=QUEUE, workflows=[Quick]):
        h = await client.start_workflow(
            Quick, id="delay-then-run", task_queue=QUEUE, start_delay=2, run_timeout=1
        )
        assert await h.result(timeout=30) == "ran"
        # a cron run waits up to 3 s for its time: still within its run timeout
        c = await client.start_workflow(
            Quick,
            id="cron-then-run",
            task_queue=QUEUE,
            cron_schedule="*/3 * * * * *",
            run_timeout=1,
        )
        assert await c.result(follow_runs=False, timeout=30) == "ran"
        await c.terminate(reason="done")


async def test_a_signal_with_start_that_starts_the_run_waits_out_its_delay(
    client: Client,
) -> None:
    """As Temporal's: the signal of a signal-with-start that opens a delayed
    run waits with its first workflow task, where the task ran at once."""
    async with Worker(client, task_queue=QUEUE, workflows=[Greets]):
        h = await client.signal_with_start_workflow(
            Greets,
            id="sws-new",
            task_queue=QUEUE,
            signal=Greets.greet,
            signal_args=["ada"],
            start_delay=timedelta(seconds=2),
        )
        assert await h.result(timeout=30) == ["ada"]
        events = await h.history()
    assert [e["event_type"] for e in events[:3]] == [
        "WorkflowExecutionStarted",
        "WorkflowExecutionSignaled",
        "WorkflowTaskScheduled",
    ]
    waited = datetime.fromisoformat(events[2]["event_time"]) - datetime.fromisoformat(
        events[0]["event_time"]
    )
    assert waited >= timedelta(seconds=2)
    assert [e["attributes"].get("attempt") for e in events[2:3]] == [1]


async def test_a_signal_with_start_to_a_delayed_run_runs_it_now(client: Client) -> None:
    """As Temporal's: a signal-with-start to a run waiting out its start delay
    dispatches its first workflow task at once (a plain signal waits)."""
    async with Worker(client, task_queue=QUEUE, workflows=[Greets]):
        h = await client.start_workflow(
            Greets, id="sws-old", task_queue=QUEUE, start_delay=timedelta(hours=1)
        )
        await h.signal(Greets.greet, "ada")
        await client.signal_with_start_workflow(
            Greets, id="sws-old", task_queue=QUEUE, signal=Greets.greet, signal_args=["bob"]
        )
        assert await h.result(timeout=30) == ["ada", "bob"]
        events = await h.history()
    scheduled = [e for e in events if e["event_type"] == "WorkflowTaskScheduled"]
    assert len(scheduled) == 1 and scheduled[0]["attributes"]["attempt"] == 1


@workflow.defn
class Counts:
    def __init__(self) -> None:
        self.count = 0

    @workflow.run
    async def run(self) -> int:
        await workflow.wait_condition(lambda: self.count >= 2)
        return self.count

    @workflow.update
    def add(self, n: int) -> int:
        self.count += n
        return self.count


async def test_an_update_to_a_delayed_run_runs_it_now(client: Client) -> None:
    """As Temporal's: an update to a run waiting out its start delay gets a
    workflow task at once, where it waited for the delay (an hour here)."""
    async with Worker(client, task_queue=QUEUE, workflows=[Counts]):
        h = await client.start_workflow(
            Counts, id="update-delayed", task_queue=QUEUE, start_delay=timedelta(hours=1)
        )
        assert await asyncio.wait_for(h.execute_update(Counts.add, 2), 20) == 2
        assert await h.result(timeout=20) == 2


async def test_a_cancel_of_a_delayed_run_reaches_its_code_now(client: Client) -> None:
    """As Temporal's: a cancel request to a run waiting out its start delay
    gets a workflow task at once, where the run sat out the delay first."""
    async with Worker(client, task_queue=QUEUE, workflows=[Greets]):
        h = await client.start_workflow(
            Greets, id="cancel-delayed", task_queue=QUEUE, start_delay=timedelta(hours=1)
        )
        await h.cancel()
        with pytest.raises(WorkflowFailureError):
            await h.result(timeout=20)
        assert (await h.describe()).status.name == "CANCELED"
