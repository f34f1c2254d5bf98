"""The SDK's HTTP transport: typed errors, failover following.

Plain ``http://`` endpoints are called through :mod:`worker._lean_http`'s
keep-alive connections, any other (``https``, credentials in the URL) through
one aiohttp session.

A transport knows every region's endpoint. Calls go to the endpoint where the
namespace was last seen active; a ``NAMESPACE_NOT_ACTIVE`` answer names the
active region's URL and the call is repeated there, and retryable errors
(``NAMESPACE_IN_HANDOVER``, ``UNAVAILABLE``, connection failures) are retried
with backoff up to a deadline. A connection failure or ``UNAVAILABLE`` (a
server whose region database is down) moves on to the next endpoint; since
a namespace lives only in its own regions, a ``NAMESPACE_NOT_FOUND`` from one
endpoint sends the call on to the endpoints that have not said so, and only
when every endpoint has is it raised.
"""

from __future__ import annotations

import asyncio
import io
import logging
import math
import random
import time
from collections.abc import Sequence
from typing import Any
from urllib.parse import SplitResult, quote, urlsplit

import aiohttp
import orjson

from worker._gc import collector_paused
from worker._lean_http import LeanHTTP, connect_timed_out, lean_target
from worker.converter import find_in, non_finite
from worker.errors import (
    BatonError,
    ClientClosedError,
    InvalidArgumentError,
    NamespaceNotActiveError,
    NamespaceNotFoundError,
    UnavailableError,
    from_wire,
)
from worker.wire.requests import namespace_name_problem

log = logging.getLogger("baton.sdk")
API = "/api/v1"
#: How long a connection to an endpoint may take to be made: a host that does
#: not answer the connect (down, or packets dropped) is one that cannot be
#: reached, tried again or passed over for the next endpoint.
CONNECT_TIMEOUT_S = 5.0
#: The longest :meth:`Transport.probe` waits for an endpoint to answer when
#: ``Client.connect`` asks (a shorter ``retry_for_s`` shortens it): long
#: enough to ride out a server's restart, short of a minute of silence
#: before a wrong URL is reported.
CONNECT_RETRY_S = 15.0
#: The least time one probe of an endpoint gets to answer, however little of
#: the window is left (within the request timeout).
_PROBE_MIN_S = 5.0
#: Statuses a gateway or proxy answers for a server behind it that is down.
_GATEWAY_STATUSES = (502, 503, 504)


def wf_path(namespace: str, workflow_id: str, suffix: str = "") -> str:
    wid = quote(_name(workflow_id, "workflow id"), safe="")
    return f"{ns_path(namespace)}/workflows/{wid}{suffix}"


def ns_path(namespace: str, suffix: str = "") -> str:
    # A name no namespace can have is refused here, as the server refuses it at
    # create: sent, a "/" or "?" in it would name another route (or none).
    problem = namespace_name_problem(_name(namespace, "namespace"))
    if problem is not None:
        raise InvalidArgumentError(problem)
    return f"{API}/namespaces/{quote(namespace, safe='')}{suffix}"


def _name(value: object, what: str) -> str:
    """A name that goes into a path: any other value would name another route (or none)."""
    if not isinstance(value, str) or not value:
        raise InvalidArgumentError(f"the {what} must be a non-empty string, not {value!r}")
    return value


