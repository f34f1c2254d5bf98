"""Pause requests retried by their request id, driven by hand through the HTTP API."""

from __future__ import annotations

from typing import Any

import pytest

from worker import Client, WorkflowHandle
from worker._http import ns_path
from worker.errors import WorkflowNotRunningError

pytestmark = pytest.mark.integration
QUEUE = "by-hand"


async def take_task(client: Client) -> dict[str, Any]:
    poll = {"task_queue": QUEUE, "identity": "t", "wait_s": 10}
    task: dict[str, Any] = (
        await client.call("POST", ns_path(client.namespace, "/workflow-tasks/poll"), poll)
    )["task"]
    assert task, "no workflow task came"
    return task


async def complete(client: Client, task: dict[str, Any], *commands: dict[str, Any]) -> None:
    body = {"task_token": task["task_token"], "identity": "t", "commands": list(commands)}
    await client.call("POST", ns_path(client.namespace, "/workflow-tasks/complete"), body)


async def start(client: Client, workflow_id: str) -> WorkflowHandle:
    return await client.start_workflow("ByHand", id=workflow_id, task_queue=QUEUE)


async def test_a_retried_pause_carried_by_continue_as_new_answers_the_paused_run(
    client: Client,
) -> None:
    """A pause that comes as the run continues-as-new pauses the new run; its
    retry answered with the old, closed run as not paused."""
    h = await start(client, "carried-pause")
    task = await take_task(client)
    first = await h.pause("look", request_id="p-carried")
    await complete(client, task, {"type": "ContinueAsNew", "attributes": {"input": []}})
    current = await client.get_workflow_handle("carried-pause").describe()
    new_run = current["execution"]["run_id"]
    assert new_run != h.run_id and current["execution"]["paused"]
    again = await h.pause("look", request_id="p-carried")
    assert first["paused"] and not again["changed"]
    assert again["run_id"] == new_run
    assert again["paused"] and again["pause"]["request_id"] == "p-carried"


async def test_a_handle_given_a_closed_run_does_not_pause_the_current_one(client: Client) -> None:
    """The SDK sent no run id with a pause, an unpause or a versioning
    override, so a handle given an old run acted on whatever run was current."""
    first = await start(client, "pinned-pause")
    await first.terminate("the first run ends")
    second = await start(client, "pinned-pause")
    old = client.get_workflow_handle("pinned-pause", run_id=first.run_id)
    for call in (old.pause, old.unpause):
        with pytest.raises(WorkflowNotRunningError):
            await call("not this run")
    # a versioning override, too, is of the handle's run
    with pytest.raises(WorkflowNotRunningError):
        await old.update_versioning(None, reason="not this run")
    pinned = client.get_workflow_handle("pinned-pause", run_id=second.run_id)
    assert (await pinned.pause("this run"))["run_id"] == second.run_id
    kinds = [e["event_type"] for e in await second.history()]
    assert kinds.count("WorkflowExecutionPaused") == 1
    assert "WorkflowExecutionUnpaused" not in kinds
