"""What the API checks before a route sees a request, and how any error becomes typed.

Bad input must get a typed 4xx and change nothing. Some input is valid JSON
and valid for the request models yet cannot be stored: PostgreSQL refuses
NUL characters and lone surrogates in text and jsonb, orjson (the jsonb codec)
refuses integers past 64 bits and nesting past 254 levels. :class:`RequestGuard`
reads every request body itself, counting bytes as they arrive (a chunked
body has no Content-Length to trust), parses it once and walks it for those,
and hands the parsed value on to the route (:class:`GuardedRoute`), so a body
is parsed once as before. Path and query string are checked for NUL too.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any
from urllib.parse import unquote, unquote_to_bytes

import orjson
from fastapi import Request
from fastapi.routing import APIRoute
from starlette.convertors import Convertor, register_url_convertor
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from store.errors import InvalidArgument, MalformedRequest, PayloadTooLarge, StoreError

#: Deepest nesting of JSON a request may carry (a failure's cause chain of
#: 20 sits well inside; orjson, the jsonb codec, stops at 254).
MAX_JSON_DEPTH = 128
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
_SCOPE_KEY = "baton.json"
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
_NO_BODY = object()


#: Stands in the routed path for a "/" the client encoded (``%2F``) in a
#: workflow id, until the id's convertor turns it back. A workflow id ending
#: in ``/result`` or ``/history`` (``orders%2Fresult``) otherwise decoded to a
#: path of the result or history route of another workflow (``orders``). No
#: routed path holds a NUL: the guard refuses one first.
ENCODED_SLASH = "\x00"
_WORKFLOW_PATH = re.compile(r"(/api/v1/namespaces/[^/]+/workflows/)(.+)", re.DOTALL)


def keep_encoded_slashes(scope: Scope) -> None:
    """Route a workflow id by its encoded form: its ``%2F`` are not separators."""
    raw = scope.get("raw_path")
    if not raw or b"%2f" not in raw.lower():
        return
    m = _WORKFLOW_PATH.fullmatch(raw.decode("utf-8", "replace"))
    if m is None or scope.get("root_path"):
        return
    rest = "/".join(unquote(part).replace("/", ENCODED_SLASH) for part in m[2].split("/"))
    scope["path"] = unquote(m[1]) + rest


class _AnyText(Convertor[str]):
    """A path parameter of any text, "/" and line breaks included.

    Starlette's ``path`` convertor is ``.*``, whose dot stops at a newline: a
    workflow id holding one matched no route, so its run could be neither
    described nor ended. New ids may not hold control characters
    (:func:`store.starts.check_workflow_id`); runs started before still answer.
    """

    regex = "(?s:.*)"

    def convert(self, value: str) -> str:
        return value.replace(ENCODED_SLASH, "/")

    def to_string(self, value: str) -> str:
        return str(value)


register_url_convertor("anytext", _AnyText())
#: The workflow id in a route's path (``{ns_path}/workflows/{WORKFLOW_ID_PARAM}``).
WORKFLOW_ID_PARAM = "{workflow_id:anytext}"


class JSON(Response):
    """A JSON response rendered with orjson."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


#: Given a request's scope, its parsed body (None: no body) and its receive,
#: the handler that answers it, or None to leave it to the application.
FastRoutes = Callable[[Scope, Any, Receive], Callable[[], Awaitable[Response]] | None]


class _Refused(Exception):
    def __init__(self, error: StoreError):
        super().__init__(error.message)
        self.error = error


def check_json(value: Any, where: str = "body", depth: int = 0) -> None:
    """Raise InvalidArgument for JSON that is valid but cannot be stored."""
    if depth > MAX_JSON_DEPTH:
        raise InvalidArgument(f"{where}: JSON nested deeper than {MAX_JSON_DEPTH} levels")
    if isinstance(value, str):
        if _UNSTORABLE.search(value):
            raise InvalidArgument(
                f"{where}: text holds a NUL character or an unpaired surrogate, which cannot "
                "be stored: send binary data as a payload (base64)"
            )
    elif isinstance(value, bool) or value is None:
        return
    elif isinstance(value, int):
        if not INT64_MIN <= value <= INT64_MAX:
            raise InvalidArgument(f"{where}: integer {value} is outside the signed 64-bit range")
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidArgument(f"{where}: numbers must be finite, got {value}")
    elif isinstance(value, dict):
        for key, item in value.items():
            check_json(key, where, depth + 1)
            check_json(item, f"{where}.{key}" if len(where) < 200 else where, depth + 1)
    elif isinstance(value, list):
        for item in value:
            check_json(item, where, depth + 1)


def check_text(value: str, where: str) -> None:
    if _UNSTORABLE.search(value):
        raise InvalidArgument(f"{where} holds a NUL character or an unpaired surrogate")


def body_problem(content_type: str, error_type: str) -> StoreError:
    """The error of a request whose body is no JSON object at all.

    FastAPI's own words for it ("Field required", "Input should be a valid
    dictionary") name neither the body nor what to send instead.
    """
    if content_type and "json" not in content_type.lower():
        return MalformedRequest(
            f"the request body is sent as {content_type.split(';')[0]!r}: send a JSON "
            "object with Content-Type: application/json"
        )
    if error_type == "missing":
        return InvalidArgument(
            "the request has no body: send a JSON object (with every field optional, {} takes "
            "the defaults)"
        )
    return InvalidArgument(
        "the request body must be a JSON object of the fields /docs lists, not an array, a "
        "string, a number or null"
    )


