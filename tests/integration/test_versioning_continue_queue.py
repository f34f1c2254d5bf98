"""A continue-as-new onto a task queue the run's build does not poll.

A run an operator had pinned to a build carried the override into the new
run whatever its task queue, so a continue-as-new onto a queue that build
does not poll waited there for ever: no override could move it (none other
polls the queue either), and the queue's own workers never saw it. As in
Temporal, a pin or an override carries over only to a task queue of its
build; otherwise the new run routes as a new run of that queue does. One
that then waits for a build that does not poll its queue says so, and an
override moves it.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.helpers import eventually
from worker import Client, Worker, workflow
from worker.errors import DeploymentNotFoundError

pytestmark = pytest.mark.integration


@workflow.defn(name="Hop", versioning_behavior="pinned")
class Hop:
    """Waits for ``hop``, then continues as new onto the ``other`` queue."""

    def __init__(self) -> None:
        self.go = False

    @workflow.run
    async def run(self, generation: int) -> str:
        if generation > 0:
            return f"generation {generation} on {workflow.info().task_queue}"
        await workflow.wait_condition(lambda: self.go)
        workflow.continue_as_new(1, task_queue="other")

    @workflow.signal
    def hop(self) -> None:
        self.go = True


def hop_worker(client: Client, queue: str, build: str | None) -> Worker:
    return Worker(
        client,
        task_queue=queue,
        workflows=[Hop],
        deployment=None if build is None else ("hops", build),
    )


async def builds_known(client: Client, *builds: str) -> None:
    async def there() -> bool:
        try:
            d = await client.describe_deployment("hops")
        except DeploymentNotFoundError:
            return False
        return {v["build_id"] for v in d["versions"]} >= set(builds)

    await eventually(there, timeout=20, what=f"builds {builds} of hops")


async def versions_ran(client: Client, wid: str) -> list[str | None]:
    events = await client.get_workflow_handle(wid).history()
    return [
        e["attributes"].get("worker_version")
        for e in events
        if e["event_type"] == "WorkflowTaskCompleted"
    ]


async def test_an_overridden_run_continued_onto_a_queue_its_build_does_not_poll_runs_there(
    client: Client,
) -> None:
    async with (
        hop_worker(client, "main", "1"),
        hop_worker(client, "main", "2"),
        hop_worker(client, "other", None),
    ):
        await builds_known(client, "1", "2")
        await client.set_current_version("hops", "2")
        h = await client.start_workflow("Hop", 0, id="hop-held", task_queue="main")

        async def pinned() -> bool:
            return (await h.describe())["execution"]["build_id"] == "2"

        await eventually(pinned, timeout=20, what="the run pinned on build 2")
        await h.update_versioning("pinned", version="hops:1", reason="hold on blue")
        await h.signal("hop")
        # the new run goes to the queue's own (unversioned) worker
        assert await h.result(timeout=20) == "generation 1 on other"
    d: dict[str, Any] = await h.describe()
    assert d["execution"]["task_queue"] == "other"
    assert d["versioning"] is None or d["versioning"]["override"] is None
    assert await versions_ran(client, "hop-held") == [None]
    dep = await client.describe_deployment("hops")
    assert {v["build_id"]: v["open_pinned"] for v in dep["versions"]} == {"1": 0, "2": 0}


async def test_a_continued_run_waiting_for_a_build_off_its_queue_says_so_and_an_override_moves_it(
    client: Client,
) -> None:
    # build 2 brings the "other" queue; build 1 is still current and never polls it
    async with (
        hop_worker(client, "main", "1"),
        hop_worker(client, "main", "2"),
        hop_worker(client, "other", "2"),
    ):
        await builds_known(client, "1", "2")
        await client.set_current_version("hops", "1")
        h = await client.start_workflow("Hop", 0, id="hop-off", task_queue="main")
        await h.signal("hop")

        async def waits() -> dict[str, Any] | None:
            d = await h.describe()
            v = d["versioning"]
            if d["execution"]["task_queue"] != "other" or not (v and v["waiting_for_poller"]):
                return None
            return v

        view = await eventually(waits, timeout=20, what="the new run says what it waits for")
        assert view["next_task_version"] == "hops:1" and "'other'" in view["note"]
        dep = await client.describe_deployment("hops")
        # build 1 has live workers (on "main"), none on the run's queue
        assert {v["build_id"]: v["waiting_no_poller"] for v in dep["versions"]} == {
            "1": 1,
            "2": 0,
        }
        await h.update_versioning("pinned", version="hops:2", reason="onto the build of 'other'")
        assert await h.result(timeout=20) == "generation 1 on other"
    assert await versions_ran(client, "hop-off") == ["hops:2"]
