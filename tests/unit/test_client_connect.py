"""``Client.connect`` asks its endpoints whether a server answers, and fails at
once, naming them, when none does: it returned at once to a URL where nothing
listened, and the first call then retried for a minute before saying so."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Iterator

import pytest

from tests.helpers import free_port
from worker import Client
from worker.errors import UnavailableError

HEALTHY = b'{"ok":true,"region":"a"}'
DB_DOWN = b'{"error":{"code":"UNAVAILABLE","message":"database down","retryable":true}}'


async def answering(
    port: int, status: str = "200 OK", body: bytes = HEALTHY
) -> asyncio.AbstractServer:
    """A loopback server on ``port`` that answers every request the same."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(
            f"HTTP/1.1 {status}\r\nconnection: close\r\ncontent-length: {len(body)}\r\n"
            "content-type: application/json\r\n\r\n".encode()
            + body
        )
        await writer.drain()
        writer.close()

    return await asyncio.start_server(answer, "127.0.0.1", port)


@pytest.fixture
async def live_url() -> AsyncIterator[str]:
    port = free_port()
    server = await answering(port)
    yield f"http://127.0.0.1:{port}"
    server.close()
    await server.wait_closed()


@pytest.fixture
def silent_url() -> Iterator[str]:
    """A loopback port whose backlog completes connections nobody ever reads."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


async def test_connect_to_a_closed_port_fails_within_its_retry_budget_naming_it() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    began = time.monotonic()
    with pytest.raises(UnavailableError) as caught:
        await Client.connect([url], namespace="default", retry_for_s=2)
    assert time.monotonic() - began < 5
    assert url in caught.value.message and "lazy=True" in caught.value.message
    assert caught.value.details["endpoints"] == [url]


async def test_connect_gives_up_after_15_s_by_default_not_a_minute() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    began = time.monotonic()
    with pytest.raises(UnavailableError, match="within 15 s"):
        await Client.connect(url)
    assert 14 < time.monotonic() - began < 20


async def test_every_endpoint_tried_is_named() -> None:
    urls = [f"http://127.0.0.1:{free_port()}" for _ in range(2)]
    with pytest.raises(UnavailableError) as caught:
        await Client.connect(urls, retry_for_s=0)
    assert all(u in caught.value.message for u in urls), caught.value.message
    assert caught.value.details["endpoints"] == urls


async def test_one_dead_and_one_live_endpoint_connect(live_url: str) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    began = time.monotonic()
    async with await Client.connect([dead, live_url], retry_for_s=2) as client:
        assert client.transport.endpoints == [dead, live_url]
    assert time.monotonic() - began < 1


async def test_a_silent_endpoint_does_not_hold_up_a_live_one(
    silent_url: str, live_url: str
) -> None:
    began = time.monotonic()
    async with await Client.connect([silent_url, live_url], retry_for_s=2):
        pass
    assert time.monotonic() - began < 1


async def test_a_silent_endpoint_alone_fails_after_the_request_timeout(silent_url: str) -> None:
    began = time.monotonic()
    with pytest.raises(UnavailableError, match="did not answer within 1 s"):
        await Client.connect(silent_url, retry_for_s=1, request_timeout_s=1)
    assert time.monotonic() - began < 4


async def test_a_server_that_comes_up_within_the_window_is_waited_for() -> None:
    port = free_port()

    async def start_late() -> asyncio.AbstractServer:
        await asyncio.sleep(1.0)
        return await answering(port)

    late = asyncio.create_task(start_late())
    async with await Client.connect(f"http://127.0.0.1:{port}", retry_for_s=10):
        pass
    server = await late
    server.close()
    await server.wait_closed()


async def test_a_server_whose_database_is_down_still_answers() -> None:
    """Its calls retry it (or another region) as before; connect is about reaching it."""
    port = free_port()
    server = await answering(port, "503 Service Unavailable", DB_DOWN)
    try:
        async with await Client.connect(f"http://127.0.0.1:{port}", retry_for_s=1):
            pass
    finally:
        server.close()
        await server.wait_closed()


async def test_a_gateway_answering_for_a_server_that_is_down_is_no_answer() -> None:
    port = free_port()
    server = await answering(port, "502 Bad Gateway", b"<html>bad gateway</html>")
    try:
        with pytest.raises(UnavailableError, match="answered 502"):
            await Client.connect(f"http://127.0.0.1:{port}", retry_for_s=0)
    finally:
        server.close()
        await server.wait_closed()


async def test_lazy_connects_without_asking() -> None:
    began = time.monotonic()
    async with await Client.connect(f"http://127.0.0.1:{free_port()}", lazy=True):
        pass
    assert time.monotonic() - began < 1
