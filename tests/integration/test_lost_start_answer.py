"""A start (or a reset) whose answer is lost (its server killed after the
commit) and which the client sends again is reported as started (reset) by
the CLI or SDK call that sent it.

The CLI draws the request id of a start it was not given one for; the retry
finds that id, so the run it names is the one this command started, not one
someone else started before. A proxy between the CLI and the server drops
the connection of the first start after the server answered it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.conftest import Region
from tests.helpers import baton_json, free_port, write_config
from worker import Client

pytestmark = pytest.mark.integration


@contextlib.asynccontextmanager
async def answer_dropping_proxy(upstream_port: int, marker: bytes) -> AsyncIterator[int]:
    """A loopback proxy that closes the connection of the first request whose
    bytes hold ``marker`` once the server answers it, without passing the
    answer on (as a server killed right after its commit would)."""
    dropped = False

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal dropped
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", upstream_port)
        drop_next_answer = False

        async def to_server() -> None:
            nonlocal drop_next_answer
            while data := await reader.read(65536):
                if not dropped and marker in data:
                    drop_next_answer = True
                up_writer.write(data)
                await up_writer.drain()

        async def to_client() -> None:
            nonlocal dropped
            while data := await up_reader.read(65536):
                if drop_next_answer and not dropped:
                    dropped = True
                    writer.transport.abort()
                    return
                writer.write(data)
                await writer.drain()

        pumps = [asyncio.create_task(to_server()), asyncio.create_task(to_client())]
        with contextlib.suppress(Exception):
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        for p in pumps:
            p.cancel()
        writer.transport.abort()
        up_writer.transport.abort()

    server = await asyncio.start_server(serve, "127.0.0.1", free_port())
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()


def proxied_config(region: Region, port: int, tmp_path: Path) -> Path:
    return write_config(tmp_path / "proxied.toml", {"region-a": (port, region.dsn)})


@pytest.mark.parametrize(
    ("command", "route", "extra"),
    [
        ("start", b"/workflows ", ()),
        ("signal-with-start", b"/signal-with-start ", ("--signal", "go")),
    ],
)
async def test_a_start_sent_again_after_its_answer_was_lost_says_it_started(
    client: Client,
    region: Region,
    tmp_path: Path,
    command: str,
    route: bytes,
    extra: tuple[str, ...],
) -> None:
    port = int(str(region.url).rsplit(":", 1)[1])
    async with answer_dropping_proxy(port, b"POST /api/v1/namespaces/default" + route) as proxy:
        cfg = proxied_config(region, proxy, tmp_path)
        wid = f"lost-answer-{command}"
        rc, out, err = await baton_json(
            cfg, "workflow", command, "--type", "T", "-q", "q", "--id", wid, *extra
        )
    assert rc == 0, (out, err)
    assert out["started"] is True, out
    events = await client.get_workflow_handle(wid).history()
    assert [e["event_type"] for e in events].count("WorkflowExecutionStarted") == 1
    assert events[0]["attributes"]["request_id"] == out["request_id"]


async def test_a_start_given_a_request_id_an_earlier_start_used_still_says_not_started(
    client: Client, region: Region
) -> None:
    """The id a caller gives may be an earlier command's: that start is not this one's."""
    args = ("workflow", "start", "--type", "T", "-q", "q", "--id", "given-id")
    rc, first, err = await baton_json(region.config_path, *args, "--request-id", "r-1")
    assert rc == 0 and first["started"] is True, (first, err)
    rc, again, err = await baton_json(region.config_path, *args, "--request-id", "r-1")
    assert rc == 0 and again["started"] is False, (again, err)
    assert again["run_id"] == first["run_id"]


async def test_a_reset_sent_again_after_its_answer_was_lost_says_it_reset(
    client: Client, region: Region
) -> None:
    """The SDK draws a reset's request id: the reset its retry finds is its own."""
    from tests.apps.workflows import Counter
    from tests.integration.test_schedule_requests import LosesAReply
    from worker import Worker

    async with Worker(client, task_queue="lost-reset", workflows=[Counter]):
        h = await client.start_workflow(Counter, id="lost-reset", task_queue="lost-reset")
        assert await h.update(Counter.add, 1) == 1  # a workflow task completed
    relay = LosesAReply(region.url)
    async with relay.serving() as url:
        c = await Client.connect(url, namespace="default")
        try:
            relay.lose_reply_of("POST", "/api/v1/namespaces/default/workflows/lost-reset/reset ")
            res = await c.get_workflow_handle("lost-reset").reset_details(
                reason="lost answer", to="first-workflow-task"
            )
            assert relay.dropped, "the reply was not dropped"
            assert res["reset"] is True, res
        finally:
            await c.close()
    old = client.get_workflow_handle("lost-reset", run_id=res["reset_from_run_id"])
    kinds = [e["event_type"] for e in await old.history()]
    assert kinds[-1] == "WorkflowExecutionTerminated" and kinds.count(kinds[-1]) == 1


async def test_a_batch_start_sent_again_after_its_answer_was_lost_says_it_started(
    client: Client, region: Region
) -> None:
    """Without a job id the job's id comes from the request id the SDK drew."""
    from tests.integration.test_schedule_requests import LosesAReply

    relay = LosesAReply(region.url)
    async with relay.serving() as url:
        c = await Client.connect(url, namespace="default")
        try:
            relay.lose_reply_of("POST", "/api/v1/namespaces/default/batches ")
            res = await c.start_batch("WorkflowType = 'None'", "terminate", reason="lost answer")
            assert relay.dropped, "the reply was not dropped"
            assert res["started"] is True, res
        finally:
            await c.close()
