"""Dynamic workflows, activities and handlers (as Temporal's ``dynamic=True``):
they take what no definition of its name takes, given the name and the
arguments as ``RawValue`` for the payload converter to decode."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import pytest

from tests.helpers import eventually
from worker import (
    Client,
    InvalidArgumentError,
    QueryFailedError,
    RawValue,
    Replayer,
    UpdateRejectedError,
    Worker,
    activity,
    workflow,
)

pytestmark = pytest.mark.integration
QUEUE = "dynamic"


@dataclasses.dataclass
class Item:
    sku: str
    count: int


@workflow.defn
class Basket:
    def __init__(self) -> None:
        self.seen: list[Any] = []
        self.done = False

    @workflow.run
    async def run(self) -> list[Any]:
        await workflow.wait_condition(lambda: self.done)
        return self.seen

    @workflow.signal
    def finish(self) -> None:
        self.done = True

    @workflow.signal(dynamic=True)
    def any_signal(self, name: str, args: Sequence[RawValue]) -> None:
        item = workflow.payload_converter().from_payload(args[0].payload, Item)
        assert isinstance(item, Item)
        self.seen.append([name, item.sku, item.count, len(args)])

    @workflow.query
    def size(self) -> int:
        return len(self.seen)

    @workflow.query(dynamic=True)
    def any_query(self, name: str, args: Sequence[RawValue]) -> str:
        decoded = [workflow.payload_converter().from_payload(a.payload) for a in args]
        return f"{name}{decoded}"

    @workflow.update(dynamic=True)
    def any_update(self, name: str, args: Sequence[RawValue]) -> str:
        count = workflow.payload_converter().from_payload(args[0].payload, int)
        self.seen.append([name, count])
        return f"{name}:{count}"

    @any_update.validator
    def check_update(self, name: str, args: Sequence[RawValue]) -> None:
        if name.startswith("bad"):
            raise ValueError(f"no update named {name}")


async def test_class_dynamic_handlers_take_what_no_named_handler_takes(client: Client) -> None:
    async with Worker(client, task_queue=QUEUE, workflows=[Basket], max_cached_workflows=0):
        h = await client.start_workflow(Basket, id="basket", task_queue=QUEUE)
        await h.signal("add", Item("apple", 2))
        await h.signal("remove", Item("pear", 1))
        assert await h.query(Basket.size) == 2  # a named query before the dynamic one
        assert await h.query("echo", 1, "x") == "echo[1, 'x']"
        assert await h.update("bump", 5) == "bump:5"
        with pytest.raises(UpdateRejectedError, match="no update named bad-one"):
            await h.update("bad-one", 1)
        await h.signal(Basket.finish)  # a named signal is not the dynamic handler's
        result = await h.result()
        assert result == [["add", "apple", 2, 1], ["remove", "pear", 1, 1], ["bump", 5]]
        # the run replays the same, dynamic handlers and all
        await Replayer(workflows=[Basket]).replay_workflow(await h.fetch_history())


@workflow.defn
class Late:
    """Sets its handlers as it runs; signals sent before come to them."""

    def __init__(self) -> None:
        self.log: list[str] = []

    @workflow.run
    async def run(self) -> dict[str, Any]:
        await workflow.wait_condition(lambda: len(self.log) >= 1)
        found = {
            "before": [
                workflow.get_dynamic_signal_handler() is None,
                workflow.get_signal_handler("go") is not None,
                workflow.get_query_handler("log") is None,
            ]
        }

        def on_any(name: str, args: Sequence[RawValue]) -> None:
            values = [workflow.payload_converter().from_payload(a.payload) for a in args]
            self.log.append(f"{name}={values}")

        def query_any(name: str, args: Sequence[RawValue]) -> list[str]:
            return [name, *self.log]

        def update_any(name: str, args: Sequence[RawValue]) -> int:
            self.log.append(f"update {name}")
            return len(args)

        workflow.set_dynamic_signal_handler(on_any)
        workflow.set_dynamic_query_handler(query_any)
        workflow.set_dynamic_update_handler(update_any)
        found["after"] = [
            workflow.get_dynamic_signal_handler() is on_any,
            workflow.get_dynamic_query_handler() is query_any,
            workflow.get_dynamic_update_handler() is update_any,
            workflow.get_update_handler("x") is None,
        ]
        await workflow.wait_condition(lambda: "stop=[]" in self.log)
        workflow.set_dynamic_query_handler(None)
        found["log"] = list(self.log)
        return found

    @workflow.signal
    def go(self) -> None:
        self.log.append("go")


async def test_signals_buffered_before_a_dynamic_handler_reach_it_in_order(
    client: Client,
) -> None:
    async with Worker(client, task_queue=QUEUE, workflows=[Late], max_cached_workflows=0):
        h = await client.start_workflow(Late, id="late", task_queue=QUEUE)
        # sent before the run sets a handler for them, in one task or several
        await h.signal("b", 1)
        await h.signal("a", 2)
        await h.signal("b", 3)
        await h.signal(Late.go)

        async def handler_set() -> bool:
            try:
                return len(await h.query("anything")) == 5
            except QueryFailedError:
                return False  # not set yet

        await eventually(handler_set, what="the dynamic handlers set")
        assert await h.query("log") == ["log", "go", "b=[1]", "a=[2]", "b=[3]"]
        assert await h.update("u", 1, 2) == 2
        await h.signal("stop")
        result = await h.result()
        assert result["before"] == [True, True, True]
        assert result["after"] == [True, True, True, True]
        assert result["log"] == ["go", "b=[1]", "a=[2]", "b=[3]", "update u", "stop=[]"]
        with pytest.raises(QueryFailedError, match="unknown query 'anything'"):
            await h.query("anything")
        await Replayer(workflows=[Late]).replay_workflow(await h.fetch_history())


@activity.defn(dynamic=True)
async def any_activity(args: Sequence[RawValue]) -> str:
    item = activity.payload_converter().from_payload(args[0].payload, Item)
    return f"{activity.info().activity_type}:{item.sku}x{item.count}:{len(args)}"


@activity.defn
async def named_activity(text: str) -> str:
    return f"named {text}"


@workflow.defn(dynamic=True)
class AnyWorkflow:
    @workflow.run
    async def run(self, args: Sequence[RawValue]) -> list[str]:
        item = workflow.payload_converter().from_payload(args[0].payload, Item)
        options: dict[str, Any] = {"start_to_close_timeout": timedelta(seconds=30)}
        return [
            workflow.info().workflow_type,
            str(len(args)),
            await workflow.execute_activity("ship", item, "extra", **options),
            await workflow.execute_activity(named_activity, "call", **options),
        ]


@workflow.defn
class Named:
    @workflow.run
    async def run(self) -> str:
        return "named workflow"


async def test_a_dynamic_workflow_and_activity_run_unregistered_types(client: Client) -> None:
    async with Worker(
        client,
        task_queue=QUEUE,
        workflows=[AnyWorkflow, Named],
        activities=[any_activity, named_activity],
        max_cached_workflows=0,
    ):
        result = await client.execute_workflow(
            "OrderFlow", Item("box", 3), 7, id="dyn-wf", task_queue=QUEUE
        )
        assert result == ["OrderFlow", "2", "ship:boxx3:2", "named call"]
        assert await client.execute_workflow(Named, id="named-wf", task_queue=QUEUE) == (
            "named workflow"
        )
        h = client.get_workflow_handle("dyn-wf")
        assert (await h.describe())["execution"]["workflow_type"] == "OrderFlow"
        # a dynamic definition is named by the type or message it should take
        with pytest.raises(InvalidArgumentError, match="name the workflow type to start"):
            await client.start_workflow(AnyWorkflow, Item("box", 1), id="dyn-2", task_queue=QUEUE)
        with pytest.raises(InvalidArgumentError, match="name the signal to send"):
            await h.signal(Basket.any_signal, 1)
        await Replayer(workflows=[AnyWorkflow]).replay_workflow(await h.fetch_history())


def test_dynamic_definitions_are_checked_where_they_are_written() -> None:
    with pytest.raises(TypeError, match="a name or dynamic=True"):

        @workflow.defn(name="X", dynamic=True)
        class NamedAndDynamic:
            @workflow.run
            async def run(self, args: Sequence[RawValue]) -> None: ...

    with pytest.raises(TypeError, match=r"must take \(args: Sequence\[RawValue\]\)"):

        @workflow.defn(dynamic=True)
        class TwoArgs:
            @workflow.run
            async def run(self, a: int, b: int) -> None: ...

    with pytest.raises(TypeError, match=r"must take \(name, args"):

        class BadSignal:
            @workflow.signal(dynamic=True)
            def on(self, args: Sequence[RawValue]) -> None: ...

    with pytest.raises(ValueError, match="more than one dynamic workflow"):

        @workflow.defn(dynamic=True)
        class Other:
            @workflow.run
            async def run(self, args: Sequence[RawValue]) -> None: ...

        Replayer(workflows=[AnyWorkflow, Other])


def test_a_worker_with_a_dynamic_workflow_takes_settings_for_any_type(client: Client) -> None:
    # its types are whatever it is sent: a limit for one is not a misspelling
    Worker(
        client,
        task_queue=QUEUE,
        workflows=[AnyWorkflow],
        pause_after_failed_workflow_tasks={"OrderFlow": 3},
    )
    with pytest.raises(ValueError, match="no workflow type of this worker"):
        Worker(
            client, task_queue=QUEUE, workflows=[Named], pause_after_failed_workflow_tasks={"X": 3}
        )


@activity.defn(dynamic=True)
def any_sync_activity(args: Sequence[RawValue]) -> list[Any]:
    convert = activity.payload_converter()
    return [activity.info().activity_type, *(convert.from_payload(a.payload) for a in args)]


@workflow.defn
class CallsAnything:
    @workflow.run
    async def run(self) -> Any:
        return await workflow.execute_activity(
            "Anything",
            1,
            "two",
            task_queue="dynamic-activities",
            start_to_close_timeout=timedelta(seconds=30),
        )


async def test_a_worker_of_one_plain_dynamic_activity_polls_and_runs_it(client: Client) -> None:
    # a worker whose only activity is dynamic (and a plain function, run on a thread)
    async with (
        Worker(client, task_queue="dynamic-activities", activities=[any_sync_activity]),
        Worker(client, task_queue=QUEUE, workflows=[CallsAnything]),
    ):
        result = await client.execute_workflow(CallsAnything, id="calls", task_queue=QUEUE)
        assert result == ["Anything", 1, "two"]