class Transport:
    """HTTP calls to a Baton deployment."""

    def __init__(
        self,
        endpoints: Sequence[str],
        *,
        retry_for_s: float = 60.0,
        request_timeout_s: float = 150.0,
        follow_failover: bool = True,
    ):
        if not endpoints:
            raise InvalidArgumentError(
                "at least one server endpoint is needed, e.g. http://127.0.0.1:7233"
            )
        self.endpoints = [checked_endpoint(e) for e in endpoints]
        #: Whether a NAMESPACE_NOT_ACTIVE answer sends calls to the active region.
        self.follow_failover = follow_failover
        self._active = self.endpoints[0]
        # NaN made every deadline check false: a call retried an unreachable server for ever.
        if isinstance(retry_for_s, bool) or not (
            isinstance(retry_for_s, int | float) and 0 <= retry_for_s < math.inf
        ):
            raise InvalidArgumentError(
                f"retry_for_s must be a finite number of seconds, 0 or more, not {retry_for_s!r}"
            )
        self.retry_for_s = float(retry_for_s)
        # True passed the number check as 1 s, as it did for retry_for_s.
        if isinstance(request_timeout_s, bool) or not (
            isinstance(request_timeout_s, int | float) and 0 < request_timeout_s < math.inf
        ):
            raise InvalidArgumentError(
                f"request_timeout_s must be a finite number of seconds above 0, "
                f"not {request_timeout_s!r}"
            )
        #: How long a server may take to answer one request, beyond the wait
        #: the request asks of it (a long poll's or a result's ``wait_s``, a
        #: query's or an update's ``timeout_s``): a server that accepts the
        #: connection and never answers fails the request after this long.
        self.request_timeout_s = float(request_timeout_s)
        self._timeout = aiohttp.ClientTimeout(total=request_timeout_s, connect=CONNECT_TIMEOUT_S)
        self._session: aiohttp.ClientSession | None = None
        self._lean = LeanHTTP(timeout_s=request_timeout_s, connect_timeout_s=CONNECT_TIMEOUT_S)
        self._parts: dict[str, SplitResult] = {}
        self._closed = False

    def _http(self) -> aiohttp.ClientSession:
        if self._closed:
            # a new session now would never be closed (and leaks its socket)
            raise ClientClosedError("this client is closed: connect a new one")
        # Created lazily: a session belongs to the event loop that first uses it.
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=self._timeout,
                connector=aiohttp.TCPConnector(limit=0, keepalive_timeout=60),
                headers={"content-type": "application/json"},
                json_serialize=lambda v: orjson.dumps(v).decode(),
            )
        return self._session

    @property
    def active_endpoint(self) -> str:
        return self._active

    async def close(self) -> None:
        self._closed = True
        self._lean.close()
        if self._session is not None and not self._session.closed:
            await self._session.close()

    async def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        params: dict[str, Any] | None = None,
        retry: bool = True,
        raw: bool = False,
        retry_for_s: float | None = None,
        check_floats: bool = True,
    ) -> Any:
        """Make one API call; returns the decoded JSON body or raises a BatonError.

        With ``raw`` a successful call returns the body's bytes undecoded.
        ``retry_for_s`` bounds the retries of this call (a caller's own
        timeout) instead of the transport's. ``check_floats=False`` skips the
        walk for NaN and infinities (see :func:`encode_body`), for a body
        whose floats were all checked where they were made.
        """
        budget = self.retry_for_s if retry_for_s is None else retry_for_s
        deadline = time.monotonic() + (budget if retry else 0)
        delay = 0.05
        tried_other = False
        # Endpoints reached in this call, and those that do not know the namespace.
        tried: set[str] = set()
        not_found: set[str] = set()
        # The last UNAVAILABLE of each endpoint that gave one in this call.
        unavailable: dict[str, BatonError] = {}
        content = encode_body(body, check_floats=check_floats) if body is not None else None
        query = {k: _param(v) for k, v in (params or {}).items() if v is not None}
        limit_s = _asked_wait(body, query) + self.request_timeout_s
        while True:
            base = self._active
            tried.add(base)
            try:
                status, answer = await self._exchange(method, base, path, content, query, limit_s)
            except TimeoutError:
                err: BatonError = UnavailableError(
                    f"{base} did not answer within {limit_s:g} s: the server is hung or "
                    "overloaded; check that it is healthy (its log, `baton dev status` for "
                    "the local stack), or allow it longer (request_timeout_s, "
                    "`--request-timeout` or $BATON_REQUEST_TIMEOUT in the CLI)",
                    details={"endpoint": base, "timeout_s": limit_s},
                )
                unavailable[base] = err
                self._active = next(
                    (e for e in self._others(base) if e not in not_found), self._active
                )
                if self._active not in tried:
                    # the wait may have used up the retry budget: still ask
                    # each endpoint not asked yet before giving up
                    continue
            except (aiohttp.ClientError, OSError) as exc:
                err = UnavailableError(
                    f"cannot reach {base} ({exc!r}): check that the server is running and "
                    "its URL is right (`baton dev status` for the local stack)",
                    details={"endpoint": base},
                )
                unavailable[base] = err
                # Another region's server may answer (and redirect) instead.
                self._active = next(
                    (e for e in self._others(base) if e not in not_found), self._active
                )
            else:
                if status < 400:
                    if raw:
                        return answer
                    if not answer:
                        return None
                    with collector_paused():  # a page of history is many objects at once
                        return orjson.loads(answer)
                err = _error_from(status, answer)
                if isinstance(err, UnavailableError):
                    unavailable[base] = err
                    # The server is up but its region's database is not (or
                    # is overloaded): after a forced failover the namespace is
                    # active in another region, which a server there says; if
                    # it is not, that server names this one again.
                    self._active = next(
                        (e for e in self._others(base) if e not in not_found), self._active
                    )
                elif isinstance(err, NamespaceNotFoundError):
                    not_found.add(base)
                    others = [e for e in self._others(base) if e not in not_found]
                    if others:
                        # The namespace may live in another region only: go
                        # there (and stay). An endpoint not reached yet in this
                        # call is asked at once, one that could not be reached
                        # after the usual pause.
                        fresh = [e for e in others if e not in tried]
                        self._active = (fresh or others)[0]
                        if fresh:
                            continue
                        err = UnavailableError(
                            f"{base} does not know the namespace and {', '.join(others)} "
                            f"could not be reached: {err.message}"
                        )
                elif (
                    isinstance(err, NamespaceNotActiveError)
                    and err.active_url
                    and self.follow_failover
                ):
                    if err.active_url.rstrip("/") != base:
                        self._active = err.active_url.rstrip("/")
                        if self._active not in self.endpoints:
                            self.endpoints.append(self._active)
                        if not tried_other:
                            tried_other = True
                            continue
                    err = _retryable_copy(err)
            if not err.retryable or time.monotonic() + delay > deadline:
                named = err.active_url if isinstance(err, NamespaceNotActiveError) else None
                if named and named.rstrip("/") in unavailable:
                    # The active region is the one that could not serve.
                    raise unavailable[named.rstrip("/")]
                raise err
            await asyncio.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, 2.0)

    async def _exchange(
        self,
        method: str,
        base: str,
        path: str,
        content: bytes | None,
        query: dict[str, str],
        limit_s: float,
    ) -> tuple[int, bytes]:
        """One request and its answer's status and body (no retries), within ``limit_s``."""
        parts = self._parts.get(base)
        if parts is None:
            parts = self._parts[base] = urlsplit(base)
        if lean_target(parts):
            if self._closed:
                raise ClientClosedError("this client is closed: connect a new one")
            return await self._lean.request(method, parts, path, content, query, timeout_s=limit_s)
        try:
            async with self._http().request(
                method,
                base + path,
                # aiohttp streams a large body from a buffer instead of
                # writing it in one go (and warns about raw bytes over 1 MiB)
                data=io.BytesIO(content) if content and len(content) > 1 << 20 else content,
                params=query,
                timeout=aiohttp.ClientTimeout(total=limit_s, connect=CONNECT_TIMEOUT_S),
            ) as resp:
                return resp.status, await resp.read()
        except aiohttp.ConnectionTimeoutError:
            raise connect_timed_out(CONNECT_TIMEOUT_S) from None

    async def probe(self, window_s: float) -> str:
        """The first endpoint that answers ``GET /healthz``, asking every
        endpoint at once and again with backoff for up to ``window_s``;
        ``UnavailableError`` naming each endpoint and why otherwise.

        Any answer of a Baton server counts, an error too (a server whose
        database is down answers, and calls then retry it as usual); a
        gateway's 502, 503 or 504 for a server behind it does not.
        """
        deadline = time.monotonic() + window_s
        delay = 0.05
        reasons: dict[str, str] = {}
        while True:
            limit = min(self.request_timeout_s, max(deadline - time.monotonic(), _PROBE_MIN_S))
            asks = {asyncio.create_task(self._probe_one(e, limit)): e for e in self.endpoints}
            pending = set(asks)
            try:
                while pending:
                    done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                    for ask in done:
                        reason = ask.result()
                        if reason is None:
                            return asks[ask]
                        reasons[asks[ask]] = reason
            finally:
                for ask in pending:
                    ask.cancel()
                await asyncio.gather(*pending, return_exceptions=True)
            left = deadline - time.monotonic()
            if left <= 0:
                break
            # (the last ask comes at the end of the window, not a pause before it)
            await asyncio.sleep(min(left, delay * (0.5 + random.random())))
            delay = min(delay * 2, 2.0)
        why = {e: reasons[e] for e in self.endpoints if e in reasons}
        raise UnavailableError(
            f"no Baton server answered within {window_s:g} s: "
            + "; ".join(f"{e} {r}" for e, r in why.items())
            + ". Check that the server is running and its URL is right (`baton dev status` "
            "for the local stack), or allow a hung or overloaded server longer "
            "(request_timeout_s, `--request-timeout` or $BATON_REQUEST_TIMEOUT in the CLI); "
            "Client.connect(..., lazy=True) skips this check, for a worker started "
            "before its server",
            details={"endpoints": list(why), "reasons": why, "waited_s": window_s},
        )

    async def _probe_one(self, base: str, limit_s: float) -> str | None:
        """None if ``base`` answers as a Baton server within ``limit_s``, else why not."""
        try:
            status, answer = await self._exchange("GET", base, "/healthz", None, {}, limit_s)
        except TimeoutError:
            return f"did not answer within {limit_s:g} s"
        except (aiohttp.ClientError, OSError) as exc:
            return f"cannot be reached ({exc!r})"
        if status in _GATEWAY_STATUSES and not _is_baton_error(answer):
            return f"answered {status}, not from a Baton server (a gateway's, for one down?)"
        return None

    def _others(self, base: str) -> list[str]:
        """The endpoints other than ``base``, in order, starting after it."""
        i = self.endpoints.index(base) if base in self.endpoints else -1
        n = len(self.endpoints)
        ring = (self.endpoints[(i + k) % n] for k in range(1, n + 1))
        return [e for e in ring if e != base]


