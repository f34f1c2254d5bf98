"""A workflow ``retry_policy`` on start, as in Temporal: a run that fails (or
reaches its run timeout) starts again as a new run of the chain with the same
input after the policy's backoff; ``info().attempt`` counts up; a
non-retryable failure, the maximum attempts and the execution timeout end it;
cancel and terminate are not retried. ``result()`` follows the retries and
``result(follow_runs=False)`` does not."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from replication.failover import graceful_failover
from tests.conftest import Region, RegionPair
from tests.helpers import eventually
from worker import ApplicationError, Client, RetryPolicy, Worker, workflow
from worker.errors import (
    CanceledError,
    InvalidArgumentError,
    TimeoutError_,
    WorkflowFailureError,
)

pytestmark = pytest.mark.integration
QUEUE = "workflow-retry"
FAST = RetryPolicy(initial_interval=timedelta(milliseconds=200), backoff_coefficient=1.0)


@workflow.defn
class Flaky:
    """Fails until its attempt reaches ``succeed_at``, with an error of ``kind``."""

    @workflow.run
    async def run(self, succeed_at: int, kind: str) -> dict[str, Any]:
        info = workflow.info()
        if info.attempt < succeed_at:
            # "Stop": an error that says itself it is not to be retried
            stop = kind == "Stop"
            later = timedelta(seconds=1.5) if kind == "Later" else None
            raise ApplicationError(
                f"attempt {info.attempt} failed",
                type=kind,
                non_retryable=stop,
                next_retry_delay=later,
            )
        policy = info.retry_policy
        return {
            "attempt": info.attempt,
            "continued_from": info.continued_from_run_id,
            "initial_interval": None if policy is None else policy.initial_interval.total_seconds(),
        }


@workflow.defn
class NeverDone:
    """Fails at once when told to, else waits for ever."""

    @workflow.run
    async def run(self, fail: bool) -> None:
        if fail and workflow.info().attempt == 1:
            raise ApplicationError("first attempt fails")
        await workflow.wait_condition(lambda: False)

    @workflow.signal
    def poke(self) -> None:
        pass


async def failure_of(handle: Any, **kw: Any) -> WorkflowFailureError:
    with pytest.raises(WorkflowFailureError) as err:
        await handle.result(timeout=60, **kw)
    return err.value


async def test_a_failed_run_is_retried_with_the_same_input_until_it_succeeds(
    client: Client,
) -> None:
    async with Worker(client, task_queue=QUEUE, workflows=[Flaky]):
        h = await client.start_workflow(
            Flaky, 3, "Flake", id="flaky", task_queue=QUEUE, retry_policy=FAST
        )
        out = await h.result(timeout=60)
        assert out["attempt"] == 3
        assert out["initial_interval"] == 0.2  # info().retry_policy
        assert out["continued_from"] is not None
        assert h.result_run_id != h.run_id
        # the first run failed, linked to its retry: follow_runs=False gives its own outcome
        first = await failure_of(h, follow_runs=False)
        assert first.status == "failed"
        assert "attempt 1 failed" in str(first.__cause__)
        d = await client.get_workflow_handle("flaky", run_id=h.run_id).describe()
        assert d["execution"]["continued_to_run_id"] is not None
        assert d["execution"]["retry_policy"]["initial_interval_s"] == 0.2
        events = await client.get_workflow_handle("flaky", run_id=h.run_id).history()
        assert (
            events[-1]["attributes"]["new_execution_run_id"]
            == (d["execution"]["continued_to_run_id"])
        )
        # one call that waits for the outcome follows the retries too
        again = await client.execute_workflow(
            Flaky, 2, "Flake", id="flaky-exec", task_queue=QUEUE, retry_policy=FAST
        )
        assert again["attempt"] == 2


async def test_maximum_attempts_and_non_retryable_types_end_the_retries(client: Client) -> None:
    async with Worker(client, task_queue=QUEUE, workflows=[Flaky]):
        policy = RetryPolicy(
            initial_interval=timedelta(milliseconds=100),
            maximum_attempts=2,
            non_retryable_error_types=["Fatal"],
        )
        h = await client.start_workflow(
            Flaky, 5, "Flake", id="capped", task_queue=QUEUE, retry_policy=policy
        )
        err = await failure_of(h)
        assert "attempt 2 failed" in str(err.__cause__)
        h = await client.start_workflow(
            Flaky, 5, "Fatal", id="fatal", task_queue=QUEUE, retry_policy=policy
        )
        err = await failure_of(h)
        assert "attempt 1 failed" in str(err.__cause__)
        assert h.result_run_id == h.run_id
        h = await client.start_workflow(
            Flaky, 5, "Stop", id="stop", task_queue=QUEUE, retry_policy=policy
        )
        assert "attempt 1 failed" in str((await failure_of(h)).__cause__)
        assert h.result_run_id == h.run_id
        # without a policy a failed run is not retried, as before
        h = await client.start_workflow(Flaky, 2, "Flake", id="no-policy", task_queue=QUEUE)
        assert "attempt 1 failed" in str((await failure_of(h)).__cause__)


async def test_a_run_timeout_is_retried_and_cancel_is_not(client: Client) -> None:
    async with Worker(client, task_queue=QUEUE, workflows=[NeverDone]):
        policy = RetryPolicy(initial_interval=timedelta(milliseconds=100), maximum_attempts=3)
        h = await client.start_workflow(
            NeverDone, False, id="slow", task_queue=QUEUE, run_timeout=1.0, retry_policy=policy
        )
        err = await failure_of(h)
        assert isinstance(err.__cause__, TimeoutError_)
        assert err.__cause__.timeout_type == "run"
        runs = [r async for r in client.list_workflows("WorkflowId = 'slow'")]
        assert len(runs) == 3
        h = await client.start_workflow(
            NeverDone, False, id="canceled", task_queue=QUEUE, retry_policy=policy
        )
        await h.cancel()
        err = await failure_of(h)
        assert isinstance(err.__cause__, CanceledError)
        assert h.result_run_id == h.run_id


async def test_the_execution_timeout_bounds_the_retries(client: Client) -> None:
    async with Worker(client, task_queue=QUEUE, workflows=[Flaky]):
        policy = RetryPolicy(initial_interval=timedelta(milliseconds=500), backoff_coefficient=1.0)
        began = time.monotonic()
        h = await client.start_workflow(
            Flaky,
            1000,
            "Flake",
            id="bounded",
            task_queue=QUEUE,
            retry_policy=policy,
            execution_timeout=3,
        )
        err = await failure_of(h)
        # the last attempt failed, and its retry would have passed the deadline
        assert err.status == "failed"
        assert time.monotonic() - began < 10
        assert h.result_run_id != h.run_id


async def test_a_bad_policy_is_refused_and_starts_nothing(client: Client) -> None:
    with pytest.raises(InvalidArgumentError, match="on_max_attempts"):
        await client.start_workflow(
            Flaky,
            1,
            "x",
            id="bad-policy",
            task_queue=QUEUE,
            retry_policy=RetryPolicy(on_max_attempts="pause"),
        )
    with pytest.raises(InvalidArgumentError, match="RetryPolicy"):
        await client.start_workflow(
            Flaky, 1, "x", id="bad-policy", task_queue=QUEUE, retry_policy={"maximum_attempts": 2}
        )
    assert [r async for r in client.list_workflows("WorkflowId = 'bad-policy'")] == []


async def test_a_retry_waiting_out_its_backoff_starts_after_a_failover(
    regions: RegionPair,
) -> None:
    rs, ns = regions, "retries"
    async with await Client.connect([rs.a.url, rs.b.url], namespace=ns) as client:
        await client.create_namespace(ns, regions=[rs.a.name, rs.b.name], active_region=rs.a.name)
        policy = RetryPolicy(initial_interval=timedelta(seconds=6))
        async with Worker(client, task_queue=QUEUE, workflows=[NeverDone]):
            h = await client.start_workflow(
                NeverDone, True, id="moves", task_queue=QUEUE, retry_policy=policy
            )

            async def retried() -> str | None:
                d = await client.get_workflow_handle("moves", run_id=h.run_id).describe()
                return d["execution"]["continued_to_run_id"]  # type: ignore[no-any-return]

            second = await eventually(retried, what="the retry of the first run")

        async def replicated() -> bool:
            async with await Client.connect(rs.b.url, namespace=ns) as in_b:
                try:
                    await in_b.get_workflow_handle("moves", run_id=second).describe()
                except Exception:
                    return False
                return True

        await eventually(replicated, timeout=30, what="the retry in region-b")
        await graceful_failover(rs.a.config, ns, rs.b.name, timeout_s=60)
        retry = client.get_workflow_handle("moves", run_id=second)
        async with Worker(client, task_queue=QUEUE, workflows=[NeverDone]):

            async def started() -> bool:
                kinds = [e["event_type"] for e in await retry.history()]
                return "WorkflowTaskCompleted" in kinds

            await eventually(started, timeout=30, what="the retried run's first task in region-b")
        events = await retry.history()
        assert events[0]["attributes"]["attempt"] == 2
        assert events[0]["attributes"]["first_workflow_task_backoff_s"] == 6.0
        scheduled = next(e for e in events if e["event_type"] == "WorkflowTaskScheduled")
        assert scheduled["version"] % 100 == 2  # region-b scheduled it, after the backoff
        await retry.terminate(reason="done")


async def test_a_signal_in_the_backoff_waits_for_it_as_in_temporal(client: Client) -> None:
    policy = RetryPolicy(initial_interval=timedelta(seconds=3))
    async with Worker(client, task_queue=QUEUE, workflows=[NeverDone]):
        h = await client.start_workflow(
            NeverDone, True, id="poked", task_queue=QUEUE, retry_policy=policy
        )

        async def retried() -> str | None:
            d = await client.get_workflow_handle("poked", run_id=h.run_id).describe()
            return d["execution"]["continued_to_run_id"]  # type: ignore[no-any-return]

        second = await eventually(retried, what="the retry of the first run")
        retry = client.get_workflow_handle("poked", run_id=second)
        began = time.monotonic()
        await h.signal(NeverDone.poke)  # to the current run: the retry
        kinds = [e["event_type"] for e in await retry.history()]
        assert kinds == ["WorkflowExecutionStarted", "WorkflowExecutionSignaled"]
        # describe says what the run waits for: its first task, after the backoff
        d = await retry.describe()
        wt = d["pending_workflow_task"]
        assert wt["workflow_attempt"] == 2 and wt["scheduled_event_id"] is None
        due = datetime.fromisoformat(wt["retry_at"])
        start = datetime.fromisoformat(d["execution"]["start_time"])
        assert due - start == timedelta(seconds=3)

        async def ran() -> bool:
            return "WorkflowTaskCompleted" in [e["event_type"] for e in await retry.history()]

        await eventually(ran, what="the retried run's first task")
        assert time.monotonic() - began > 1.5  # not before the backoff ended
        await retry.terminate(reason="done")


async def test_a_bad_policy_over_http_is_a_typed_error_naming_the_field(region: Region) -> None:
    url = f"{region.url}/api/v1/namespaces/default/workflows"
    body = {"workflow_id": "http-policy", "workflow_type": "Flaky", "task_queue": QUEUE}
    async with httpx.AsyncClient(timeout=30) as http:
        await http.post(f"{region.url}/api/v1/namespaces", json={"name": "default"})
        for policy, field in (
            ({"maximum_attempts": -1}, "maximum_attempts"),
            ({"initial_interval_s": 0}, "initial_interval_s"),
            ({"on_max_attempts": "pause"}, "on_max_attempts"),
        ):
            r = await http.post(url, json={**body, "retry_policy": policy})
            assert r.status_code == 400, r.text
            error = r.json()["error"]
            assert error["code"] == "INVALID_ARGUMENT"
            assert field in error["message"]
        r = await http.post(url, json={**body, "retry_policy": {"maximum_attempts": 3}})
        assert r.status_code == 201, r.text
        d = await http.get(f"{url}/http-policy")
        assert d.json()["execution"]["retry_policy"]["maximum_attempts"] == 3


async def test_next_retry_delay_takes_the_place_of_the_backoff(client: Client) -> None:
    async with Worker(client, task_queue=QUEUE, workflows=[Flaky]):
        h = await client.start_workflow(
            Flaky, 2, "Later", id="later", task_queue=QUEUE, retry_policy=FAST
        )
        assert (await h.result(timeout=60))["attempt"] == 2
    first = (await client.get_workflow_handle("later", run_id=h.run_id).history())[-1]
    second = await client.get_workflow_handle("later", run_id=h.result_run_id).history()
    assert second[0]["attributes"]["first_workflow_task_backoff_s"] == 1.5
    waited = datetime.fromisoformat(second[1]["event_time"]) - datetime.fromisoformat(
        first["event_time"]
    )
    assert waited >= timedelta(seconds=1.5)


async def test_an_unpause_in_the_backoff_keeps_the_retry_waiting(client: Client) -> None:
    """A retried run paused and unpaused while it waits out its backoff still
    gets its first task only when the backoff ends (an unpause resets the
    failed-task count, not the retry policy's wait)."""
    policy = RetryPolicy(initial_interval=timedelta(seconds=4))
    async with Worker(client, task_queue=QUEUE, workflows=[NeverDone]):
        h = await client.start_workflow(
            NeverDone, True, id="unpaused-in-backoff", task_queue=QUEUE, retry_policy=policy
        )

        async def retried() -> str | None:
            d = await client.get_workflow_handle(h.id, run_id=h.run_id).describe()
            return d["execution"]["continued_to_run_id"]  # type: ignore[no-any-return]

        second = await eventually(retried, what="the retry of the first run")
        retry = client.get_workflow_handle(h.id, run_id=second)
        began = time.monotonic()
        await retry.pause(reason="look first")
        await retry.unpause(reason="go on")
        d = await retry.describe()
        assert datetime.fromisoformat(
            d["pending_workflow_task"]["retry_at"]
        ) - datetime.fromisoformat(d["execution"]["start_time"]) == timedelta(seconds=4)

        async def ran() -> bool:
            return "WorkflowTaskCompleted" in [e["event_type"] for e in await retry.history()]

        await eventually(ran, what="the retried run's first task")
        assert time.monotonic() - began > 2.5  # the backoff, not the unpause, started it
        await retry.terminate(reason="done")


async def test_execution_time_is_when_a_retried_run_waits_its_backoff_out(
    client: Client,
) -> None:
    """Temporal's ExecutionTime: the start time plus the first workflow task's
    backoff, so a retry waiting out its delay lists as executing later."""
    slow = RetryPolicy(initial_interval=timedelta(seconds=60))
    async with Worker(client, task_queue=QUEUE, workflows=[NeverDone]):
        plain = await client.start_workflow(NeverDone, False, id="et-plain", task_queue=QUEUE)
        retried = await client.start_workflow(
            NeverDone, True, id="et-retried", task_queue=QUEUE, retry_policy=slow
        )

        async def retrying() -> bool:
            d = await client.get_workflow_handle("et-retried").describe()
            return d["execution"]["run_id"] != retried.run_id

        await eventually(retrying, timeout=30, what="the retry waiting out its backoff")
    second = (await client.get_workflow_handle("et-retried").describe())["execution"]["run_id"]
    later = (datetime.now(UTC) + timedelta(seconds=30)).isoformat()

    async def runs(query: str) -> list[str]:
        return [r.run_id async for r in client.list_workflows(query, page_size=1)]

    assert await runs(f"ExecutionTime > '{later}'") == [second]
    assert set(await runs(f"ExecutionTime <= '{later}'")) == {plain.run_id, retried.run_id}
    # ordered by it across pages of one (the keyset token carries it)
    assert (await runs("ORDER BY ExecutionTime DESC"))[0] == second
    assert (await runs("ORDER BY ExecutionTime"))[-1] == second
    assert (await client.count_workflows(f"ExecutionTime > '{later}'")).count == 1
