"""The OpenAPI document as the routes answer: every error in the typed shape.

FastAPI documents a ``422`` with its own ``HTTPValidationError`` body on
every route that takes input, but this server answers bad input with a
``400`` and ``{"error": {"code", "message", "retryable", "details"}}``
(:class:`worker.wire.ErrorResponse`), and every other error in that shape
too. A client generated from the document would look for a status and a
body it never gets, so the document says what the server does.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute

from worker import wire

#: The error answers every route documents (added as the app's ``responses``).
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {
        "model": wire.ErrorResponse,
        "description": "Bad input: MALFORMED_REQUEST (not JSON) or INVALID_ARGUMENT; "
        "nothing was changed",
    },
    "default": {
        "model": wire.ErrorResponse,
        "description": "Any other error, with a stable error.code (worker/wire/codes.py); "
        "error.retryable says whether the same request may succeed later",
    },
}
_FASTAPI_ONLY = ("HTTPValidationError", "ValidationError")


def install_openapi(app: FastAPI) -> None:
    """Serve ``app``'s OpenAPI document without FastAPI's 422 answers."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            # HEAD is a GET's answer without its body: the document has the GET
            heads = [
                r.methods
                for r in app.routes
                if isinstance(r, APIRoute) and r.methods and "HEAD" in r.methods
            ]
            for methods in heads:
                methods.discard("HEAD")
            try:
                schema = get_openapi(
                    title=app.title,
                    version=app.version,
                    description=app.description,
                    routes=app.routes,
                )
            finally:
                for methods in heads:
                    methods.add("HEAD")
            for operations in schema.get("paths", {}).values():
                for operation in operations.values():
                    operation.get("responses", {}).pop("422", None)
                    for status in ERROR_RESPONSES:
                        # an error is JSON also where the route answers text (/metrics)
                        answer = operation.get("responses", {}).get(str(status), {})
                        if "content" in answer and "application/json" not in answer["content"]:
                            _, body = answer["content"].popitem()
                            answer["content"] = {"application/json": body}
            schemas = schema.get("components", {}).get("schemas", {})
            for name in _FASTAPI_ONLY:
                schemas.pop(name, None)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def answer_head(app: FastAPI) -> None:
    """Let every GET route answer HEAD, as HTTP says a GET resource does.

    FastAPI's routes take only the methods they name, so a HEAD (a load
    balancer's or a client's probe of a run, a list, the cluster) was a 405.
    The answer is the GET's status and headers; the server sends no body.
    The document keeps only the GET (:func:`install_openapi`).
    """
    for route in app.routes:
        if isinstance(route, APIRoute) and route.methods and "GET" in route.methods:
            route.methods.add("HEAD")
