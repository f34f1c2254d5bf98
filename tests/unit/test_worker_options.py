"""What a Worker refuses when it is built, before it polls anything."""

from __future__ import annotations

import pytest

from worker import Client, DataConverter, Worker, activity, workflow
from worker._http import Transport


def offline_client() -> Client:
    return Client(
        Transport(["http://127.0.0.1:9"]),
        namespace="default",
        data_converter=DataConverter(),
        identity="test",
    )


@activity.defn(name="charge")
async def charge_v1() -> str:
    return "v1"


@activity.defn(name="charge")
async def charge_v2() -> str:
    return "v2"


@workflow.defn(name="Order")
class OrderV1:
    @workflow.run
    async def run(self) -> str:
        return "v1"


@workflow.defn(name="Order")
class OrderV2:
    @workflow.run
    async def run(self) -> str:
        return "v2"


def test_two_activities_of_one_name_are_refused() -> None:
    """Regression: the last one registered silently took every task of the name."""
    with pytest.raises(ValueError, match=r"more than one activity is named 'charge'.*charge_v1"):
        Worker(offline_client(), task_queue="q", activities=[charge_v1, charge_v2])


def test_two_workflows_of_one_name_are_refused() -> None:
    with pytest.raises(ValueError, match=r"more than one workflow is named 'Order'.*OrderV2"):
        Worker(offline_client(), task_queue="q", workflows=[OrderV1, OrderV2])


def test_the_same_definition_listed_twice_is_one_registration() -> None:
    w = Worker(
        offline_client(),
        task_queue="q",
        workflows=[OrderV1, OrderV1],
        activities=[charge_v1, charge_v1],
    )
    assert list(w._workflows) == ["Order"] and list(w._activities) == ["charge"]


@pytest.mark.parametrize("queue", ["", "q" * 1001, 5, None])
def test_a_task_queue_the_server_refuses_is_refused_at_once(queue: object) -> None:
    """Regression: the worker started and polled forever, each poll refused
    with INVALID_ARGUMENT and logged, running nothing."""
    with pytest.raises(ValueError, match="task_queue must be a string of 1 to 1000 characters"):
        Worker(offline_client(), task_queue=queue, activities=[charge_v1])  # type: ignore[arg-type]
    Worker(offline_client(), task_queue="q" * 1000, activities=[charge_v1])


async def test_a_stop_report_that_times_out_says_so(caplog: pytest.LogCaptureFixture) -> None:
    # A server that never answers (the port refuses, the transport keeps retrying):
    # the warning must say why, not end in an empty reason.
    w = Worker(offline_client(), task_queue="q", workflows=[OrderV1])
    with caplog.at_level("WARNING", logger="baton.worker"):
        await w._close_sticky_queue()
    [record] = [r for r in caplog.records if "sticky queue" in r.getMessage()]
    assert "did not answer within 5 s" in record.getMessage()


@pytest.mark.parametrize("timeout", [0, -2.0, float("nan"), "2s"])
def test_a_deadlock_timeout_that_is_no_positive_duration_is_refused(timeout: object) -> None:
    with pytest.raises(ValueError, match="deadlock_timeout must be a positive number"):
        Worker(
            offline_client(),
            task_queue="q",
            workflows=[OrderV1],
            deadlock_timeout=timeout,  # type: ignore[arg-type]
        )


def test_without_a_deadlock_timeout_workflow_code_runs_with_no_limit() -> None:
    worker = Worker(offline_client(), task_queue="q", workflows=[OrderV1], deadlock_timeout=None)
    assert worker._threads.timeout is None


@pytest.mark.parametrize("sticky", [0, -1, 61, float("nan"), float("inf"), "soon", True])
def test_a_sticky_schedule_to_start_the_server_refuses_is_refused_at_once(sticky: object) -> None:
    """Regression: every workflow task's completion carried it and was refused
    with INVALID_ARGUMENT, so no workflow of the worker ever moved on."""
    with pytest.raises(ValueError, match="sticky_schedule_to_start must be a number of seconds"):
        Worker(
            offline_client(), task_queue="q", workflows=[OrderV1], sticky_schedule_to_start=sticky
        )  # type: ignore[arg-type]
    Worker(offline_client(), task_queue="q", workflows=[OrderV1], sticky_schedule_to_start=60)


@pytest.mark.parametrize("grace", [-1, float("nan"), float("inf")])
def test_a_shutdown_grace_that_is_no_duration_is_refused_at_once(grace: float) -> None:
    with pytest.raises(ValueError, match="graceful_shutdown_timeout must be a number of seconds"):
        Worker(
            offline_client(), task_queue="q", workflows=[OrderV1], graceful_shutdown_timeout=grace
        )
    Worker(offline_client(), task_queue="q", workflows=[OrderV1], graceful_shutdown_timeout=0)


def test_an_identity_the_server_refuses_is_refused_at_once() -> None:
    """Regression: every poll was refused with INVALID_ARGUMENT and logged,
    and the worker polled on, running nothing."""
    with pytest.raises(ValueError, match="identity must be a string of at most 1000"):
        Worker(offline_client(), task_queue="q", workflows=[OrderV1], identity="w" * 1001)


def test_a_long_client_identity_is_cut_to_fit_the_worker_s() -> None:
    client = offline_client()
    client.identity = "c" * 1000
    w = Worker(client, task_queue="q", workflows=[OrderV1])
    assert len(w.identity) == 1000 and w.identity.startswith("c" * 993 + "/")
