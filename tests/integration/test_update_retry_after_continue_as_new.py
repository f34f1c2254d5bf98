"""An update whose answer is lost, retried after its run continued as new.

The SDK retries a call whose connection broke (a server SIGKILLed after it
committed, a load balancer's reset). Updates are deduplicated per run, so a
retry sent to "the current run" after the run that took the update continued
as new ran the handler a second time, in the new run, and the caller got the
new run's answer. One call's retries stay on the run the call went to.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest

from tests.conftest import Region
from tests.helpers import free_port
from worker import Client, Worker, workflow
from worker._http import wf_path

pytestmark = pytest.mark.integration
QUEUE = "update-retry"


@workflow.defn
class Renews:
    """Its first run continues as new once an update was applied."""

    def __init__(self) -> None:
        self.applied = 0

    @workflow.run
    async def run(self, generation: int) -> None:
        if generation == 0:
            await workflow.wait_condition(
                lambda: self.applied > 0 and workflow.all_handlers_finished()
            )
            workflow.continue_as_new(1)
        await workflow.wait_condition(lambda: False)

    @workflow.update
    def bump(self) -> str:
        self.applied += 1
        return f"{workflow.info().run_id}/{self.applied}"

    @workflow.query
    def applied_here(self) -> int:
        return self.applied

    @workflow.update
    async def slow(self) -> str:
        await workflow.sleep(30)
        return "slept"


@contextlib.asynccontextmanager
async def losing_first_update_answer(
    upstream_port: int, before_closing: Callable[[], Awaitable[None]]
) -> AsyncIterator[str]:
    """A TCP proxy to the server that passes everything through, except that
    the answer to the first update is dropped (its connection closed once
    ``before_closing`` returns), as a server killed after its commit would."""
    dropped = False
    tasks: set[asyncio.Task[None]] = set()
    writers: list[asyncio.StreamWriter] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal dropped
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", upstream_port)
        writers.extend((writer, up_writer))
        drop_next = asyncio.Event()

        async def to_server() -> None:
            nonlocal dropped
            while data := await reader.read(65536):
                if not dropped and b"POST " in data and b"/update " in data:
                    dropped = True
                    drop_next.set()
                up_writer.write(data)
                await up_writer.drain()
            up_writer.close()

        async def to_client() -> None:
            while data := await up_reader.read(65536):
                if drop_next.is_set():
                    await before_closing()
                    break
                writer.write(data)
                await writer.drain()
            writer.close()
            up_writer.close()

        await asyncio.gather(to_server(), to_client(), return_exceptions=True)

    server = await asyncio.start_server(
        lambda r, w: _track(tasks, handle(r, w)), "127.0.0.1", free_port()
    )
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.close()
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for w in writers:
            w.close()
            with contextlib.suppress(OSError):
                await w.wait_closed()
        await server.wait_closed()


def _track(tasks: set[asyncio.Task[None]], coro: Awaitable[None]) -> None:
    task = asyncio.ensure_future(coro)
    tasks.add(task)
    task.add_done_callback(tasks.discard)


async def test_a_retried_update_is_answered_by_the_run_that_took_it(
    region: Region, client: Client
) -> None:
    async with Worker(client, task_queue=QUEUE, workflows=[Renews]):
        handle = await client.start_workflow(Renews, 0, id="upd-lost", task_queue=QUEUE)
        first_run = handle.run_id

        async def continued() -> None:
            current = client.get_workflow_handle("upd-lost")
            for _ in range(200):
                if (await current.describe()).run_id != first_run:
                    return
                await asyncio.sleep(0.05)
            raise AssertionError("the first run never continued as new")

        port = int(region.url.rsplit(":", 1)[1])
        async with (
            losing_first_update_answer(port, continued) as url,
            await Client.connect(url, namespace="default") as through_proxy,
        ):
            got = await through_proxy.get_workflow_handle("upd-lost").update(
                "bump", update_id="u1", timeout=30
            )
        # the first run's answer; the new run never ran the handler
        assert got == f"{first_run}/1"
        assert await client.get_workflow_handle("upd-lost").query("applied_here") == 0
        await handle.terminate("done")


async def test_an_update_timed_out_names_the_run_to_ask_again(
    region: Region, client: Client
) -> None:
    """Over HTTP, the timeout that says "call again with the same update_id"
    names the run: without it the call goes to the current run, which after a
    continue-as-new takes the id as a new update."""
    async with Worker(client, task_queue=QUEUE, workflows=[Renews]):
        handle = await client.start_workflow(Renews, 0, id="upd-slow", task_queue=QUEUE)
        async with httpx.AsyncClient(base_url=region.url) as http:
            r = await http.post(
                wf_path("default", "upd-slow", "/update"),
                json={"update_id": "s1", "name": "slow", "timeout_s": 1},
                timeout=30,
            )
        assert r.status_code == 504, r.text
        error = r.json()["error"]
        assert error["code"] == "UPDATE_TIMED_OUT"
        assert error["details"]["run_id"] == handle.run_id
        assert handle.run_id in error["message"]
        await handle.terminate("done")
