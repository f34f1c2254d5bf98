"""The hot routes (store/api_fast.py) take exactly the requests FastAPI would
send to the same endpoints, and leave every other request to FastAPI."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from starlette.routing import Match

from store.api import create_app
from store.api_fast import HotRoutes
from store.config import DEFAULT_MAX_PAYLOAD
from store.errors import StoreError

TOKEN = "dG9rZW4"
POLL = {"task_queue": "q", "identity": "w1"}
COMPLETE_WT = {"task_token": TOKEN, "identity": "w1", "commands": []}
COMPLETE_ACT = {"task_token": TOKEN, "identity": "w1"}
START = {"workflow_id": "w", "workflow_type": "T", "task_queue": "q", "request_id": "r"}


def _app_and_routes() -> tuple[Any, HotRoutes]:
    store: Any = SimpleNamespace(config=SimpleNamespace(max_payload_bytes=DEFAULT_MAX_PAYLOAD))
    app = create_app(store)

    def render(exc: StoreError) -> Any:
        raise AssertionError(f"not rendered in this test: {exc}")

    return app, HotRoutes(store, lambda _m: None, render)


def _scope(method: str, path: str, query: bytes = b"") -> dict[str, Any]:
    return {
        "type": "http",
        "method": method,
        "path": path,
        "root_path": "",
        "query_string": query,
        "headers": [],
    }


def _fastapi_endpoint(app: Any, scope: dict[str, Any]) -> str | None:
    """The endpoint FastAPI's router sends ``scope`` to (the first full match)."""
    for route in app.router.routes:
        match, _child = route.matches(scope)
        if match == Match.FULL:
            return str(route.endpoint.__name__)
    return None


NS = "/api/v1/namespaces/default"


@pytest.mark.parametrize(
    ("method", "path", "query", "body", "endpoint"),
    [
        ("POST", f"{NS}/workflow-tasks/poll", b"", POLL, "poll_workflow_task"),
        ("POST", f"{NS}/workflow-tasks/complete", b"", COMPLETE_WT, "complete_workflow_task"),
        ("POST", f"{NS}/activity-tasks/poll", b"", POLL, "poll_activity_task"),
        ("POST", f"{NS}/activity-tasks/complete", b"", COMPLETE_ACT, "complete_activity_task"),
        (
            "POST",
            f"{NS}/activity-tasks/complete",
            b"return_new_workflow_task=true",
            COMPLETE_ACT,
            "complete_activity_task",
        ),
        ("POST", f"{NS}/workflows", b"", START, "start_workflow"),
        ("GET", f"{NS}/workflows/order-1/result", b"wait_s=30", None, "result"),
        # workflow ids may hold slashes, and even end in /result
        ("GET", f"{NS}/workflows/a/b/result/result", b"run_id=x", None, "result"),
        ("GET", f"{NS}/workflows/schedule/daily-2026-01-01T00:00:00Z/result", b"", None, "result"),
    ],
)
def test_a_hot_route_is_taken_where_fastapi_routes_the_same_endpoint(
    method: str, path: str, query: bytes, body: Any, endpoint: str
) -> None:
    app, hot = _app_and_routes()
    scope = _scope(method, path, query)
    assert _fastapi_endpoint(app, scope) == endpoint
    assert hot(scope, body, _never_receive) is not None


@pytest.mark.parametrize(
    ("method", "path", "query", "body"),
    [
        # a body the model refuses: FastAPI answers it (its typed 400)
        ("POST", f"{NS}/workflow-tasks/poll", b"", {"identity": "w1"}),
        ("POST", f"{NS}/workflows", b"", {"workflow_id": "w"}),
        ("POST", f"{NS}/workflow-tasks/complete", b"", [1, 2]),
        # query strings other than the plain, known ones
        ("POST", f"{NS}/activity-tasks/complete", b"return_new_workflow_task=yes", COMPLETE_ACT),
        ("POST", f"{NS}/activity-tasks/complete", b"a=1&a=2", COMPLETE_ACT),
        ("GET", f"{NS}/workflows/w/result", b"wait_s=121", None),
        ("GET", f"{NS}/workflows/w/result", b"wait_s=-1", None),
        ("GET", f"{NS}/workflows/w/result", b"wait_s=nan", None),
        ("GET", f"{NS}/workflows/w/result", b"run_id=a&run_id=b", None),
        # other routes and methods
        ("GET", f"{NS}/workflows/w/history", b"", None),
        ("GET", f"{NS}/workflows", b"", None),
        ("PUT", f"{NS}/workflows", b"", START),
        ("POST", f"{NS}/workflows/w/signal", b"", {"signal_name": "s"}),
        ("POST", "/api/v1/namespaces/a/b/workflow-tasks/poll", b"", POLL),
    ],
)
def test_anything_else_is_left_to_fastapi(method: str, path: str, query: bytes, body: Any) -> None:
    _app, hot = _app_and_routes()
    assert hot(_scope(method, path, query), body, _never_receive) is None


async def _never_receive() -> Any:
    raise AssertionError("the hot routes do not read the body again")
