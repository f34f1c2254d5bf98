"""A worker with an empty cache replays a long history page by page.

Pages are made tiny here (4 events) so a short run spans many of them: the
query and the workflow task of a run no worker holds must read every page,
in order, and restore the text of a failure that the codec hid inside one.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest

import worker._history_pages as history_pages
from tests.conftest import Region
from tests.helpers import eventually
from worker import AesGcmCodec, Client, DataConverter, Worker, activity, workflow
from worker._failure import ENCODED_FAILURE_MESSAGE
from worker._http import wf_path
from worker.codec import generate_key
from worker.errors import ActivityError, ApplicationError

pytestmark = pytest.mark.integration

QUEUE = "paged"
SIGNALS = 25


@activity.defn(name="refuse")
async def refuse(x: int) -> int:
    raise ApplicationError(f"refused {x}", non_retryable=True)


@workflow.defn(name="Paged")
class Paged:
    def __init__(self) -> None:
        self.total = 0
        self.errors: list[str] = []
        self.done = False

    @workflow.run
    async def run(self) -> dict[str, Any]:
        try:
            await workflow.execute_activity(refuse, 7, start_to_close_timeout=timedelta(seconds=10))
        except ActivityError as exc:
            self.errors.append(str(exc.__cause__))
        await workflow.wait_condition(lambda: self.done)
        return self.state()

    @workflow.signal
    def add(self, n: int) -> None:
        self.total += n

    @workflow.signal
    def finish(self) -> None:
        self.done = True

    @workflow.query
    def state(self) -> dict[str, Any]:
        return {"total": self.total, "errors": self.errors}


async def test_an_empty_cache_replays_a_history_of_many_pages(
    region: Region, monkeypatch: pytest.MonkeyPatch
) -> None:
    codec = AesGcmCodec(keys={"k1": generate_key()}, active_key_id="k1")
    async with await Client.connect(
        region.url, data_converter=DataConverter(codec=codec)
    ) as client:
        await client.create_namespace("default")
        wf_id = f"paged-{uuid.uuid4().hex[:6]}"
        async with Worker(client, task_queue=QUEUE, workflows=[Paged], activities=[refuse]):
            handle = await client.start_workflow(Paged, id=wf_id, task_queue=QUEUE)
            for n in range(1, SIGNALS + 1):
                await handle.signal("add", n)
            expected = {"total": SIGNALS * (SIGNALS + 1) // 2, "errors": ["refused 7"]}
            await eventually(lambda: _answers(handle, expected))
        # as stored (not decoded): many pages of 4, and the failure's text hidden
        stored = (await client.call("GET", wf_path("default", wf_id, "/history")))["events"]
        assert len(stored) > 10 * 4
        failed = [e for e in stored if e["event_type"] == "ActivityTaskFailed"]
        assert failed[0]["attributes"]["failure"]["message"] == ENCODED_FAILURE_MESSAGE

        monkeypatch.setattr(history_pages, "PAGE_EVENTS", 4)
        pages: list[int] = []  # the page size of each history request
        call = client.transport.call

        async def counting(method: str, path: str, body: Any = None, **kw: Any) -> Any:
            if path.endswith("/history"):
                pages.append(kw["params"]["page_size"])
            return await call(method, path, body, **kw)

        monkeypatch.setattr(client.transport, "call", counting)
        # A new worker: nothing cached. The query replays every page.
        async with Worker(client, task_queue=QUEUE, workflows=[Paged], activities=[refuse]) as w:
            assert await handle.query("state") == expected
            assert pages[0] == 1 and set(pages[1:]) == {4} and len(pages) > 10
            # The next workflow task, too, is served by a replay through the pages.
            await handle.signal("finish")
            assert await handle.result(timeout=30) == expected
            assert w.cache_stats()["misses"] >= 1


async def _answers(handle: Any, expected: dict[str, Any]) -> bool:
    return bool(await handle.query("state") == expected)


@workflow.defn(name="Rolls")
class Rolls:
    def __init__(self) -> None:
        self.rolled = False

    @workflow.run
    async def run(self, gen: int) -> int:
        await workflow.wait_condition(lambda: self.rolled)
        workflow.continue_as_new(gen + 1)

    @workflow.signal
    def roll(self) -> None:
        self.rolled = True


async def test_a_history_read_by_id_stays_on_one_run_when_the_workflow_continues_between_pages(
    client: Client,
) -> None:
    async with Worker(client, task_queue=QUEUE, workflows=[Rolls]):
        first = await client.start_workflow(Rolls, 0, id="rolls", task_queue=QUEUE)
        await first.signal("roll")  # a second run, waiting for its own signal
        second = await eventually(lambda: _current_run(client), what="the second run")
        by_id = client.get_workflow_handle("rolls")
        whole = await by_id.history()
        assert whole[0]["attributes"]["continued_from_run_id"] == first.run_id
        pages = 0
        call = client.call

        async def rolls_after_the_first_page(*args: Any, **kw: Any) -> Any:
            nonlocal pages
            res = await call(*args, **kw)
            if str(args[1]).endswith("/history"):
                pages += 1
                if pages == 1:  # the workflow continues as new between two pages
                    await by_id.signal("roll")
                    await eventually(
                        lambda: _current_run(client, not_=second), what="the third run"
                    )
            return res

        client.call = rolls_after_the_first_page  # type: ignore[method-assign]
        try:
            paged = await by_id.history(page_size=2)
        finally:
            client.call = call  # type: ignore[method-assign]
        assert pages > 2
        # the second run's events, whole and once: none of the third run's
        assert [e["event_id"] for e in paged] == list(range(1, len(paged) + 1))
        assert paged[: len(whole)] == whole
        assert paged[-1]["event_type"] == "WorkflowExecutionContinuedAsNew"


async def _current_run(client: Client, not_: str | None = None) -> str | None:
    d = (await client.get_workflow_handle("rolls").describe())["execution"]
    if d["run_id"] == not_ or d.get("continued_from_run_id") is None:
        return None
    return str(d["run_id"]) if d["status"] == "running" else None
