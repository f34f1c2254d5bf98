"""Operations on running and closed workflows as a user sees them: describe,
pause requests, search attribute upserts and typed results."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import Any

import pytest

from tests.conftest import Region
from tests.helpers import baton_json, eventually
from worker import ApplicationError, Client, Worker, workflow
from worker.errors import (
    InvalidArgumentError,
    PayloadTypeError,
    QueryFailedError,
    TerminatedError,
    WorkflowFailureError,
    WorkflowNotRunningError,
)

pytestmark = pytest.mark.integration
QUEUE = "run-operations"


@workflow.defn
class FailsForGood:
    @workflow.run
    async def run(self) -> None:
        raise ApplicationError("card declined", type="CardDeclined", non_retryable=True)


@workflow.defn
class Wedged:
    """A bug: every workflow task fails, so the run waits for a fix."""

    @workflow.run
    async def run(self) -> None:
        raise RuntimeError("cannot parse the reply")


@workflow.defn
class Totals:
    """Returns a dict; its query and update answer one too."""

    @workflow.run
    async def run(self) -> dict[str, int]:
        return {"a": 1}

    @workflow.query
    def totals(self) -> dict[str, int]:
        return {"a": 1}

    @workflow.query
    def doubled(self, x: int) -> int:
        return x * 2


@workflow.defn
class WaitsOnCharge:
    """Schedules an activity on a queue no worker polls: it stays pending."""

    @workflow.run
    async def run(self) -> str:
        return await workflow.execute_activity(
            "charge",
            activity_id="charge",
            task_queue="no-worker-polls-this",
            start_to_close_timeout=timedelta(seconds=10),
        )


@workflow.defn
class Untags:
    """Clears its tags and its stage by upserting empty lists."""

    @workflow.run
    async def run(self) -> dict[str, Any]:
        workflow.upsert_search_attributes({"Tags": [], "Stage": []})
        return workflow.search_attributes()


async def test_describe_shows_why_a_run_failed_and_why_its_workflow_task_fails(
    client: Client, region: Region
) -> None:
    async with Worker(client, task_queue=QUEUE, workflows=[FailsForGood, Wedged]):
        failed = await client.start_workflow(FailsForGood, id="declined", task_queue=QUEUE)
        with pytest.raises(Exception, match="card declined"):
            await failed.result()
        wedged = await client.start_workflow(Wedged, id="wedged", task_queue=QUEUE)

        async def retried() -> bool:
            wt = (await wedged.describe())["pending_workflow_task"]
            return wt is not None and wt["attempt"] > 1

        await eventually(retried, timeout=20, what="the wedged run's task failed")
        d = await failed.describe()
        assert d["failure"]["message"] == "card declined"
        assert d["failure"]["type"] == "CardDeclined"
        wt = (await wedged.describe())["pending_workflow_task"]
        assert wt["last_failure"]["type"] == "RuntimeError"
        assert "cannot parse the reply" in wt["last_failure"]["message"]
        # the failure keeps its shape (its own cause is a failure); the task's cause is beside it
        assert wt["last_failure"]["cause"] is None
        assert wt["last_failure_cause"] == "WorkflowTaskFailed"
        events = {e["event_id"]: e["event_type"] for e in await wedged.history()}
        assert events[wt["last_failure_event_id"]] == "WorkflowTaskFailed"
        # a running run has no failure of its own; its task's failure is its task's
        assert (await wedged.describe())["failure"] is None

        code, out, err = await baton_json(region.config_path, "workflow", "describe", "declined")
        assert code == 0, err
        assert out["failure"]["message"] == "card declined"
        code, out, err = await baton_json(region.config_path, "workflow", "describe", "wedged")
        assert code == 0, err
        assert "cannot parse the reply" in out["pending_workflow_task"]["last_failure"]["message"]
        await wedged.terminate("done looking")
    d = await wedged.describe()
    assert d["failure"]["message"] == "done looking"


async def test_a_pause_that_found_the_run_paused_does_nothing_when_retried_later(
    client: Client,
) -> None:
    """A second operator's pause of a paused run changed nothing; its retry,
    after the first operator unpaused, must not pause the run again (nor an
    unpause of a running run, retried after a pause, unpause it)."""
    h = await client.start_workflow("ByHand", id="two-operators", task_queue=QUEUE)
    assert (await h.pause("incident", request_id="p-first"))["changed"]
    second = await h.pause("incident too", request_id="p-second")
    assert second["paused"] and not second["changed"]
    assert (await h.unpause("fixed", request_id="u-first"))["changed"]
    again = await h.pause("incident too", request_id="p-second")
    assert not again["changed"] and not again["paused"]
    assert not (await h.describe())["execution"]["paused"]

    stray = await h.unpause("nothing to do", request_id="u-stray")
    assert not stray["changed"] and not stray["paused"]
    assert (await h.pause("another incident", request_id="p-third"))["changed"]
    retried = await h.unpause("nothing to do", request_id="u-stray")
    assert not retried["changed"] and retried["paused"]
    kinds = [e["event_type"] for e in await h.history()]
    assert kinds.count("WorkflowExecutionPaused") == 2
    assert kinds.count("WorkflowExecutionUnpaused") == 1


async def test_an_upsert_of_an_empty_list_unsets_the_attribute(client: Client) -> None:
    """As Temporal's upsert of an empty list does: the attribute is gone from
    describe, from the workflow's own view and from the list's."""
    await client.add_search_attribute("Tags", "KeywordList")
    await client.add_search_attribute("Stage", "Keyword")
    async with Worker(client, task_queue=QUEUE, workflows=[Untags]):
        h = await client.start_workflow(
            Untags,
            id="untagged",
            task_queue=QUEUE,
            search_attributes={"Tags": ["eu", "vip"], "Stage": "new"},
        )
        assert await h.result(timeout=30) == {}
    assert (await h.describe())["execution"]["search_attributes"] == {}
    listed = [e async for e in client.list_workflows("Tags IS NULL AND Stage IS NULL")]
    assert [e.workflow_id for e in listed] == ["untagged"]
    assert listed[0].search_attributes == {}


@dataclasses.dataclass
class Point:
    x: int
    y: int


async def test_a_result_asked_for_as_another_type_raises_a_typed_error(client: Client) -> None:
    """A dict asked for as an int came back as the dict, to trip the caller up later."""
    async with Worker(client, task_queue=QUEUE, workflows=[Totals]):
        h = await client.start_workflow(Totals, id="totals", task_queue=QUEUE)
        assert await h.result() == {"a": 1}
        by_id = client.get_workflow_handle("totals")
        for hint in (int, str, list[int], Point, dict[str, str]):
            with pytest.raises(PayloadTypeError, match="type_hint") as caught:
                await by_id.result(type_hint=hint)
            # a TypeError, as Temporal's SDK raises, and an InvalidArgumentError of Baton's
            assert isinstance(caught.value, TypeError)
            assert isinstance(caught.value, InvalidArgumentError)
        assert await by_id.result(type_hint=dict[str, int]) == {"a": 1}
        assert await by_id.result(type_hint=dict) == {"a": 1}
        assert await by_id.result(type_hint=dict[str, int] | None) == {"a": 1}
        with pytest.raises(PayloadTypeError):
            await by_id.query("totals", type_hint=int)
        assert await by_id.query("totals", type_hint=dict[str, int]) == {"a": 1}


async def test_a_terminated_runs_result_raises_terminated_not_an_application_error(
    client: Client,
) -> None:
    """Terminated from outside, the run did not fail by its code: its result's
    cause is a TerminatedError, as Temporal's is, not an ApplicationError a
    caller would take for the workflow's own failure."""
    h = await client.start_workflow("ByHand", id="ended", task_queue=QUEUE)
    await h.terminate("operator ended it")
    with pytest.raises(WorkflowFailureError) as caught:
        await h.result(timeout=10)
    assert caught.value.status == "terminated"
    cause = caught.value.__cause__
    assert isinstance(cause, TerminatedError) and not isinstance(cause, ApplicationError)
    assert cause.message == "operator ended it"


