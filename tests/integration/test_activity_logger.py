"""``activity.logger``, as Temporal's: activity code logs through it (async
and sync activities alike), and each record carries the attempt it came from."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest

from worker import Client, RetryPolicy, Worker, activity, workflow

pytestmark = pytest.mark.integration
QUEUE = "activity-logger"


@activity.defn
async def charge(order: str) -> str:
    activity.logger.info("charging %s", order)
    if activity.info().attempt == 1:
        raise RuntimeError("card service hiccup")
    return f"charged {order}"


@activity.defn
def ship(order: str) -> str:
    activity.logger.warning("shipping %s", order, extra={"carrier": "post"})
    return f"shipped {order}"


@workflow.defn
class Order:
    @workflow.run
    async def run(self, order: str) -> list[str]:
        quick = RetryPolicy(initial_interval=timedelta(milliseconds=100))
        limit = timedelta(seconds=10)
        return [
            await workflow.execute_activity(
                charge, order, start_to_close_timeout=limit, retry_policy=quick
            ),
            await workflow.execute_activity(ship, order, start_to_close_timeout=limit),
        ]


async def test_activity_code_logs_with_its_attempt(
    client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="baton.activity")
    async with Worker(client, task_queue=QUEUE, workflows=[Order], activities=[charge, ship]):
        result = await client.execute_workflow(Order, "o-7", id="order-7", task_queue=QUEUE)
    assert result == ["charged o-7", "shipped o-7"]
    records = [r for r in caplog.records if r.name == "baton.activity"]
    assert [(r.getMessage(), r.activity_type, r.attempt) for r in records] == [  # type: ignore[attr-defined]
        ("charging o-7", "charge", 1),
        ("charging o-7", "charge", 2),
        ("shipping o-7", "ship", 1),
    ]
    assert {r.workflow_id for r in records} == {"order-7"}  # type: ignore[attr-defined]
    assert records[-1].carrier == "post"  # type: ignore[attr-defined]
