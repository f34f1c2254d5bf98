"""``handle.get_update_handle(id)`` (and ``get_update_handle_for``), as
Temporal's: a handle to an update sent before, by this process or another,
whose ``result()`` waits for its outcome without sending it again; an id the
run never took is ``UpdateNotFoundError`` (HTTP ``UPDATE_NOT_FOUND``)."""

from __future__ import annotations

from dataclasses import dataclass

import httpx
import pytest

from tests.conftest import Region
from worker import ApplicationError, Client, Worker, WorkflowUpdateStage, workflow
from worker.errors import InvalidArgumentError, UpdateFailedError, UpdateNotFoundError

pytestmark = pytest.mark.integration
QUEUE = "update-by-id"


@dataclass
class Receipt:
    item: str
    count: int


@workflow.defn
class Shop:
    def __init__(self) -> None:
        self.open = False
        self.done = False

    @workflow.run
    async def run(self) -> None:
        await workflow.wait_condition(lambda: self.done)

    @workflow.signal
    def open_shop(self) -> None:
        self.open = True

    @workflow.update
    async def buy(self, item: str) -> Receipt:
        await workflow.wait_condition(lambda: self.open)
        if item == "nothing":
            raise ApplicationError("nothing to buy")
        return Receipt(item=item, count=2)


async def test_a_handle_by_id_waits_for_the_outcome_of_the_update_sent(
    region: Region, client: Client
) -> None:
    async with Worker(client, task_queue=QUEUE, workflows=[Shop]):
        h = await client.start_workflow(Shop, id="shop", task_queue=QUEUE)
        await h.start_update(
            Shop.buy, "tea", id="buy-tea", wait_for_stage=WorkflowUpdateStage.ACCEPTED
        )
        await h.start_update(
            Shop.buy, "nothing", id="buy-nothing", wait_for_stage=WorkflowUpdateStage.ACCEPTED
        )
        async with await Client.connect(region.url) as other:
            later = other.get_workflow_handle("shop")
            typed = later.get_update_handle_for(Shop.buy, "buy-tea")
            untyped = later.get_update_handle("buy-tea")
            assert typed.id == "buy-tea"
            await h.signal(Shop.open_shop)
            assert await typed.result() == Receipt(item="tea", count=2)
            assert await untyped.result() == {"item": "tea", "count": 2}
            with pytest.raises(UpdateFailedError, match="nothing to buy"):
                await later.get_update_handle("buy-nothing").result()
            with pytest.raises(UpdateNotFoundError, match="buy-coffee"):
                await later.get_update_handle("buy-coffee").result()
            with pytest.raises(InvalidArgumentError):
                later.get_update_handle(" ")
        # nothing was sent for the unknown id: the run took two updates
        events = await h.history()
        accepted = [e for e in events if e["event_type"] == "WorkflowExecutionUpdateAccepted"]
        assert len(accepted) == 2
    url = f"{region.url}/api/v1/namespaces/default/workflows/shop/updates/buy-coffee"
    async with httpx.AsyncClient(timeout=30) as http:
        r = await http.get(url, params={"wait_s": 1})
    assert r.status_code == 404, r.text
    assert r.json()["error"]["code"] == "UPDATE_NOT_FOUND"
