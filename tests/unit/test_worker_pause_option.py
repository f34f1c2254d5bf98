"""``pause_after_failed_workflow_tasks`` is checked as the worker is built: a
count given as text or a fraction, or a type the worker does not run, turned
the pause off without a word (the option was taken as an empty mapping)."""

from __future__ import annotations

from typing import Any

import pytest

from worker import Client, Worker, workflow
from worker._http import Transport
from worker.converter import DataConverter


@workflow.defn(name="Payment")
class Payment:
    @workflow.run
    async def run(self) -> None:
        await workflow.wait_condition(lambda: False)


def build(value: Any) -> Worker:
    client = Client(
        Transport(["http://127.0.0.1:9"]),
        namespace="default",
        data_converter=DataConverter(),
        identity="test",
    )
    return Worker(
        client, task_queue="q", workflows=[Payment], pause_after_failed_workflow_tasks=value
    )


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("3", "a count or {workflow type: count}"),
        (2.5, "a count or {workflow type: count}"),
        ([3], "a count or {workflow type: count}"),
        ({"PaymentWorkflow": 3}, "'PaymentWorkflow', no workflow type of this worker"),
        ({"Payment": 0}, ">= 1"),
        (0, ">= 1"),
    ],
)
def test_a_pause_limit_that_would_do_nothing_is_refused(value: Any, says: str) -> None:
    with pytest.raises(ValueError, match="pause_after_failed_workflow_tasks") as err:
        build(value)
    assert says in str(err.value)


@pytest.mark.parametrize("value", [None, 3, {"Payment": 2}])
def test_a_count_or_a_count_per_type_of_the_worker_is_taken(value: Any) -> None:
    build(value)
