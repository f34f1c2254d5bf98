"""An activity that times out for good says what its attempts did, as
Temporal's timeout failure does: its cause is the last failed attempt's
failure, and ``last_heartbeat_details`` the details of its last heartbeat."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from worker import ActivityError, ApplicationError, Client, RetryPolicy, Worker, activity, workflow
from worker.errors import TimeoutError_

pytestmark = pytest.mark.integration
QUEUE = "timeout-cause"


@activity.defn
async def fails_then_hangs() -> str:
    """The first attempt fails at once; the second runs past every deadline."""
    if activity.info().attempt == 1:
        raise ApplicationError("card service said 503", type="Upstream503")
    await asyncio.sleep(30)
    return "late"


@activity.defn
async def hangs() -> str:
    await asyncio.sleep(30)
    return "late"


@activity.defn
async def copies_files(files: int, stuck_alive: bool) -> str:
    """Heartbeats its progress, then gets stuck: silent, or still heartbeating
    its last progress (a call that never returns, its keep-alive running)."""
    for n in range(1, files + 1):
        activity.heartbeat(n, f"file-{n}")
        await asyncio.sleep(0.05)
    for _ in range(300):
        if stuck_alive:
            activity.heartbeat(files, f"file-{files}")
        await asyncio.sleep(0.1)
    return "late"


@workflow.defn
class Copy:
    @workflow.run
    async def run(self, timeout: str) -> list[object]:
        options: dict[str, timedelta] = {
            "heartbeat": {
                "start_to_close_timeout": timedelta(seconds=30),
                "heartbeat_timeout": timedelta(seconds=1),
            },
            "schedule_to_close": {
                "schedule_to_close_timeout": timedelta(seconds=2),
                "heartbeat_timeout": timedelta(seconds=1),
            },
        }[timeout]
        try:
            await workflow.execute_activity(
                copies_files,
                3,
                timeout == "schedule_to_close",
                retry_policy=RetryPolicy(maximum_attempts=1),
                **options,  # type: ignore[arg-type]
            )
        except ActivityError as err:
            assert isinstance(err.__cause__, TimeoutError_)
            return [err.__cause__.timeout_type, *err.__cause__.last_heartbeat_details]
        return ["completed"]


@workflow.defn
class Charge:
    @workflow.run
    async def run(self, kind: str) -> list[str]:
        quick = RetryPolicy(initial_interval=timedelta(milliseconds=100))
        try:
            if kind == "schedule_to_close":
                await workflow.execute_activity(
                    fails_then_hangs,
                    schedule_to_close_timeout=timedelta(seconds=2),
                    retry_policy=quick,
                )
            elif kind == "last_attempt":
                await workflow.execute_activity(
                    fails_then_hangs,
                    start_to_close_timeout=timedelta(seconds=1),
                    retry_policy=RetryPolicy(
                        initial_interval=timedelta(milliseconds=100), maximum_attempts=2
                    ),
                )
            else:
                await workflow.execute_activity(
                    hangs,
                    start_to_close_timeout=timedelta(seconds=1),
                    retry_policy=RetryPolicy(maximum_attempts=1),
                )
        except ActivityError as err:
            chain: list[str] = [err.retry_state]
            cause: BaseException | None = err.__cause__
            while cause is not None:
                if isinstance(cause, TimeoutError_):
                    chain.append(f"timeout {cause.timeout_type}")
                elif isinstance(cause, ApplicationError):
                    chain.append(f"{cause.type}: {cause.message}")
                cause = cause.__cause__
            return chain
        return ["completed"]


async def test_a_timeout_after_failed_attempts_carries_the_last_failure(client: Client) -> None:
    async with Worker(
        client, task_queue=QUEUE, workflows=[Charge], activities=[fails_then_hangs, hangs]
    ):
        budget, last, only = await asyncio.gather(
            client.execute_workflow(Charge, "schedule_to_close", id="s2c", task_queue=QUEUE),
            client.execute_workflow(Charge, "last_attempt", id="last", task_queue=QUEUE),
            client.execute_workflow(Charge, "only_attempt", id="only", task_queue=QUEUE),
        )
    # the budget ran out during the second attempt: the first one's error says why
    assert budget == ["timeout", "timeout schedule_to_close", "Upstream503: card service said 503"]
    assert last == [
        "maximum_attempts_reached",
        "timeout start_to_close",
        "Upstream503: card service said 503",
    ]
    # a first attempt that timed out has no earlier failure to carry
    assert only == ["maximum_attempts_reached", "timeout start_to_close"]
    events = await client.get_workflow_handle("s2c").history()
    timed_out = next(e for e in events if e["event_type"] == "ActivityTaskTimedOut")
    assert timed_out["attributes"]["failure"]["cause"]["type"] == "Upstream503"


async def test_an_activity_timeout_carries_its_last_heartbeat_details(client: Client) -> None:
    async with Worker(client, task_queue=QUEUE, workflows=[Copy], activities=[copies_files]):
        heartbeat, budget = await asyncio.gather(
            client.execute_workflow(Copy, "heartbeat", id="copy-hb", task_queue=QUEUE),
            client.execute_workflow(Copy, "schedule_to_close", id="copy-s2c", task_queue=QUEUE),
        )
    assert heartbeat == ["heartbeat", 3, "file-3"]
    assert budget == ["schedule_to_close", 3, "file-3"]
