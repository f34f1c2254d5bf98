"""A long-poll whose client went away is never handed a task.

A worker that dies leaves its long-polls asleep in the server; asleep, a poll
is offered to starts (sync match). The server watches each poll's connection
and ends the poll when its client goes away, so a start after that writes a
task row for a live worker instead of starting its first workflow task for
nobody (which would wait for the task's timeout)."""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

import orjson
import pytest

from tests.apps.workflows import ALL_ACTIVITIES, ThreeSteps
from worker import Client, Worker
from worker._http import ns_path

pytestmark = pytest.mark.integration
QUEUE = "gone-pollers"


async def ghost_polls(client: Client, kind: str, n: int) -> None:
    """``n`` long-polls of ``QUEUE`` sent on raw connections, then the connections closed."""
    url = urlsplit(client.transport.active_endpoint)
    body = orjson.dumps({"task_queue": QUEUE, "identity": "ghost", "wait_s": 30})
    path = ns_path(client.namespace, f"/{kind}-tasks/poll")
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {url.netloc}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\n\r\n"
    ).encode()
    writers = []
    for _ in range(n):
        _, writer = await asyncio.open_connection(url.hostname, url.port)
        writer.write(head + body)
        await writer.drain()
        writers.append(writer)
    await asyncio.sleep(0.5)  # the polls are asleep in the server now
    for writer in writers:
        writer.close()
        await writer.wait_closed()
    await asyncio.sleep(0.3)


async def test_a_start_does_not_hand_its_task_to_a_poll_whose_client_left(
    client: Client,
) -> None:
    await ghost_polls(client, "workflow", 4)
    handles = [
        await client.start_workflow(ThreeSteps, i, id=f"after-ghosts-{i}", task_queue=QUEUE)
        for i in range(4)
    ]
    async with Worker(client, task_queue=QUEUE, workflows=[ThreeSteps], activities=ALL_ACTIVITIES):
        results = await asyncio.gather(*(h.result(timeout=60) for h in handles))
    assert results == [3, 4, 5, 6]
    for h in handles:
        events = await h.history()
        kinds = [e["event_type"] for e in events]
        assert "WorkflowTaskTimedOut" not in kinds, kinds
        identities = {
            e["attributes"].get("identity")
            for e in events
            if e["event_type"] == "WorkflowTaskStarted"
        }
        assert "ghost" not in identities, identities