#: A namespace's own routes: ``/api/v1/namespaces/{ns}`` and everything under it.
_NAMESPACE_PATH = re.compile(r"/api/v1/namespaces/([^/]+)(?:/|$)")
#: The header a region's applier sends when it reads what a message left at
#: its source region: answered from what the region holds, whatever it is.
PEER_HEADER = "x-baton-peer"
_PEER_HEADER = PEER_HEADER.encode()

#: Whether a region serves a namespace's routes: the error to answer with, or None.
MemberCheck = Callable[[str], Awaitable["StoreError | None"]]


def _from_peer(scope: Scope) -> bool:
    return any(name == _PEER_HEADER for name, _ in scope.get("headers", ()))


class RequestGuard:
    """Size limit, JSON parsing and storability checks of every request (plain ASGI).

    A body over ``limit`` bytes is refused as it streams in, whatever
    Content-Length said. After the body the original ``receive`` is used, so
    long-polls still learn of a client that went away.
    """

    def __init__(
        self,
        app: ASGIApp,
        limit: int,
        render: Callable[[StoreError], Response],
        fast: FastRoutes | None = None,
        member: MemberCheck | None = None,
    ):
        self.app = app
        self.limit = limit
        self.render = render
        self.fast = fast
        self.member = member

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            self._check_target(scope)
            keep_encoded_slashes(scope)
            body = await self._read_body(scope, receive)
            if body:
                scope[_SCOPE_KEY] = _parse(body, scope)
        except _Refused as refused:
            await self.render(refused.error)(scope, receive, send)
            return
        if self.member is not None:
            m = _NAMESPACE_PATH.match(scope.get("path", ""))
            if m is not None and not _from_peer(scope):
                refused_here = await self.member(m[1])
                if refused_here is not None:
                    await self.render(refused_here)(scope, receive, send)
                    return
        if self.fast is not None:
            # a hot route: answered here, without the framework's layers
            handler = self.fast(scope, scope.get(_SCOPE_KEY), receive)
            if handler is not None:
                await (await handler())(scope, receive, send)
                return
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    def _check_target(self, scope: Scope) -> None:
        raw_query = scope.get("query_string", b"")
        if "\x00" in scope.get("path", "") or b"\x00" in unquote_to_bytes(raw_query):
            raise _Refused(
                InvalidArgument("the URL holds a NUL character (%00): no name or value may")
            )

    async def _read_body(self, scope: Scope, receive: Receive) -> bytes:
        for name, value in scope.get("headers", ()):
            if name == b"content-length" and value.isdigit() and int(value) > self.limit:
                raise _Refused(self._too_large(int(value)))
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                raise _Refused(self._too_large(size, streamed=True))
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)

    def _too_large(self, size: int, *, streamed: bool = False) -> PayloadTooLarge:
        what = f"more than {self.limit} bytes" if streamed else f"{size} bytes"
        return PayloadTooLarge(
            f"request body of {what} is over this server's limit of {self.limit} bytes: "
            "store large data elsewhere and pass a reference",
            size=size,
            limit=self.limit,
        )


def _parse(body: bytes, scope: Scope) -> Any:
    content_type = ""
    for name, value in scope.get("headers", ()):
        if name == b"content-type":
            content_type = value.decode("latin-1").lower()
    if content_type and "json" not in content_type:
        return _NO_BODY  # the route refuses it by its own rules
    quick = _parse_plain(body)
    if quick is not _NOT_PLAIN:
        return quick
    try:
        parsed = json.loads(body)
    except (ValueError, RecursionError) as exc:
        # ValueError covers JSONDecodeError and undecodable bytes.
        raise _Refused(MalformedRequest(f"request body is not valid JSON: {exc}")) from None
    try:
        check_json(parsed)
    except RecursionError:
        raise _Refused(InvalidArgument("body: JSON nested too deeply")) from None
    except InvalidArgument as exc:
        raise _Refused(exc) from None
    return parsed


#: Every byte that is a digit as b"9", every other byte as a space.
_DIGITS_AS_NINES = bytes(0x39 if 0x30 <= b <= 0x39 else 0x20 for b in range(256))
_NINETEEN_DIGITS = b"9" * 19
_NOT_PLAIN = object()


def _parse_plain(body: bytes) -> Any:
    """The body parsed by orjson, when that is sure to be what ``json.loads``
    gives and what :func:`check_json` lets through; else ``_NOT_PLAIN``.

    Nearly every request is such a body, and orjson with these byte scans
    costs a fifth of ``json.loads`` and the walk. orjson refuses lone
    surrogates, NaN, infinities and numbers that overflow a double, so a body
    it parses holds none of them. The scans rule out the rest: a NUL can only
    arrive escaped; no number of 19 digits or more means every integer is
    inside 64 bits (orjson would read one past 64 bits as a float, where
    ``json.loads`` reads an int); no more brackets than the depth limit means
    no deeper nesting. Any other body takes the full path, with its errors.
    """
    if (
        b"\\u0000" in body
        or _NINETEEN_DIGITS in body.translate(_DIGITS_AS_NINES)
        or body.count(b"[") + body.count(b"{") > MAX_JSON_DEPTH
    ):
        return _NOT_PLAIN
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return _NOT_PLAIN


class _ParsedRequest(Request):
    """A request whose JSON body the guard has parsed already."""

    async def json(self) -> Any:
        parsed = self.scope.get(_SCOPE_KEY, _NO_BODY)
        if parsed is _NO_BODY:
            return await super().json()
        return parsed


class GuardedRoute(APIRoute):
    """Routes read the body the guard parsed instead of parsing it again."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            return await handler(_ParsedRequest(request.scope, request.receive))

        return route
