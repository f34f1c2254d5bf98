"""Activities that are methods of an object holding their dependencies (a
database pool, an HTTP client), registered bound (``activities=[repo.fetch]``)
as Temporal takes them: each attempt calls the method with its ``self``."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest

from worker import Client, Worker, activity, workflow

pytestmark = pytest.mark.integration
QUEUE = "activity-methods"


@dataclasses.dataclass
class Item:
    sku: str
    quantity: int


class Inventory:
    def __init__(self, warehouse: str) -> None:
        self.warehouse = warehouse
        self.reserved: list[Item] = []

    @activity.defn
    async def reserve(self, item: Item) -> str:
        self.reserved.append(item)
        return f"{item.quantity} x {item.sku} in {self.warehouse}"

    @activity.defn(name="count_reserved")
    def count(self, sku: str) -> int:
        return sum(i.quantity for i in self.reserved if i.sku == sku)


@workflow.defn
class Reserve:
    @workflow.run
    async def run(self, sku: str) -> list[object]:
        limit = timedelta(seconds=10)
        first = await workflow.execute_activity(
            Inventory.reserve, Item(sku, 2), start_to_close_timeout=limit
        )
        await workflow.execute_activity(
            Inventory.reserve, Item(sku, 3), start_to_close_timeout=limit
        )
        total = await workflow.execute_activity("count_reserved", sku, start_to_close_timeout=limit)
        return [first, total]


async def test_bound_methods_run_as_activities_with_their_object(client: Client) -> None:
    inventory = Inventory("north")
    async with Worker(
        client,
        task_queue=QUEUE,
        workflows=[Reserve],
        activities=[inventory.reserve, inventory.count],
    ):
        result = await client.execute_workflow(Reserve, "bolt", id="reserve", task_queue=QUEUE)
    assert result == ["2 x bolt in north", 5]
    # the argument was decoded by the method's own annotation, after self
    assert inventory.reserved == [Item("bolt", 2), Item("bolt", 3)]
