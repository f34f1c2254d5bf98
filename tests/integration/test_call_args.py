"""Arguments given as Temporal's SDK takes them, ``args=[...]``, on every call that
takes arguments (start, execute, signal-with-start, signal, query, update,
activities, continue-as-new), driven through a real worker and server; and the
three ways Temporal names the workflow to start: its class, its run method,
its type name."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from tests.helpers import eventually
from worker import (
    ApplicationError,
    ArgumentsGivenTwiceError,
    Client,
    InvalidArgumentError,
    UpdateFailedError,
    UpdateRejectedError,
    Worker,
    WorkflowIdConflictPolicy,
    WorkflowNotFoundError,
    WorkflowUpdateStage,
    activity,
    workflow,
)

pytestmark = pytest.mark.integration
QUEUE = "call-args"
STEP = timedelta(seconds=10)


@activity.defn
async def join(a: str, b: int) -> str:
    return f"{a}:{b}"


@workflow.defn
class Pair:
    def __init__(self) -> None:
        self.seen: list[str] = []
        self.done = False

    @workflow.run
    async def run(self, a: str, b: int, hops: int = 0, wait: bool = True) -> list[str]:
        first = await workflow.execute_activity(join, args=[a, b], start_to_close_timeout=STEP)
        second = await workflow.start_activity(join, args=(a, b + 1), start_to_close_timeout=STEP)
        if hops:
            workflow.continue_as_new(args=[a, b * 10, hops - 1, wait])
        if wait:
            await workflow.wait_condition(lambda: self.done)
        return [first, second, *self.seen]

    @workflow.signal
    def note(self, x: str, y: str) -> None:
        self.seen.append(x + y)

    @workflow.signal
    def finish(self) -> None:
        self.done = True

    @workflow.query
    def joined(self, sep: str, tail: str) -> str:
        return sep.join(self.seen) + tail

    @workflow.update
    def add(self, x: str, y: str) -> int:
        self.seen.append(x + y)
        return len(self.seen)


@workflow.defn
class Twice:
    @workflow.run
    async def run(self) -> str:
        return str(
            await workflow.execute_activity(join, "a", args=["b", 1], start_to_close_timeout=STEP)
        )


class Repo:
    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    @activity.defn
    async def fetch(self, key: str, n: int) -> str:
        return f"{self.prefix}{key}{n}"


@workflow.defn
class ByMethod:
    @workflow.run
    async def run(self, key: str) -> list[str]:
        one = await workflow.execute_activity_method(
            Repo.fetch, args=[key, 1], start_to_close_timeout=STEP
        )
        two = await workflow.start_activity_method(Repo.fetch, key, 2, start_to_close_timeout=STEP)
        return [one, two]


async def test_activity_methods_and_a_typed_handle_as_temporal_names_them(client: Client) -> None:
    async with Worker(
        client, task_queue=QUEUE, workflows=[ByMethod], activities=[Repo("r-").fetch]
    ):
        await client.start_workflow(ByMethod.run, args=["k"], id="by-method", task_queue=QUEUE)
        h = client.get_workflow_handle_for(ByMethod.run, "by-method")
        assert await h.result(timeout=30) == ["r-k1", "r-k2"]


@pytest.mark.parametrize("named", ["class", "run method", "type name"])
async def test_execute_workflow_activities_and_continue_as_new_take_args(
    client: Client, named: str
) -> None:
    wf: Any = {"class": Pair, "run method": Pair.run, "type name": "Pair"}[named]
    async with Worker(client, task_queue=QUEUE, workflows=[Pair], activities=[join]):
        out = await client.execute_workflow(
            wf, args=["x", 1, 1, False], id=f"exec-{named}", task_queue=QUEUE
        )
    assert out == ["x:10", "x:11"]


async def test_signal_query_and_update_take_args(client: Client) -> None:
    async with Worker(client, task_queue=QUEUE, workflows=[Pair], activities=[join]):
        h = await client.start_workflow("Pair", args=["y", 2], id="messages", task_queue=QUEUE)
        await h.signal(Pair.note, args=["a", "b"])
        assert await h.query(Pair.joined, args=["-", "!"]) == "ab!"
        assert await h.execute_update(Pair.add, args=["c", "d"], id="u-1") == 2
        assert await h.execute_update(Pair.add, args=["c", "d"], id="u-1") == 2  # deduplicated
        assert await h.update("add", args=("e", "f")) == 3
        assert await h.query("joined", "+", ".") == "ab+cd+ef."
        await h.signal(Pair.finish, args=[])
        assert await h.result(timeout=30) == ["y:2", "y:3", "ab", "cd", "ef"]


@pytest.mark.parametrize("named", ["class", "run method", "type name"])
async def test_signal_with_start_takes_args(client: Client, named: str) -> None:
    wf: Any = {"class": Pair, "run method": Pair.run, "type name": "Pair"}[named]
    async with Worker(client, task_queue=QUEUE, workflows=[Pair], activities=[join]):
        h = await client.signal_with_start_workflow(
            wf,
            args=["z", 3],
            id=f"sws-{named}",
            task_queue=QUEUE,
            signal=Pair.note,
            signal_args=["p", "q"],
        )
        await h.signal("finish")
        assert await h.result(timeout=30) == ["z:3", "z:4", "pq"]


async def test_arguments_given_both_ways_are_refused_before_anything_is_sent(
    client: Client,
) -> None:
    both: dict[str, Any] = {"args": ["x", 1]}
    start: dict[str, Any] = {"task_queue": QUEUE, **both}
    calls = [
        lambda: client.start_workflow(Pair, "x", 1, id="both-start", **start),
        lambda: client.execute_workflow(Pair.run, "x", 1, id="both-exec", **start),
        lambda: client.signal_with_start_workflow(
            "Pair", "x", 1, id="both-sws", signal="finish", **start
        ),
    ]
    for call in calls:
        with pytest.raises(ArgumentsGivenTwiceError) as caught:
            await call()
        assert isinstance(caught.value, TypeError | ValueError | InvalidArgumentError)
        assert "positionally or as args=" in str(caught.value)
    for wf_id in ("both-start", "both-exec", "both-sws"):
        with pytest.raises(WorkflowNotFoundError):
            await client.get_workflow_handle(wf_id).describe()

    h = await client.start_workflow(Pair, args=["x", 1], id="both-messages", task_queue=QUEUE)
    before = await h.history()
    for send in (
        lambda: h.signal(Pair.note, "a", **both),
        lambda: h.query(Pair.joined, "-", **both),
        lambda: h.update(Pair.add, "a", **both),
        lambda: h.execute_update(Pair.add, "a", **both),
    ):
        with pytest.raises(ArgumentsGivenTwiceError):
            await send()
    with pytest.raises(InvalidArgumentError, match=r"write \['ab'\] for one argument"):
        await client.start_workflow(Pair, args="ab", id="both-string", task_queue=QUEUE)
    assert await h.history() == before


async def test_workflow_code_giving_both_fails_its_task_not_the_run(client: Client) -> None:
    async with Worker(client, task_queue=QUEUE, workflows=[Twice], activities=[join]):
        h = await client.start_workflow(Twice, id="twice", task_queue=QUEUE)

        async def failed_task() -> str:
            task = (await h.describe()).get("pending_workflow_task") or {}
            return str((task.get("last_failure") or {}).get("message") or "")

        message = await eventually(failed_task, what="the workflow task to fail")
    assert "start_activity got 1 positional argument(s) and args=['b', 1]" in message
    assert (await h.describe())["execution"]["status"] == "running"


async def test_start_signal_makes_a_start_a_signal_with_start_as_in_temporal(
    client: Client,
) -> None:
    async with Worker(client, task_queue=QUEUE, workflows=[Pair], activities=[join]):
        opts: dict[str, Any] = {"id": "start-signal", "task_queue": QUEUE}
        h = await client.start_workflow(
            Pair.run, args=["s", 5], start_signal=Pair.note, start_signal_args=["m", "n"], **opts
        )
        again = await client.start_workflow(
            Pair, "s", 5, start_signal="note", start_signal_args=["o", "p"], **opts
        )
        assert again.run_id == h.run_id  # the running run is signaled, not refused
        assert await h.query(Pair.joined, "", "") == "mnop"
        await h.signal(Pair.finish)
        assert await h.result(timeout=30) == ["s:5", "s:6", "mn", "op"]

        out = await client.execute_workflow(
            "Pair",
            args=["t", 1, 0, False],
            id="execute-signal",
            task_queue=QUEUE,
            start_signal="note",
            start_signal_args=["k", "l"],
            result_type=tuple,
        )
        assert out == ("t:1", "t:2", "kl")
    with pytest.raises(InvalidArgumentError, match="cannot go with start_signal"):
        await client.start_workflow(
            Pair,
            id="start-signal",
            task_queue=QUEUE,
            start_signal="finish",
            id_conflict_policy=WorkflowIdConflictPolicy.TERMINATE_EXISTING,
        )
    with pytest.raises(InvalidArgumentError, match="without start_signal"):
        await client.start_workflow(Pair, id="no-signal", task_queue=QUEUE, start_signal_args=[1])
    with pytest.raises(WorkflowNotFoundError):
        await client.get_workflow_handle("no-signal").describe()


@workflow.defn
class Gate:
    def __init__(self) -> None:
        self.open = False
        self.done = False

    @workflow.run
    async def run(self) -> None:
        await workflow.wait_condition(lambda: self.done)

    @workflow.update
    async def enter(self, who: str, n: int) -> str:
        await workflow.wait_condition(lambda: self.open)
        if n == 13:
            raise ApplicationError("unlucky")
        return f"{who}{n}"

    @enter.validator
    def _enter(self, who: str, n: int) -> None:
        if n < 0:
            raise ValueError("negative")

    @workflow.signal
    def unlock(self) -> None:
        self.open = True

    @workflow.signal
    def finish(self) -> None:
        self.done = True


async def test_start_update_returns_once_accepted_as_in_temporal(client: Client) -> None:
    async with Worker(client, task_queue=QUEUE, workflows=[Gate]):
        h = await client.start_workflow(Gate, id="gate", task_queue=QUEUE)
        accepted = WorkflowUpdateStage.ACCEPTED
        # the handler waits for a signal sent after start_update returns
        upd = await h.start_update(Gate.enter, args=["a", 1], id="enter-1", wait_for_stage=accepted)
        unlucky = await h.start_update(Gate.enter, "b", 13, wait_for_stage=accepted)
        assert upd.id == "enter-1" and upd.workflow_id == "gate"
        with pytest.raises(UpdateRejectedError):
            await h.start_update(Gate.enter, args=["c", -1], wait_for_stage=accepted)
        await h.signal(Gate.unlock)
        assert await upd.result() == "a1"
        with pytest.raises(UpdateFailedError):
            await unlucky.result()
        done = await h.start_update(
            "enter", "d", 2, wait_for_stage=WorkflowUpdateStage.COMPLETED, result_type=str
        )
        assert await done.result() == "d2"
        with pytest.raises(InvalidArgumentError, match="ACCEPTED"):
            await h.start_update(Gate.enter, "e", 3, wait_for_stage=WorkflowUpdateStage.ADMITTED)
        await h.signal(Gate.finish)
        await h.result(timeout=30)
