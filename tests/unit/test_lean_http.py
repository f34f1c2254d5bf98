"""The SDK's lean HTTP client (worker/_lean_http.py) against a real socket server
on loopback that answers the way a server or a network can: keep-alive,
chunked, ``Connection: close``, cut off mid-answer, malformed, never."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

import pytest

from worker import _lean_http as lean_http
from worker._http import Transport
from worker._lean_http import LeanHTTP, lean_target
from worker.errors import InvalidArgumentError, UnavailableError

Request = tuple[str, dict[str, str], bytes]
#: Given a request and the connection's writer: keep the connection open after it?
Handler = Callable[[Request, asyncio.StreamWriter], Awaitable[bool]]


def ok(body: bytes, extra: str = "") -> bytes:
    return (
        f"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\n{extra}\r\n"
    ).encode() + body


class RawServer:
    """An HTTP/1.1 server written against the socket, recording what it saw."""

    def __init__(self, handler: Handler):
        self.handler = handler
        self.accepted = 0
        self.ended = 0  # connections whose client side closed or was closed
        self.requests: list[Request] = []
        self.readers: dict[asyncio.StreamWriter, asyncio.StreamReader] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> RawServer:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self.accepted += 1
        self.readers[writer] = reader
        try:
            while True:
                line = await reader.readline()
                if not line:
                    break
                headers: dict[str, str] = {}
                while (h := await reader.readline()) not in (b"\r\n", b""):
                    name, _, value = h.decode().partition(":")
                    headers[name.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                req = (line.decode().strip(), headers, body)
                self.requests.append(req)
                if not await self.handler(req, writer):
                    break
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass  # (cancelled: the server is stopping)
        finally:
            self.ended += 1
            self._tasks.discard(task)
            writer.close()


def client(timeout_s: float = 5.0) -> LeanHTTP:
    return LeanHTTP(timeout_s=timeout_s, connect_timeout_s=2.0)


async def echo(req: Request, writer: asyncio.StreamWriter) -> bool:
    writer.write(ok(req[2] or req[0].encode()))
    return True


async def test_requests_reuse_one_keep_alive_connection() -> None:
    async with RawServer(echo) as srv:
        http = client()
        base = urlsplit(srv.url)
        for i in range(5):
            status, body = await http.request("POST", base, "/api/v1/x", b'{"n":%d}' % i, {})
            assert (status, body) == (200, b'{"n":%d}' % i)
        assert srv.accepted == 1
        line, headers, _ = srv.requests[0]
        assert line == "POST /api/v1/x HTTP/1.1"
        assert headers["host"] == f"127.0.0.1:{srv.port}"
        assert headers["content-type"] == "application/json"
        assert headers["content-length"] == "7"
        http.close()
        await asyncio.sleep(0.05)
        assert srv.ended == 1  # close() closed the idle connection


async def test_path_and_query_are_encoded_and_escapes_kept() -> None:
    async with RawServer(echo) as srv:
        http = client()
        base = urlsplit(srv.url + "/prefix/")
        _, body = await http.request(
            "GET", base, "/w/a b%2Fc/é", None, {"run_id": "r 1", "wait_s": "1.5"}
        )
        assert body == b"GET /prefix/w/a%20b%2Fc/%C3%A9?run_id=r+1&wait_s=1.5 HTTP/1.1"
        assert srv.requests[0][1]["content-length"] == "0"
        http.close()


async def test_a_chunked_answer_is_joined() -> None:
    async def chunked(req: Request, writer: asyncio.StreamWriter) -> bool:
        writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
        for part in (b'{"a":', b"1", b"}"):
            writer.write(b"%x\r\n%s\r\n" % (len(part), part))
            await writer.drain()
            await asyncio.sleep(0.01)
        writer.write(b"0\r\n\r\n")
        return True

    async with RawServer(chunked) as srv:
        http = client()
        assert await http.request("GET", urlsplit(srv.url), "/c", None, {}) == (200, b'{"a":1}')
        assert await http.request("GET", urlsplit(srv.url), "/c", None, {}) == (200, b'{"a":1}')
        assert srv.accepted == 1
        http.close()


async def test_connection_close_is_honoured() -> None:
    async def closing(req: Request, writer: asyncio.StreamWriter) -> bool:
        writer.write(ok(b"{}", "connection: close\r\n"))
        return False

    async with RawServer(closing) as srv:
        http = client()
        for _ in range(3):
            assert await http.request("GET", urlsplit(srv.url), "/", None, {}) == (200, b"{}")
        assert srv.accepted == 3
        http.close()


async def test_a_large_body_goes_whole() -> None:
    async with RawServer(echo) as srv:
        http = client()
        big = b'"' + b"x" * 300_000 + b'"'
        assert await http.request("POST", urlsplit(srv.url), "/", big, {}) == (200, big)
        http.close()


async def test_an_answer_cut_off_fails_and_the_next_request_gets_a_new_connection() -> None:
    calls = 0

    async def cut(req: Request, writer: asyncio.StreamWriter) -> bool:
        nonlocal calls
        calls += 1
        if calls == 1:
            writer.write(ok(b'{"long": "answer"}')[:-5])
            await writer.drain()
            return False
        writer.write(ok(b"{}"))
        return True

    async with RawServer(cut) as srv:
        http = client()
        with pytest.raises(ConnectionError):
            await http.request("GET", urlsplit(srv.url), "/", None, {})
        assert await http.request("GET", urlsplit(srv.url), "/", None, {}) == (200, b"{}")
        assert srv.accepted == 2
        http.close()


async def test_a_malformed_answer_fails_and_closes_the_connection() -> None:
    async def garbage(req: Request, writer: asyncio.StreamWriter) -> bool:
        writer.write(b"HTTP/1.1 abc nonsense\r\n\r\n")
        return True

    async with RawServer(garbage) as srv:
        http = client()
        with pytest.raises(ConnectionError, match="malformed"):
            await http.request("GET", urlsplit(srv.url), "/", None, {})
        await asyncio.sleep(0.05)
        assert srv.ended == 1
        http.close()


async def test_a_cancelled_request_never_hands_its_late_answer_to_the_next() -> None:
    release = asyncio.Event()

    async def slow_first(req: Request, writer: asyncio.StreamWriter) -> bool:
        if req[2] == b'"first"':
            await release.wait()
        writer.write(ok(req[2]))
        return True

    async with RawServer(slow_first) as srv:
        http = client()
        base = urlsplit(srv.url)
        first = asyncio.ensure_future(http.request("POST", base, "/", b'"first"', {}))
        await asyncio.sleep(0.05)
        first.cancel()
        with pytest.raises(asyncio.CancelledError):
            await first
        release.set()
        assert await http.request("POST", base, "/", b'"second"', {}) == (200, b'"second"')
        assert srv.accepted == 2
        http.close()


async def test_a_server_that_never_answers_times_out() -> None:
    async with RawServer(echo) as srv:

        async def never(req: Request, writer: asyncio.StreamWriter) -> bool:
            await srv.readers[writer].read()  # until the client goes away
            return False

        srv.handler = never
        http = client(timeout_s=0.3)
        with pytest.raises(TimeoutError):
            await http.request("GET", urlsplit(srv.url), "/", None, {})
        await asyncio.sleep(0.05)
        assert srv.ended == 1  # the connection was closed, not left to be reused
        http.close()


async def test_connections_left_idle_after_a_burst_are_closed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(lean_http, "IDLE_REUSE_S", 0.2)
    async with RawServer(echo) as srv:
        http = client()
        base = urlsplit(srv.url)
        await asyncio.gather(*(http.request("GET", base, "/", None, {}) for _ in range(40)))
        assert srv.accepted == 40
        # one request at a time from now on: one connection serves them all,
        # and the 39 left at the bottom of the idle stack go once stale
        until = asyncio.get_running_loop().time() + 0.35
        while asyncio.get_running_loop().time() < until:
            await http.request("GET", base, "/", None, {})
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)
        assert srv.accepted == 40
        assert srv.ended == 39
        http.close()


async def test_many_fresh_idle_connections_are_not_walked_on_every_request(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    walks = 0
    prune = LeanHTTP._prune

    def counted(idle: list[Any], now: float) -> None:
        nonlocal walks
        walks += 1
        prune(idle, now)

    monkeypatch.setattr(LeanHTTP, "_prune", staticmethod(counted))
    async with RawServer(echo) as srv:
        http = client()
        base = urlsplit(srv.url)
        await asyncio.gather(*(http.request("GET", base, "/", None, {}) for _ in range(40)))
        for _ in range(50):
            await http.request("GET", base, "/", None, {})
        # all 40 stay (fresh): one walk when the burst came back, none per request
        assert walks == 1
        assert srv.accepted == 40 and srv.ended == 0
        http.close()


def test_only_plain_http_urls_are_served() -> None:
    assert lean_target(urlsplit("http://127.0.0.1:7233"))
    assert lean_target(urlsplit("http://baton.internal/api-gw"))
    assert not lean_target(urlsplit("https://baton.internal"))
    assert not lean_target(urlsplit("http://user:secret@baton.internal"))
    assert not lean_target(urlsplit("http://bücher.example"))


async def test_transport_errors_stay_typed_through_the_lean_client() -> None:
    async def refuse(req: Request, writer: asyncio.StreamWriter) -> bool:
        body = b'{"error":{"code":"INVALID_ARGUMENT","message":"no","retryable":false}}'
        writer.write(ok(body).replace(b"200 OK", b"400 Bad Request"))
        return True

    async with RawServer(refuse) as srv:
        transport = Transport([srv.url], retry_for_s=0)
        with pytest.raises(InvalidArgumentError, match="no"):
            await transport.call("POST", "/api/v1/x", {"a": 1})
        await transport.close()
    # nobody listens there any more: a typed, retryable error
    transport = Transport([srv.url], retry_for_s=0)
    with pytest.raises(UnavailableError, match="cannot reach"):
        await transport.call("GET", "/api/v1/x")
    await transport.close()
