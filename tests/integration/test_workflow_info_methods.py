"""Temporal's workflow.Info methods get_current_history_length and is_continue_as_new_suggested."""

from __future__ import annotations

from typing import Any

import pytest

from worker import Client, Worker, workflow

pytestmark = pytest.mark.integration
QUEUE = "info-methods"


@workflow.defn
class Measured:
    def __init__(self) -> None:
        self.go = False

    @workflow.run
    async def run(self) -> list[Any]:
        await workflow.wait_condition(lambda: self.go)
        info = workflow.info()
        return [
            info.get_current_history_length(),
            info.history_length,
            info.is_continue_as_new_suggested(),
        ]

    @workflow.signal
    def proceed(self) -> None:
        self.go = True


async def test_info_methods_read_as_in_temporal(client: Client) -> None:
    async with Worker(client, task_queue=QUEUE, workflows=[Measured]):
        handle = await client.start_workflow(Measured, id="measured-1", task_queue=QUEUE)
        await handle.signal(Measured.proceed)
        current, length, suggested = await handle.result(timeout=20)
    started = [e for e in await handle.history() if e["event_type"] == "WorkflowTaskStarted"]
    assert current == length == started[-1]["event_id"]
    assert suggested is False