def checked_endpoint(endpoint: str) -> str:
    """``endpoint`` without its trailing ``/``, or ``InvalidArgumentError`` if it
    is no http(s) URL: a typo would otherwise be retried for the whole
    ``retry_for_s`` as a server that cannot be reached."""
    problem = None
    try:
        parts = urlsplit(str(endpoint).strip())
        parts.port  # noqa: B018 (raises on a port out of range)
    except ValueError as exc:
        problem = str(exc)
    else:
        if parts.scheme not in ("http", "https") or not parts.hostname:
            problem = "it needs http:// or https:// and a host"
    if problem:
        raise InvalidArgumentError(
            f"server endpoint {endpoint!r} is not a URL Baton can call ({problem}); "
            "write it as http://HOST:PORT"
        )
    return str(endpoint).strip().rstrip("/")


def encode_body(body: Any, *, check_floats: bool = True) -> bytes:
    """A request body as JSON, or ``InvalidArgumentError`` if JSON cannot carry it as it is.

    orjson refuses integers past 64 bits and writes NaN and infinities as
    ``null``: the first would end a call in a bare ``TypeError``, the second
    would store ``null`` in place of the value without a word. Finding the
    second walks the body (tens of microseconds for a worker's completion):
    ``check_floats=False`` skips it where every float was checked when made.
    """
    try:
        content = orjson.dumps(body)
    except TypeError as exc:
        where = find_in(body, "request", _past_64_bits)
        what = f"{where} is an integer past 64 bits; send it as a string" if where else exc
        raise InvalidArgumentError(f"the request cannot be sent as JSON: {what}") from exc
    # Only a body with a null can hold one that was a non-finite float.
    where = find_in(body, "request", non_finite) if check_floats and b"null" in content else None
    if where is not None:
        raise InvalidArgumentError(
            f"{where} is a float JSON cannot carry (NaN or infinite); send it as a string "
            "or leave it out"
        )
    return content


