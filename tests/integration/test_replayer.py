"""The Replayer: a run's recorded history (from the client or from `baton
workflow history -o json`) replayed against workflow code before a deploy,
a changed command named in a NonDeterminismError, a patched change passing."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from tests.conftest import Region
from tests.helpers import baton_json
from worker import (
    Client,
    NonDeterminismError,
    Replayer,
    Worker,
    WorkflowHistory,
    activity,
    workflow,
)

pytestmark = pytest.mark.integration
QUEUE = "replayer"


@activity.defn
async def pack(item: str) -> str:
    return f"packed {item}"


@activity.defn
async def weigh(item: str) -> int:
    return len(item)


@workflow.defn(name="Shipment")
class ShipmentV1:
    def __init__(self) -> None:
        self.approved = False

    @workflow.run
    async def run(self, item: str) -> str:
        lucky = workflow.random().randint(0, 1000)
        await workflow.wait_condition(lambda: self.approved)
        await workflow.sleep(timedelta(milliseconds=10))
        packed = await workflow.execute_activity(
            pack, item, start_to_close_timeout=timedelta(seconds=10)
        )
        return f"{packed} #{lucky} {workflow.uuid4()}"

    @workflow.signal
    def approve(self) -> None:
        self.approved = True


@workflow.defn(name="Shipment")
class ShipmentSameAgain:
    """V1 with a comment changed: what a harmless deploy looks like."""

    def __init__(self) -> None:
        self.approved = False

    @workflow.run
    async def run(self, item: str) -> str:
        lucky = workflow.random().randint(0, 1000)
        await workflow.wait_condition(lambda: self.approved)
        await workflow.sleep(timedelta(milliseconds=10))  # a durable timer
        packed = await workflow.execute_activity(
            pack, item, start_to_close_timeout=timedelta(seconds=10)
        )
        if lucky < 0:
            raise AssertionError("draws replay as they were drawn")
        return f"{packed} #{lucky} {workflow.uuid4()}"

    @workflow.signal
    def approve(self) -> None:
        self.approved = True


@workflow.defn(name="Shipment")
class ShipmentWeighsFirst:
    """Weighs before packing, without a patch: it must not replay."""

    def __init__(self) -> None:
        self.approved = False

    @workflow.run
    async def run(self, item: str) -> str:
        await workflow.wait_condition(lambda: self.approved)
        await workflow.sleep(timedelta(milliseconds=10))
        await workflow.execute_activity(weigh, item, start_to_close_timeout=timedelta(seconds=10))
        return await workflow.execute_activity(
            pack, item, start_to_close_timeout=timedelta(seconds=10)
        )

    @workflow.signal
    def approve(self) -> None:
        self.approved = True


@workflow.defn(name="Shipment")
class ShipmentWeighsPatched:
    """The same change guarded by a patch: old runs replay as they ran."""

    def __init__(self) -> None:
        self.approved = False

    @workflow.run
    async def run(self, item: str) -> str:
        await workflow.wait_condition(lambda: self.approved)
        await workflow.sleep(timedelta(milliseconds=10))
        if workflow.patched("weigh-first"):
            await workflow.execute_activity(
                weigh, item, start_to_close_timeout=timedelta(seconds=10)
            )
        return await workflow.execute_activity(
            pack, item, start_to_close_timeout=timedelta(seconds=10)
        )

    @workflow.signal
    def approve(self) -> None:
        self.approved = True


@workflow.defn(name="Shipment")
class ShipmentBuggy:
    """A change that raises where the run had gone on."""

    def __init__(self) -> None:
        self.approved = False

    @workflow.run
    async def run(self, item: str) -> str:
        await workflow.wait_condition(lambda: self.approved)
        raise KeyError("a typo in the fix")

    @workflow.signal
    def approve(self) -> None:
        self.approved = True


async def _finished_run(client: Client, wid: str) -> str:
    async with Worker(client, task_queue=QUEUE, workflows=[ShipmentV1], activities=[pack]):
        h = await client.start_workflow(ShipmentV1, "books", id=wid, task_queue=QUEUE)
        await h.signal("approve")
        result = await h.result(timeout=30)
        assert result.startswith("packed books #")
        return h.id


async def test_the_code_that_ran_replays_and_a_changed_command_is_named(client: Client) -> None:
    wid = await _finished_run(client, "ship-1")
    history = await client.get_workflow_handle(wid).fetch_history()
    assert isinstance(history, WorkflowHistory)
    assert history.workflow_id == wid and history.run_id and history.events

    ok = await Replayer(workflows=[ShipmentV1]).replay_workflow(history)
    assert ok.replay_failure is None
    # kept as a file beside the tests, read back
    kept = WorkflowHistory.from_json(None, history.to_json())
    assert (kept.workflow_id, kept.run_id, list(kept.events)) == (
        history.workflow_id,
        history.run_id,
        list(history.events),
    )
    await Replayer(workflows=[ShipmentV1]).replay_workflow(kept)
    # Temporal's arguments are taken
    await Replayer(workflows=[ShipmentV1], namespace="other", debug_mode=True).replay_workflow(kept)
    # the random draws and uuids come from the run's own id, as they did
    assert (
        await Replayer(workflows=[ShipmentSameAgain]).replay_workflow(history)
    ).replay_failure is None

    with pytest.raises(NonDeterminismError) as err:
        await Replayer(workflows=[ShipmentWeighsFirst]).replay_workflow(history)
    text = str(err.value)
    assert wid in text and "weigh" in text and "pack" in text, text

    # returned rather than raised when asked
    res = await Replayer(workflows=[ShipmentWeighsFirst]).replay_workflow(
        history, raise_on_replay_failure=False
    )
    assert isinstance(res.replay_failure, NonDeterminismError)

    assert (
        await Replayer(workflows=[ShipmentWeighsPatched]).replay_workflow(history)
    ).replay_failure is None

    # the code's own exception, as the worker would have failed the task with
    with pytest.raises(KeyError, match="a typo in the fix"):
        await Replayer(workflows=[ShipmentBuggy]).replay_workflow(history)

    both = await Replayer(workflows=[ShipmentWeighsFirst]).replay_workflows(
        [history, history], raise_on_replay_failure=False
    )
    assert list(both.replay_failures) == [history.run_id]  # one run id, keyed once
    assert len(both.replay_results) == 2


async def test_the_events_alone_of_a_reset_run_name_that_run(client: Client) -> None:
    wid = await _finished_run(client, "ship-reset")
    first = await client.get_workflow_handle(wid).fetch_history()
    async with Worker(client, task_queue=QUEUE, workflows=[ShipmentV1], activities=[pack]):
        h = client.get_workflow_handle(wid)
        new_run = await h.reset(to="first-workflow-task", reason="again")
        await client.get_workflow_handle(wid, run_id=new_run).result(timeout=30)
    reset = await client.get_workflow_handle(wid, run_id=new_run).fetch_history()
    assert reset.run_id == new_run != first.run_id
    # its copied started event names the run reset; the reset's event, this run
    events = [dict(e) for e in reset.events]
    assert events[0]["attributes"]["original_run_id"] == first.run_id
    bare = WorkflowHistory.from_json(wid, events)
    assert bare.run_id == new_run  # what workflow.info().run_id reads in its replay
    await Replayer(workflows=[ShipmentV1]).replay_workflow(bare)


async def test_a_history_the_cli_printed_replays(region: Region, client: Client) -> None:
    wid = await _finished_run(client, "ship-2")
    code, doc, err = await baton_json(region.config_path, "workflow", "history", wid)
    assert code == 0, err
    history = WorkflowHistory.from_json(None, json.dumps(doc))
    assert history.workflow_id == wid
    await Replayer(workflows=[ShipmentV1]).replay_workflow(history)
    # the document as parsed JSON, straight in
    await Replayer(workflows=[ShipmentV1]).replay_workflow(doc)
    # a Temporal-style document, the events alone under the workflow id given:
    # the run id comes from the first event, workflow.random() draws as it drew
    bare = WorkflowHistory.from_json(wid, json.dumps({"events": doc["events"]}))
    assert bare.run_id == doc["run_id"]
    await Replayer(workflows=[ShipmentV1]).replay_workflow(bare)
    assert WorkflowHistory.from_json(wid, doc["events"]).run_id == doc["run_id"]
    with pytest.raises(NonDeterminismError, match="weigh"):
        await Replayer(workflows=[ShipmentWeighsFirst]).replay_workflow(doc)


async def test_a_running_run_replays_up_to_where_it_is(client: Client) -> None:
    async with Worker(client, task_queue=QUEUE, workflows=[ShipmentV1], activities=[pack]):
        h = await client.start_workflow(ShipmentV1, "maps", id="ship-3", task_queue=QUEUE)
        history = await h.fetch_history()
        # waiting for the signal: only the first task is history yet
        for _ in range(50):
            if any(e["event_type"] == "WorkflowTaskCompleted" for e in history.events):
                break
            history = await h.fetch_history()
        await Replayer(workflows=[ShipmentV1]).replay_workflow(history)
        await Replayer(workflows=[ShipmentWeighsFirst]).replay_workflow(history)
        await h.terminate("done")
