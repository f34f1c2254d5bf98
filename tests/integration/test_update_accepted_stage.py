"""``start_update(wait_for_stage=ACCEPTED)`` is answered by the server as the
workflow accepts the update (``wait_for_stage: accepted`` on the update
route), not found by reading the run's history over and over."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from tests.conftest import Region
from worker import (
    ApplicationError,
    Client,
    UpdateFailedError,
    UpdateRejectedError,
    Worker,
    WorkflowUpdateStage,
    workflow,
)
from worker._http import wf_path

pytestmark = pytest.mark.integration
QUEUE = "accepted-stage"


@workflow.defn
class Gate:
    def __init__(self) -> None:
        self.open = False
        self.done = False

    @workflow.run
    async def run(self) -> None:
        await workflow.wait_condition(lambda: self.done)

    @workflow.signal
    def let_through(self) -> None:
        self.open = True

    @workflow.signal
    def finish(self) -> None:
        self.done = True

    @workflow.update
    async def pass_gate(self, who: str) -> str:
        await workflow.wait_condition(lambda: self.open)
        if who == "bad":
            raise ApplicationError("not this one")
        return f"{who} passed"

    @pass_gate.validator
    def check(self, who: str) -> None:
        if who == "":
            raise ValueError("nobody")


async def test_the_update_route_answers_at_acceptance(region: Region, client: Client) -> None:
    async with Worker(client, task_queue=QUEUE, workflows=[Gate]):
        h = await client.start_workflow(Gate, id="gate-http", task_queue=QUEUE)
        body = {
            "update_id": "u-1",
            "name": "pass_gate",
            "input": await client.encode(["ann"]),
            "timeout_s": 20,
            "wait_for_stage": "accepted",
        }
        path = wf_path("default", h.id, "/update")
        async with httpx.AsyncClient(base_url=region.url, timeout=30) as http:
            started = time.monotonic()
            res = await http.post(path, json=body)
            took = time.monotonic() - started
            assert res.status_code == 200, res.text
            answer = res.json()
            assert answer["state"] == "accepted" and answer["update_id"] == "u-1"
            assert answer.get("result") is None
            assert took < 10  # the handler still waits for the gate
            await h.signal(Gate.let_through)
            # the same id waits for the result now
            done = await http.post(path, json={**body, "wait_for_stage": "completed"})
            assert done.json()["state"] == "completed"
            assert await client.decode_one(done.json()["result"], str) == "ann passed"
            bad = await http.post(path, json={**body, "wait_for_stage": "admitted"})
            assert bad.status_code == 400, bad.text
        await h.signal(Gate.finish)


async def test_start_update_reads_no_history_while_it_waits(region: Region, client: Client) -> None:
    # the worker's own client replays histories: the caller's is another
    caller = await Client.connect(region.url, namespace="default")
    reads = 0
    call = caller.call

    async def counting(method: str, path: str, *args: object, **kw: object) -> object:
        nonlocal reads
        reads += path.endswith("/history")
        return await call(method, path, *args, **kw)

    caller.call = counting  # type: ignore[method-assign]
    async with Worker(client, task_queue=QUEUE, workflows=[Gate]):
        h = await caller.start_workflow(Gate, id="gate-sdk", task_queue=QUEUE)
        upd = await h.start_update(
            Gate.pass_gate, "bob", wait_for_stage=WorkflowUpdateStage.ACCEPTED
        )
        bad = await h.start_update(
            Gate.pass_gate, "bad", wait_for_stage=WorkflowUpdateStage.ACCEPTED
        )
        with pytest.raises(UpdateRejectedError, match="nobody"):
            await h.start_update(Gate.pass_gate, "", wait_for_stage=WorkflowUpdateStage.ACCEPTED)
        await asyncio.sleep(0.3)
        await h.signal(Gate.let_through)
        assert await upd.result() == "bob passed"
        with pytest.raises(UpdateFailedError, match="not this one"):
            await bad.result()
        # an update that already completed: the accepted stage answers with it
        again = await h.start_update(
            Gate.pass_gate, "bob", id=upd.id, wait_for_stage=WorkflowUpdateStage.ACCEPTED
        )
        assert await again.result() == "bob passed"
        await h.signal(Gate.finish)
    await caller.close()
    assert reads == 0
