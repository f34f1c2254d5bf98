"""The hot routes, served without FastAPI's layers.

A worker's polls and completions, starts and result waits are nearly all of
a region's requests. :class:`~store.api_guard.RequestGuard` has read, parsed
and checked the body already; for these routes the request model is
validated here and the store called directly, which skips the router's
linear match and FastAPI's dependency solving (a fifth of a server's CPU
under load). A request these routes cannot take exactly as it is (a body the
model refuses, a query string other than the plain one) goes on to FastAPI,
which answers it as before, errors included. The OpenAPI document still
describes every route, and ``tests/integration/test_api_fast.py`` checks that
FastAPI would send each path taken here to the same endpoint.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl

from pydantic import BaseModel, ValidationError
from starlette.responses import Response
from starlette.types import Receive, Scope

from store import activity_tasks as acts
from store import starts, tasks, workflows
from store.api_guard import ENCODED_SLASH, JSON
from store.client_watch import ClientWatch
from store.context import Store
from store.errors import StoreError, database_unavailable, database_unavailable_error
from store.namespaces import require_member_here
from worker import wire

log = logging.getLogger("baton.api")

_NS = r"/api/v1/namespaces/(?P<ns>[^/]+)"
_POST = re.compile(
    _NS + r"/(?P<route>workflows|workflow-tasks/poll|workflow-tasks/complete"
    r"|activity-tasks/poll|activity-tasks/complete)"
)
# any id, line breaks too (as the FastAPI routes take it)
_RESULT = re.compile(_NS + r"/workflows/(?P<wid>.+)/result", re.DOTALL)
_PLAIN_NUMBER = re.compile(r"[0-9]{1,6}(\.[0-9]{1,9})?")

#: What a hot route does once matched: the response, or a StoreError raised.
Handler = Callable[[], Awaitable[Response]]


def member_check(store: Store) -> Callable[[str], Awaitable[StoreError | None]]:
    """The request guard's check that this region still serves a namespace
    (:func:`store.namespaces.require_member_here`), as an error to answer with."""

    async def check(namespace: str) -> StoreError | None:
        try:
            await require_member_here(store, namespace)
        except StoreError as exc:
            return exc
        except Exception as exc:
            return unexpected_error(exc)
        return None

    return check


def unexpected_error(exc: Exception, asked: str = "") -> StoreError:
    """The typed error an exception no route expected answers with.

    A database outage is one log line per request (the client gets a typed
    503 and retries): a traceback for each would bury the log while it lasts.
    """
    if database_unavailable(exc):
        # the pool closing under a request at shutdown, a connection lost,
        # the database shutting down, starting up or closed to new sessions
        error = database_unavailable_error(exc)
        why = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        log.warning("%sregion database unavailable, answered 503 (%s)", asked and f"{asked}: ", why)
        return error
    log.exception("unexpected error")
    return StoreError(f"internal error: {type(exc).__name__}: {exc}")


class HotRoutes:
    """Matches the hot routes and builds their handlers (None: FastAPI's turn)."""

    def __init__(
        self,
        store: Store,
        checked: Callable[[BaseModel], None],
        render: Callable[[StoreError], Response],
    ):
        self.store = store
        self.checked = checked
        self.render = render

    def __call__(self, scope: Scope, body: Any, receive: Receive) -> Handler | None:
        """The handler of a hot route (its errors answered typed), or None."""
        handler = self._match(scope, body, receive)
        if handler is None:
            return None
        render = self.render

        async def guarded() -> Response:
            try:
                return await handler()
            except StoreError as exc:
                return render(exc)
            except Exception as exc:
                return render(unexpected_error(exc, f"{scope.get('method')} {scope.get('path')}"))

        return guarded

    def _match(self, scope: Scope, body: Any, receive: Receive) -> Handler | None:
        path = scope.get("path", "")
        if scope.get("root_path"):
            return None
        method = scope.get("method")
        query = _query(scope.get("query_string", b""))
        if query is None:
            return None
        if method == "POST" and isinstance(body, dict):
            m = _POST.fullmatch(path)
            if m is None:
                return None
            return self._post(m["ns"], m["route"], body, query, scope, receive)
        if method == "GET" and body is None:
            m = _RESULT.fullmatch(path)
            if m is None:
                return None
            return self._result(m["ns"], m["wid"].replace(ENCODED_SLASH, "/"), query)
        return None

    def _post(
        self,
        namespace: str,
        route: str,
        body: dict[str, Any],
        query: dict[str, str],
        scope: Scope,
        receive: Receive,
    ) -> Handler | None:
        store = self.store
        if route == "activity-tasks/complete":
            extra = set(query) - {"return_new_workflow_task"}
            flag = query.get("return_new_workflow_task", "false")
            if extra or flag not in ("true", "false"):
                return None
            done = _model(wire.RespondActivityTaskCompleted, body)
            if done is None:
                return None

            async def complete_activity() -> Response:
                self.checked(done)
                return JSON(
                    await acts.complete_activity_task(store, namespace, done, flag == "true")
                )

            return complete_activity
        if query:
            return None
        if route == "workflow-tasks/complete":
            wt = _model(wire.RespondWorkflowTaskCompleted, body)
            if wt is None:
                return None

            async def complete_workflow_task() -> Response:
                self.checked(wt)
                return JSON(await tasks.complete_workflow_task(store, namespace, wt))

            return complete_workflow_task
        if route == "workflows":
            start = _model(wire.StartWorkflowRequest, body)
            if start is None:
                return None

            async def start_workflow() -> Response:
                self.checked(start)
                body, status = await starts.start_and_wait(store, namespace, start)
                return JSON(body, status_code=status)

            return start_workflow
        poll = _model(wire.PollRequest, body)
        if poll is None:
            return None
        if route == "workflow-tasks/poll":

            async def poll_workflow_task() -> Response:
                with ClientWatch(receive) as watch:
                    task = await tasks.poll_workflow_task(store, namespace, poll, watch)
                return JSON({"task": task})

            return poll_workflow_task

        async def poll_activity_task() -> Response:
            with ClientWatch(receive) as watch:
                task = await acts.poll_activity_task(store, namespace, poll, watch)
            return JSON({"task": task})

        return poll_activity_task

    def _result(self, namespace: str, workflow_id: str, query: dict[str, str]) -> Handler | None:
        if set(query) - {"run_id", "wait_s"}:
            return None
        wait = query.get("wait_s", "0")
        if not _PLAIN_NUMBER.fullmatch(wait):
            return None
        wait_s = float(wait)
        if not (math.isfinite(wait_s) and 0 <= wait_s <= 120):
            return None
        run_id = query.get("run_id")
        store = self.store

        async def result() -> Response:
            return JSON(await workflows.get_result(store, namespace, workflow_id, run_id, wait_s))

        return result


def _model(cls: type[Any], body: dict[str, Any]) -> Any:
    """The body as ``cls``, or None (FastAPI then answers the bad request)."""
    try:
        return cls.model_validate(body)
    except ValidationError:
        return None


def _query(raw: bytes) -> dict[str, str] | None:
    """A plain query string (each key once), or None for anything else."""
    if not raw:
        return {}
    try:
        pairs = parse_qsl(raw.decode("ascii"), keep_blank_values=True, strict_parsing=True)
    except (UnicodeDecodeError, ValueError):
        return None
    out = dict(pairs)
    return out if len(out) == len(pairs) else None
