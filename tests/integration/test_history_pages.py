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
