"""A lean HTTP/1.1 client for plain ``http://`` endpoints.

Workers spend most of their time in a handful of small JSON requests to one
server (polls, completions), and a general client's layers (middleware of
requests and responses, cookie jars, redirect handling, a timer per request)
were about a third of a worker's CPU. This client does only what Baton's
calls need: a pool of keep-alive connections per endpoint, one request at a
time on each, the answer parsed by ``httptools`` (the parser uvicorn uses).

Failures surface as :class:`OSError` or :class:`TimeoutError`, the errors the
transport already retries on. A connection is reused only after a complete
answer that keeps it alive; one cancelled or failed mid-request is closed, so
a late answer can never be read as the next request's. ``https`` endpoints and
endpoints with credentials in the URL use aiohttp instead (see
:mod:`worker._http`).
"""

from __future__ import annotations

import asyncio
import re
import time
from urllib.parse import SplitResult, quote, urlencode

import httptools

#: An idle connection older than this is closed instead of reused (servers
#: close idle keep-alive connections after a while: uvicorn after 75 s here).
IDLE_REUSE_S = 30.0
#: Idle connections to one endpoint past which closed and stale ones are dropped.
_PRUNE_PAST = 16
#: Characters of a path sent as they are (``%`` keeps escapes already made).
_PATH_SAFE = "/%:@!$&'()*+,;=-._~"
_PLAIN_PATH = re.compile(r"[A-Za-z0-9/%:@!$&'()*+,;=._~-]*")


def lean_target(parts: SplitResult) -> bool:
    """Whether an endpoint's URL is one this client serves."""
    return (
        parts.scheme == "http"
        and parts.hostname is not None
        and parts.netloc.isascii()
        and parts.username is None
        and not parts.query
        and not parts.fragment
    )


def connect_timed_out(limit_s: float) -> ConnectionError:
    """The error of a connection not made within ``limit_s``."""
    return ConnectionError(
        f"no connection within {limit_s:g} s: the host is down or unreachable, "
        "or a firewall drops the packets"
    )


class _Connection(asyncio.Protocol):
    """One keep-alive connection and the answer it is reading."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.answer: asyncio.Future[tuple[int, bytes, bool]] | None = None
        self.body: list[bytes] = []
        self.lost = False
        self.idle_since = 0.0

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(ConnectionError(f"server sent a malformed HTTP answer: {exc}"))
            self.close()

    def eof_received(self) -> bool:
        return False  # the transport closes itself; connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self._fail(ConnectionResetError(f"connection closed before the server's answer: {exc}"))

    # httptools callbacks
    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        answer = self.answer
        if answer is not None and not answer.done():
            status = self.parser.get_status_code()
            answer.set_result((status, b"".join(self.body), self.parser.should_keep_alive()))

    def _fail(self, exc: Exception) -> None:
        answer = self.answer
        if answer is not None and not answer.done():
            answer.set_exception(exc)

    def send(self, head: bytes, body: bytes | None) -> asyncio.Future[tuple[int, bytes, bool]]:
        assert self.transport is not None
        self.body = []
        self.answer = asyncio.get_running_loop().create_future()
        self.transport.write(head + body if body and len(body) < 65536 else head)
        if body and len(body) >= 65536:
            self.transport.write(body)
        return self.answer

    def close(self) -> None:
        self.lost = True
        if self.transport is not None:
            self.transport.close()


class LeanHTTP:
    """Keep-alive connections to plain-http endpoints, one request at a time each."""

    def __init__(self, *, timeout_s: float, connect_timeout_s: float):
        self.timeout_s = timeout_s
        self.connect_timeout_s = connect_timeout_s
        self._idle: dict[tuple[str, int], list[_Connection]] = {}
        self._busy: set[_Connection] = set()
        self._pruned = 0.0  # when idle connections were last pruned (monotonic)

    async def request(
        self,
        method: str,
        base: SplitResult,
        path: str,
        body: bytes | None,
        params: dict[str, str],
        *,
        timeout_s: float | None = None,
    ) -> tuple[int, bytes]:
        """Send one request to ``base`` and return the answer's status and body.

        ``timeout_s`` bounds this request (default: the client's ``timeout_s``).
        """
        target = base.path.rstrip("/") + path
        if _PLAIN_PATH.fullmatch(target) is None:
            target = quote(target, safe=_PATH_SAFE)
        if params:
            target += "?" + urlencode(params)
        host = base.netloc
        head = (
            f"{method} {target} HTTP/1.1\r\nHost: {host}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body or b'')}\r\n"
            "Accept: application/json\r\nUser-Agent: baton-sdk\r\n\r\n"
        ).encode("latin-1")
        key = (base.hostname or "", base.port or 80)
        async with asyncio.timeout(self.timeout_s if timeout_s is None else timeout_s):
            conn = await self._take(key)
            self._busy.add(conn)
            done = False
            try:
                status, answer, keep_alive = await conn.send(head, body)
                done = True
            finally:
                self._busy.discard(conn)
                if not done:
                    conn.close()
        if keep_alive and not conn.lost:
            conn.idle_since = time.monotonic()
            idle = self._idle.setdefault(key, [])
            idle.append(conn)
            # (at most twice a reuse period: many fresh idle connections are
            # normal where many requests run at once, and stay)
            if len(idle) > _PRUNE_PAST and conn.idle_since - self._pruned >= IDLE_REUSE_S / 2:
                self._pruned = conn.idle_since
                self._prune(idle, conn.idle_since)
        else:
            conn.close()
        return status, answer

    @staticmethod
    def _prune(idle: list[_Connection], now: float) -> None:
        """Drop connections closed or idle too long (the oldest sit at the bottom
        of the stack, unused while fewer requests are in flight than after a burst)."""
        keep = [c for c in idle if not c.lost and now - c.idle_since < IDLE_REUSE_S]
        for conn in idle:
            if conn.lost or now - conn.idle_since >= IDLE_REUSE_S:
                conn.close()
        idle[:] = keep

    async def _take(self, key: tuple[str, int]) -> _Connection:
        idle = self._idle.get(key)
        now = time.monotonic()
        while idle:
            conn = idle.pop()
            if not conn.lost and now - conn.idle_since < IDLE_REUSE_S:
                return conn
            conn.close()
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.connect_timeout_s):
                transport, conn = await loop.create_connection(_Connection, key[0], key[1])
        except TimeoutError:
            # (the request's own limit ending first is a TimeoutError of its
            # own): an unanswered connect is a host that cannot be reached,
            # not a server that took the request and hung
            raise connect_timed_out(self.connect_timeout_s) from None
        # (uvloop may call connection_made only after create_connection returns)
        conn.transport = transport
        return conn

    def close(self) -> None:
        """Close every connection (one in use fails its request)."""
        for conns in self._idle.values():
            for conn in conns:
                conn.close()
        self._idle.clear()
        for conn in list(self._busy):
            conn.close()