def _past_64_bits(value: Any) -> bool:
    """An integer orjson cannot write."""
    return (
        isinstance(value, int)
        and not isinstance(value, bool)
        and not -(1 << 63) <= value < (1 << 64)
    )


#: Fields by which a request asks the server to wait before it answers.
_WAIT_FIELDS = ("wait_s", "wait_result_s", "timeout_s")


def _asked_wait(body: Any, query: dict[str, str]) -> float:
    """The longest wait, in seconds, a request asks of the server (0 for none)."""
    asked: list[Any] = [query.get("wait_s")]
    if isinstance(body, dict):
        asked += [body.get(name) for name in _WAIT_FIELDS]
    longest = 0.0
    for value in asked:
        try:
            seconds = float(value)
        except (TypeError, ValueError):
            continue
        if math.isfinite(seconds) and seconds > longest:
            longest = seconds
    return longest


def _param(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _error_from(status: int, raw: bytes) -> BatonError:
    try:
        body = orjson.loads(raw)["error"]
        return from_wire(body["code"], body["message"], body.get("details"))
    except (orjson.JSONDecodeError, KeyError, TypeError):
        text = raw[:500].decode(errors="replace")
        if status >= 500:
            return UnavailableError(f"server answered {status}: {text}")
        if status in (400, 413, 414, 431):
            # refused by the HTTP layer before the server read it (a URL or
            # headers too long): the request's fault, not the server's
            code = "PAYLOAD_TOO_LARGE" if status == 413 else "MALFORMED_REQUEST"
            return from_wire(code, f"the server refused the request unread ({status}: {text})")
        return from_wire("INTERNAL", f"server answered {status}: {text}")


def _is_baton_error(raw: bytes) -> bool:
    """Whether an answer's body is a Baton server's typed error."""
    try:
        return isinstance(orjson.loads(raw)["error"]["code"], str)
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return False


class _RetryableNotActive(NamespaceNotActiveError):
    retryable = True


def _retryable_copy(err: NamespaceNotActiveError) -> BatonError:
    # Seen again at the URL it named: the namespace is moving; wait it out.
    return _RetryableNotActive(err.message, details=err.details)
