"""Temporal's names for what a run has, as Temporal code writes them:
``@workflow.init`` gives ``__init__`` the run's input (so a signal that came
with the start finds the state it set), ``workflow.memo()`` and
``workflow.memo_value()`` read the memo, a start's handle names its
``first_execution_run_id``, and ``workflow.wait()`` and
``workflow.as_completed()`` are asyncio's, in an order a replay repeats."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable
from datetime import timedelta

import pytest

from worker import Client, Replayer, Worker, activity, workflow

pytestmark = pytest.mark.integration
QUEUE = "temporal-names"


@dataclasses.dataclass
class Owner:
    name: str
    team: str


@workflow.defn
class Greeter:
    @workflow.init
    def __init__(self, name: str) -> None:
        self.greeting = f"Hello, {name}"
        self.extra: list[str] = []

    @workflow.run
    async def run(self, name: str) -> list[object]:
        await workflow.wait_condition(lambda: bool(self.extra))
        owner = workflow.memo_value("owner", type_hint=Owner)
        missing = workflow.memo_value("nope", "fallback")
        return [self.greeting, self.extra, dict(workflow.memo()), owner.team, missing]

    @workflow.signal
    def add(self, text: str) -> None:
        # the signal came with the start: it runs before the run method
        self.extra.append(f"{self.greeting} {text}")


async def test_init_memo_and_first_execution_run_id(client: Client) -> None:
    async with Worker(client, task_queue=QUEUE, workflows=[Greeter]):
        handle = await client.start_workflow(
            Greeter.run,
            "World",
            id="temporal-names",
            task_queue=QUEUE,
            memo={"owner": {"name": "ann", "team": "billing"}},
            start_signal="add",
            start_signal_args=["again"],
        )
        assert handle.first_execution_run_id == handle.first_run_id is not None
        assert await handle.result(timeout=30) == [
            "Hello, World",
            ["Hello, World again"],
            {"owner": {"name": "ann", "team": "billing"}},
            "billing",
            "fallback",
        ]


@activity.defn
async def pause_for(seconds: float) -> float:
    await asyncio.sleep(seconds)
    return seconds


@workflow.defn
class FanOut:
    @workflow.run
    async def run(self) -> list[object]:
        def step(seconds: float) -> Awaitable[float]:
            return workflow.execute_activity(
                pause_for, seconds, start_to_close_timeout=timedelta(seconds=30)
            )

        slow, fast = asyncio.ensure_future(step(3)), asyncio.ensure_future(step(0.1))
        done, pending = await workflow.wait([slow, fast], return_when=asyncio.FIRST_COMPLETED)
        firsts = [await f for f in done] + [len(pending)]
        order = [await f for f in workflow.as_completed([step(0.6), step(0.1)])]
        done, pending = await workflow.wait([slow])
        return [*firsts, *order, len(done), len(pending)]


async def test_wait_and_as_completed_give_what_asyncio_does_and_replay(client: Client) -> None:
    async with Worker(client, task_queue=QUEUE, workflows=[FanOut], activities=[pause_for]):
        handle = await client.start_workflow(FanOut.run, id="temporal-wait", task_queue=QUEUE)
        assert await handle.result(timeout=60) == [0.1, 1, 0.1, 0.6, 1, 0]
    replayed = await Replayer(workflows=[FanOut]).replay_workflow(await handle.fetch_history())
    assert replayed.replay_failure is None
