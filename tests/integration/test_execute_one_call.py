"""A start that waits for its run's outcome (``wait_result_s``), and the SDK's
``execute_workflow`` made of that one call, on a real server and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

import worker.client as client_module
from ops.bench_measure import ensure_statement_stats
from tests.apps.workflows import ALL_ACTIVITIES, Chain, Sleeper, ThreeSteps
from tests.conftest import Region
from tests.integration.test_run_cache import RESULT_READ, _calls
from worker import ApplicationError, Client, Worker, WorkflowFailureError, workflow
from worker._http import ns_path
from worker.errors import InvalidArgumentError, WorkflowNotFoundError

pytestmark = pytest.mark.integration
QUEUE = "one-call"


@workflow.defn(name="FailsAtOnce")
class FailsAtOnce:
    @workflow.run
    async def run(self) -> None:
        raise ApplicationError("no stock left", type="OutOfStock")


def make_worker(client: Client) -> Worker:
    return Worker(
        client,
        task_queue=QUEUE,
        workflows=[ThreeSteps, Chain, Sleeper, FailsAtOnce],
        activities=ALL_ACTIVITIES,
    )


@contextmanager
def calls_of(client: Client) -> Iterator[list[tuple[str, str]]]:
    """The starts and result waits made through ``client``'s transport inside
    the block, as (method, path); the worker's task calls are left out."""
    seen: list[tuple[str, str]] = []
    call = client.transport.call

    async def recording(method: str, path: str, *args: Any, **kw: Any) -> Any:
        if path.endswith(("/workflows", "/result")):
            seen.append((method, path))
        return await call(method, path, *args, **kw)

    client.transport.call = recording  # type: ignore[method-assign]
    try:
        yield seen
    finally:
        client.transport.call = call  # type: ignore[method-assign]


def start_body(workflow_id: str, **extra: Any) -> dict[str, Any]:
    return {"workflow_id": workflow_id, "workflow_type": "ThreeSteps", "task_queue": QUEUE, **extra}


async def test_execute_is_one_call_when_the_run_ends_within_the_wait(client: Client) -> None:
    async with make_worker(client):
        await client.execute_workflow(ThreeSteps, 0, id="one-call-warm", task_queue=QUEUE)
        with calls_of(client) as seen:
            got = await client.execute_workflow(ThreeSteps, 4, id="one-call", task_queue=QUEUE)
            assert got == 7
            # continue-as-new: the outcome is the last run's
            chained = await client.execute_workflow(Chain, 0, 2, id="one-chain", task_queue=QUEUE)
            assert chained == "done after 2 continue-as-new runs"
    assert [m for m, _ in seen] == ["POST", "POST"]
    assert all(path.endswith("/workflows") for _, path in seen)


async def test_a_new_run_is_waited_for_without_reading_it(region: Region, client: Client) -> None:
    """The start opened the run, so its outcome is waited for without a read;
    a continue-as-new chain (closed, followed) is read to reach its last run."""
    assert await ensure_statement_stats(region.dsn), "the test cluster preloads pg_stat_statements"
    async with make_worker(client):
        await client.execute_workflow(ThreeSteps, 0, id="no-read-warm", task_queue=QUEUE)
        before = await _calls(region, RESULT_READ)
        for i in range(5):
            assert await client.execute_workflow(ThreeSteps, i, id=f"no-read-{i}", task_queue=QUEUE)
        assert await _calls(region, RESULT_READ) == before
        chained = await client.execute_workflow(Chain, 0, 1, id="read-chain", task_queue=QUEUE)
        assert chained == "done after 1 continue-as-new runs"
        assert await _calls(region, RESULT_READ) > before


async def test_a_failed_run_raises_from_the_one_call(client: Client) -> None:
    async with make_worker(client):
        with calls_of(client) as seen, pytest.raises(WorkflowFailureError) as err:
            await client.execute_workflow(FailsAtOnce, id="one-call-fails", task_queue=QUEUE)
    assert err.value.status == "failed"
    assert isinstance(err.value.__cause__, ApplicationError)
    assert err.value.__cause__.type == "OutOfStock"
    assert len(seen) == 1


async def test_a_run_that_outlasts_the_wait_is_awaited_as_before(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(client_module, "EXECUTE_WAIT_S", 0.2)
    async with make_worker(client):
        with calls_of(client) as seen:
            got = await client.execute_workflow(Sleeper, 1, 1.0, id="one-slow", task_queue=QUEUE)
    assert got == 3
    assert seen[0][0] == "POST" and seen[0][1].endswith("/workflows")
    assert seen[1][0] == "GET" and seen[1][1].endswith("/result")


async def test_the_start_answers_a_running_run_when_the_wait_runs_out(client: Client) -> None:
    # no worker polls this queue: the run stays open
    path = ns_path(client.namespace, "/workflows")
    res = await client.call("POST", path, start_body("one-call-open", wait_result_s=0.2))
    assert res["started"] is True
    assert res["result"] == {
        "run_id": res["run_id"],
        "status": "running",
        "closed": False,
        "result": None,
        "failure": None,
        "continued_to_run_id": None,
    }
    # a retried start (same request id) finds the same run and waits the same way
    body = start_body("one-call-open-2", request_id="r-1", wait_result_s=0)
    first = await client.call("POST", path, body)
    again = await client.call("POST", path, body)
    assert again["started"] is False and again["run_id"] == first["run_id"]
    assert again["result"]["closed"] is False
    # without the field the answer is as before
    plain = await client.call("POST", path, start_body("one-call-open-3"))
    assert plain["result"] is None


@pytest.mark.parametrize("wait", [-1, 120.5, "soon"])
async def test_a_bad_wait_is_refused_and_starts_nothing(client: Client, wait: Any) -> None:
    path = ns_path(client.namespace, "/workflows")
    wid = f"one-call-bad-{wait}"
    with pytest.raises(InvalidArgumentError, match="wait_result_s"):
        await client.call("POST", path, start_body(wid, wait_result_s=wait))
    with pytest.raises(WorkflowNotFoundError):
        await client.get_workflow_handle(wid).describe()


async def test_signal_with_start_refuses_a_wait_and_starts_nothing(client: Client) -> None:
    body = start_body("one-call-sws", wait_result_s=1, signal_name="go")
    with pytest.raises(InvalidArgumentError, match="wait_result_s is for starts only"):
        await client.call("POST", ns_path(client.namespace, "/signal-with-start"), body)
    with pytest.raises(WorkflowNotFoundError):
        await client.get_workflow_handle("one-call-sws").describe()
