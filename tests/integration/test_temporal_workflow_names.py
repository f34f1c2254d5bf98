"""Temporal's names for what a run has, as Temporal code writes them:
``@workflow.init`` gives ``__init__`` the run's input (so a signal that came
with the start finds the state it set), ``workflow.memo()`` and
``workflow.memo_value()`` read the memo, and a start's handle names its
``first_execution_run_id``."""

from __future__ import annotations

import dataclasses

import pytest

from worker import Client, Worker, workflow

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