async def test_a_second_cancel_retried_after_the_run_closed_answers_as_it_did(
    client: Client,
) -> None:
    """A cancel of a run asked to cancel already succeeds and records nothing;
    its retry (its answer lost) after the run closed answered WORKFLOW_NOT_RUNNING."""
    h = await client.start_workflow("ByHand", id="cancel-twice", task_queue=QUEUE)
    await h.cancel("first", request_id="c-first")
    await h.cancel("second", request_id="c-second")
    await h.terminate("gone")
    await h.cancel("second", request_id="c-second")  # the retry: as it answered
    with pytest.raises(WorkflowNotRunningError):
        await h.cancel("third", request_id="c-third")
    kinds = [e["event_type"] for e in await h.history()]
    assert kinds.count("WorkflowExecutionCancelRequested") == 1


async def test_an_activity_pause_that_found_it_paused_does_nothing_when_retried_later(
    client: Client,
) -> None:
    async with Worker(client, task_queue=QUEUE, workflows=[WaitsOnCharge]):
        h = await client.start_workflow(WaitsOnCharge, id="charging", task_queue=QUEUE)

        async def scheduled() -> bool:
            return bool((await h.describe())["pending_activities"])

        await eventually(scheduled, timeout=20, what="the activity was scheduled")
    assert (await h.pause_activity("charge", request_id="a-first"))["changed"]
    second = await h.pause_activity("charge", request_id="a-second")
    assert second["paused"] and not second["changed"]
    assert (await h.unpause_activity("charge", request_id="a-unpause"))["changed"]
    again = await h.pause_activity("charge", request_id="a-second")
    assert not again["changed"] and not again["paused"]
    assert not (await h.describe())["pending_activities"][0]["paused"]


async def test_a_query_whose_argument_is_not_of_its_kind_fails_naming_it(client: Client) -> None:
    """A string for an ``int`` reached the handler, which answered "33" for 3
    doubled; an update's and a signal's arguments are checked so already."""
    async with Worker(client, task_queue=QUEUE, workflows=[Totals]):
        h = await client.start_workflow(Totals, id="doubling", task_queue=QUEUE)
        assert await h.query("doubled", 3) == 6
        with pytest.raises(QueryFailedError, match="argument 1 should be int, got str"):
            await h.query("doubled", "3")
