"""Bad input gets a typed error with a stable code, and nothing stored changes."""

from __future__ import annotations

import base64
from typing import Any

import asyncpg
import httpx
import orjson
import pytest

from tests.conftest import Region
from worker import Client
from worker.errors import TaskNotFoundError
from worker.wire import ErrorCode

pytestmark = pytest.mark.integration

TABLES = [
    "namespaces",
    "executions",
    "current_executions",
    "history_events",
    "activities",
    "timers",
    "tasks",
    "outbox",
    "workflow_updates",
    "queries",
]


async def snapshot(dsn: str) -> dict[str, str]:
    """A checksum of every row of every table: equal snapshots mean nothing changed."""
    conn = await asyncpg.connect(dsn)
    try:
        out = {}
        for table in TABLES:
            out[table] = await conn.fetchval(
                f"SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) "
                f"FROM {table} t"
            )
        return out
    finally:
        await conn.close()


def start_body(workflow_id: str, payload: bytes = b'"x"') -> dict[str, Any]:
    return {
        "workflow_id": workflow_id,
        "workflow_type": "ThreeSteps",
        "task_queue": "q",
        "input": [
            {"metadata": {"encoding": "json/plain"}, "data": base64.b64encode(payload).decode()}
        ],
    }


async def expect_error(resp: httpx.Response, status: int, code: ErrorCode) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    body = resp.json()["error"]
    assert body["code"] == code.value
    assert body["message"]
    return body  # type: ignore[no-any-return]


async def test_bad_requests_are_rejected_with_codes_and_change_nothing(
    region: Region,
    client: Client,
) -> None:
    await client.start_workflow("ThreeSteps", 1, id="running-1", task_queue="q")
    before = await snapshot(region.dsn)
    base = f"{region.url}/api/v1/namespaces"
    async with httpx.AsyncClient(timeout=30) as http:
        # unknown namespace
        r = await http.post(f"{base}/nope/workflows", json=start_body("w-1"))
        body = await expect_error(r, 404, ErrorCode.NAMESPACE_NOT_FOUND)
        assert "baton namespace create nope" in body["message"]
        # malformed JSON
        r = await http.post(
            f"{base}/default/workflows",
            content=b'{"workflow_id": "w-2",',
            headers={"content-type": "application/json"},
        )
        await expect_error(r, 400, ErrorCode.MALFORMED_REQUEST)
        # well-formed JSON of the wrong shape
        r = await http.post(f"{base}/default/workflows", json={"workflow_id": ""})
        body = await expect_error(r, 400, ErrorCode.INVALID_ARGUMENT)
        assert "workflow_type" in body["message"]
        # a payload over the 2 MiB default limit
        big = orjson.dumps("x" * (2 * 1024 * 1024 + 10))
        r = await http.post(f"{base}/default/workflows", json=start_body("w-3", big))
        body = await expect_error(r, 413, ErrorCode.PAYLOAD_TOO_LARGE)
        assert body["details"]["limit"] == 2 * 1024 * 1024
        # a signal whose payload is too large is rejected the same way
        r = await http.post(
            f"{base}/default/workflows/running-1/signal",
            json={"signal_name": "s", "input": start_body("x", big)["input"]},
        )
        await expect_error(r, 413, ErrorCode.PAYLOAD_TOO_LARGE)
        # starting a workflow id that is already running
        r = await http.post(f"{base}/default/workflows", json=start_body("running-1"))
        body = await expect_error(r, 409, ErrorCode.WORKFLOW_ALREADY_STARTED)
        assert body["details"]["run_id"]
        # unknown task tokens: garbage, and well-formed but naming no open task
        r = await http.post(
            f"{base}/default/workflow-tasks/complete",
            json={"task_token": "not-a-token", "commands": []},
        )
        await expect_error(r, 404, ErrorCode.TASK_NOT_FOUND)
        forged = base64.urlsafe_b64encode(
            orjson.dumps(
                ["wf", "default", "running-1", "00000000-0000-0000-0000-000000000000", "2", 3]
            )
        ).decode()
        r = await http.post(
            f"{base}/default/workflow-tasks/complete",
            json={
                "task_token": forged,
                "commands": [{"type": "CompleteWorkflow", "attributes": {"result": None}}],
            },
        )
        await expect_error(r, 404, ErrorCode.TASK_NOT_FOUND)
        r = await http.post(f"{base}/default/activity-tasks/complete", json={"task_token": forged})
        await expect_error(r, 404, ErrorCode.TASK_NOT_FOUND)
        # signalling a workflow that does not exist
        r = await http.post(f"{base}/default/workflows/ghost/signal", json={"signal_name": "s"})
        await expect_error(r, 404, ErrorCode.WORKFLOW_NOT_FOUND)
    assert await snapshot(region.dsn) == before


async def test_sdk_raises_typed_errors(client: Client) -> None:
    handle = await client.start_workflow("ThreeSteps", 1, id="sdk-1", task_queue="q")
    with pytest.raises(TaskNotFoundError) as err:
        await client.call(
            "POST", "/api/v1/namespaces/default/activity-tasks/heartbeat", {"task_token": "bogus"}
        )
    assert err.value.code == "TASK_NOT_FOUND"
    assert (await handle.describe())["execution"]["status"] == "running"


# --------------------------------------------------------------------------- storable input

NS = "/api/v1/namespaces/default"
DEEP = {"a": None}
for _ in range(299):
    DEEP = {"a": DEEP}

#: (what, method, path, raw body or JSON body, query params): each once answered
#: 500 with a database or encoder message.
UNSTORABLE: list[tuple[str, str, str, Any, dict[str, str] | None]] = [
    ("NUL in a workflow id (body)", "POST", f"{NS}/workflows", start_body("a\x00b"), None),
    (
        "NUL in a workflow id (path)",
        "POST",
        f"{NS}/workflows/a%00b/signal",
        {"signal_name": "s"},
        None,
    ),
    (
        "NUL in a signal name",
        "POST",
        f"{NS}/signal-with-start",
        {**start_body("swz"), "signal_name": "s\x00"},
        None,
    ),
    (
        "NUL in a memo key",
        "POST",
        f"{NS}/workflows",
        {**start_body("m1"), "memo": {"k\x00": 1}},
        None,
    ),
    (
        "NUL in a namespace description",
        "POST",
        "/api/v1/namespaces",
        {"name": "nul-desc", "description": "a\x00b"},
        None,
    ),
    ("NUL in a list filter", "GET", f"{NS}/workflows", None, {"workflow_id_prefix": "a\x00"}),
    (
        "a lone surrogate in a memo",
        "POST",
        f"{NS}/workflows",
        b'{"workflow_id": "s1", "workflow_type": "T", "task_queue": "q", "memo": {"k": "\\ud800"}}',
        None,
    ),
    ("a memo nested 300 deep", "POST", f"{NS}/workflows", {**start_body("m2"), "memo": DEEP}, None),
    (
        "an integer beyond 64 bits in a memo",
        "POST",
        f"{NS}/workflows",
        {**start_body("m3"), "memo": {"n": 2**70}},
        None,
    ),
    (
        "NaN in a memo",
        "POST",
        f"{NS}/workflows",
        b'{"workflow_id": "n1", "workflow_type": "T", "task_queue": "q", "memo": {"n": NaN}}',
        None,
    ),
    (
        "run_timeout_s of 1e15",
        "POST",
        f"{NS}/workflows",
        {**start_body("rt"), "run_timeout_s": 1e15},
        None,
    ),
    (
        "from_event_id of 2^63",
        "GET",
        f"{NS}/workflows/x/history",
        None,
        {"from_event_id": str(2**63)},
    ),
    (
        "a list bound past year 9999 in UTC",
        "GET",
        f"{NS}/workflows",
        None,
        {"started_after": "9999-12-31T23:59:59.999999-23:59"},
    ),
    (
        "a list bound before year 1 in UTC",
        "GET",
        f"{NS}/workflows",
        None,
        {"started_before": "0001-01-01T00:00:00+14:00"},
    ),
    ("malformed JSON", "POST", f"{NS}/workflows", b'{"workflow_id": ', None),
    ("JSON nested 5000 deep", "POST", f"{NS}/workflows", b"[" * 5000 + b"]" * 5000, None),
    (
        "an empty request id",
        "POST",
        f"{NS}/workflows",
        {**start_body("e1"), "request_id": ""},
        None,
    ),
    (
        "a page token with a year-1 time",
        "GET",
        f"{NS}/workflows",
        None,
        {
            "page_token": base64.urlsafe_b64encode(
                orjson.dumps(
                    ["0001-01-01T00:00:00+14:00", "w", "00000000-0000-0000-0000-000000000000"]
                )
            ).decode()
        },
    ),
    (
        "a command with a list for an activity id",
        "POST",
        f"{NS}/workflow-tasks/complete",
        {
            "task_token": "x",
            "commands": [
                {
                    "type": "ScheduleActivity",
                    "attributes": {"activity_id": [1], "activity_type": "a"},
                }
            ],
        },
        None,
    ),
    (
        "an input whose data is not base64",
        "POST",
        f"{NS}/workflows",
        {**start_body("b64"), "input": [{"metadata": {"encoding": "json/plain"}, "data": "!!x"}]},
        None,
    ),
    (
        "a signal-with-start input whose base64 is unpadded",
        "POST",
        f"{NS}/signal-with-start",
        {**start_body("b64s"), "signal_name": "s", "signal_input": [{"data": "eA"}]},
        None,
    ),
    ("an unknown route", "GET", "/api/v1/nowhere", None, None),
    ("a method a route does not take", "DELETE", f"{NS}/workflows", None, None),
]


@pytest.mark.parametrize(
    ("what", "method", "path", "body", "params"), UNSTORABLE, ids=[u[0] for u in UNSTORABLE]
)
async def test_input_that_cannot_be_stored_gets_a_typed_4xx_and_changes_nothing(
    region: Region,
    client: Client,
    what: str,
    method: str,
    path: str,
    body: Any,
    params: dict[str, str] | None,
) -> None:
    before = await snapshot(region.dsn)
    async with httpx.AsyncClient(base_url=region.url, timeout=10) as http:
        if isinstance(body, bytes):
            resp = await http.request(
                method,
                path,
                content=body,
                params=params,
                headers={"content-type": "application/json"},
            )
        else:
            resp = await http.request(method, path, json=body, params=params)
    assert 400 <= resp.status_code < 500, f"{what}: {resp.status_code} {resp.text[:300]}"
    error = resp.json()["error"]
    assert set(error) == {"code", "message", "retryable", "details"}
    assert error["code"] in {c.value for c in ErrorCode} and error["message"]
    assert await snapshot(region.dsn) == before, what


async def test_signal_with_start_answers_201_when_it_starts_a_run(
    region: Region, client: Client
) -> None:
    """As a start answers: 201 for a new run, 200 when it signalled a running one."""
    sws = {**start_body("sws-status"), "signal_name": "s"}
    async with httpx.AsyncClient(base_url=region.url, timeout=10) as http:
        first = await http.post(f"{NS}/signal-with-start", json=sws)
        assert first.status_code == 201 and first.json()["started"] is True, first.text
        again = await http.post(f"{NS}/signal-with-start", json=sws)
        assert again.status_code == 200 and again.json()["started"] is False, again.text
        assert again.json()["run_id"] == first.json()["run_id"]


async def test_health_answers_get_and_head(region: Region) -> None:
    """Load balancers probe with HEAD as often as with GET."""
    async with httpx.AsyncClient(base_url=region.url, timeout=10) as http:
        got = await http.get("/healthz")
        head = await http.head("/healthz")
    assert got.status_code == 200 and got.json()["ok"] is True, got.text
    assert head.status_code == 200 and head.content == b"", head.text


async def test_empty_request_ids_never_make_a_start_fail_forever(
    region: Region, client: Client
) -> None:
    # Was: a start with "", a terminate, another start with "" (a second run),
    # and from then on every start of that id with "" answered 500.
    async with httpx.AsyncClient(base_url=region.url, timeout=10) as http:
        for _ in range(3):
            r = await http.post(f"{NS}/workflows", json={**start_body("rid"), "request_id": ""})
            assert r.status_code == 400 and r.json()["error"]["code"] == "INVALID_ARGUMENT"
        r = await http.post(f"{NS}/workflows", json={**start_body("rid"), "request_id": "r1"})
        assert r.status_code == 201
        r = await http.post(f"{NS}/workflows", json={**start_body("rid"), "request_id": "r1"})
        assert r.status_code == 200 and r.json()["started"] is False


@pytest.mark.parametrize("update_id", ["u" * 10_000, ""], ids=["10,000 characters", "empty"])
async def test_an_update_id_that_is_empty_or_too_long_is_refused_at_once(
    region: Region, client: Client, update_id: str
) -> None:
    """Like a request id, an update id is 1 to 256 characters: the update is
    refused before it reaches the run, which keeps nothing of it."""
    await client.start_workflow("Nobody", id="upd-id", task_queue="no-worker-polls-this")
    before = await snapshot(region.dsn)
    async with httpx.AsyncClient(base_url=region.url, timeout=10) as http:
        resp = await http.post(
            f"{NS}/workflows/upd-id/update",
            json={"update_id": update_id, "name": "add", "timeout_s": 1},
        )
    assert resp.status_code == 400, resp.text[:300]
    assert resp.json()["error"]["code"] == "INVALID_ARGUMENT"
    assert await snapshot(region.dsn) == before


async def test_openapi_documents_the_errors_and_statuses_the_routes_answer(
    region: Region,
) -> None:
    """A client generated from /openapi.json must expect what the server sends:
    bad input is a 400 in the typed error shape (never FastAPI's 422 with its
    ``detail`` list), and a start answers 201 for a new run."""
    async with httpx.AsyncClient(timeout=30) as http:
        doc = (await http.get(f"{region.url}/openapi.json")).json()
        bad = await http.post(
            f"{region.url}/api/v1/namespaces/default/workflows", json={"workflow_id": ""}
        )
    await expect_error(bad, 400, ErrorCode.INVALID_ARGUMENT)
    error_ref = "#/components/schemas/ErrorResponse"
    assert "HTTPValidationError" not in doc["components"]["schemas"]
    for path, operations in doc["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            where = f"{method.upper()} {path}"
            assert "422" not in responses, where
            for status in ("400", "default"):
                schema = responses[status]["content"]["application/json"]["schema"]
                assert schema == {"$ref": error_ref}, where
    error = doc["components"]["schemas"]["ErrorResponse"]
    assert error["required"] == ["error"]
    start = doc["paths"]["/api/v1/namespaces/{namespace}/workflows"]["post"]["responses"]
    assert {"200", "201"} <= set(start)
    assert start["201"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/StartWorkflowResponse"
    }


async def test_a_request_id_of_another_kind_of_request_is_refused_not_taken_as_done(
    region: Region,
    client: Client,  # (creates the default namespace)
) -> None:
    """Request ids are kept per workflow id whatever the request: a terminate,
    cancel, reset, pause or start that reused a signal's id found it, did
    nothing and answered as if done (the run went on). Each is refused with
    what to do; a real retry (same kind, or a signal-with-start's) still
    answers as the first did."""
    wf = f"{region.url}/api/v1/namespaces/default/workflows"
    sig = {"signal_name": "s", "request_id": "order-1"}
    async with httpx.AsyncClient(timeout=30) as http:
        started = (await http.post(wf, json=start_body("reused"))).json()
        run_id = started["run_id"]
        assert (await http.post(f"{wf}/reused/signal", json=sig)).json()["run_id"] == run_id
        assert (await http.post(f"{wf}/reused/signal", json=sig)).json()["run_id"] == run_id
        before = await snapshot(region.dsn)
        for route, body in [
            ("terminate", {"reason": "r"}),
            ("cancel", {}),
            ("reset", {"reason": "r", "to": "first-workflow-task"}),
            ("pause", {}),
            ("unpause", {}),
        ]:
            r = await http.post(f"{wf}/reused/{route}", json={**body, "request_id": "order-1"})
            error = await expect_error(r, 400, ErrorCode.INVALID_ARGUMENT)
            assert "used by a signal" in error["message"], error
            assert error["details"] == {"request_id": "order-1", "used_by": "signal"}
        r = await http.post(wf, json={**start_body("reused"), "request_id": "order-1"})
        await expect_error(r, 400, ErrorCode.INVALID_ARGUMENT)
        assert await snapshot(region.dsn) == before
        described = (await http.get(f"{wf}/reused")).json()["execution"]
        assert described["status"] == "running"
        # a signal-with-start that signaled the running run, sent again
        sws = {**start_body("reused"), "signal_name": "s", "request_id": "sws-1"}
        for _ in range(2):
            r = await http.post(
                f"{region.url}/api/v1/namespaces/default/signal-with-start", json=sws
            )
            assert r.status_code == 200 and r.json()["run_id"] == run_id, r.text
        # and a terminate retried after it closed the run
        term = {"reason": "r", "request_id": "end-1"}
        for _ in range(2):
            r = await http.post(f"{wf}/reused/terminate", json=term)
            assert r.status_code == 200 and r.json()["run_id"] == run_id, r.text
        history = (await http.get(f"{wf}/reused/history")).json()["events"]
    kinds = [e["event_type"] for e in history]
    assert kinds.count("WorkflowExecutionSignaled") == 2
    assert kinds.count("WorkflowExecutionTerminated") == 1


async def test_a_cancel_or_terminate_reason_is_as_short_as_a_pause_reason(
    region: Region,
    client: Client,  # (creates the default namespace)
) -> None:
    """A terminate's reason becomes the run's failure message, which the
    server otherwise keeps under its limits: a reason of megabytes is refused
    as a pause's is, and the run stays as it was."""
    wf = f"{region.url}/api/v1/namespaces/default/workflows"
    async with httpx.AsyncClient(timeout=30) as http:
        await http.post(wf, json=start_body("long-reason"))
        before = await snapshot(region.dsn)
        for route in ("terminate", "cancel", "pause"):
            r = await http.post(f"{wf}/long-reason/{route}", json={"reason": "x" * 3_000_000})
            error = await expect_error(r, 400, ErrorCode.INVALID_ARGUMENT)
            assert error["details"]["problems"][0]["field"] == "reason"
        assert await snapshot(region.dsn) == before
        r = await http.post(f"{wf}/long-reason/terminate", json={"reason": "y" * 4096})
        assert r.status_code == 200, r.text


@pytest.mark.parametrize(
    ("what", "content_type", "content", "code", "hint"),
    [
        ("no body", None, b"", ErrorCode.INVALID_ARGUMENT, "{} takes the defaults"),
        ("JSON as text/plain", "text/plain", b"{}", ErrorCode.MALFORMED_REQUEST, "text/plain"),
        (
            "a form",
            "application/x-www-form-urlencoded",
            b"reason=x",
            ErrorCode.MALFORMED_REQUEST,
            "Content-Type: application/json",
        ),
        ("a JSON array", "application/json", b"[]", ErrorCode.INVALID_ARGUMENT, "a JSON object"),
        ("JSON null", "application/json", b"null", ErrorCode.INVALID_ARGUMENT, "a JSON object"),
    ],
)
async def test_a_body_that_is_no_json_object_gets_a_message_saying_what_to_send(
    region: Region,
    client: Client,
    what: str,
    content_type: str | None,
    content: bytes,
    code: ErrorCode,
    hint: str,
) -> None:
    """An integrator's POST without a body, or with the wrong Content-Type, was
    told only "body: Field required" or "Input should be a valid dictionary"."""
    await client.start_workflow("T", id="bodiless", task_queue="q")
    headers = {"content-type": content_type} if content_type else {}
    url = f"{region.url}/api/v1/namespaces/default/workflows/bodiless/terminate"
    async with httpx.AsyncClient(timeout=10) as http:
        r = await http.post(url, content=content, headers=headers)
    error = await expect_error(r, 400, code)
    assert hint in error["message"], (what, error)
    assert (await client.get_workflow_handle("bodiless").describe())["execution"][
        "status"
    ] == "running"


async def test_openapi_documents_what_the_mutating_routes_and_history_answer(
    region: Region,
    client: Client,  # (creates the default namespace)
) -> None:
    """Signal, cancel, terminate, pause and unpause answered bodies the document
    did not describe, and a history page's next_event_id (the run's, not a
    page cursor) read like one: a client paging by it skipped events."""
    wf = f"{region.url}/api/v1/namespaces/default/workflows"
    async with httpx.AsyncClient(timeout=30) as http:
        doc = (await http.get(f"{region.url}/openapi.json")).json()
        await http.post(wf, json=start_body("documented"))
        answers = {
            route: (await http.post(f"{wf}/documented/{route}", json=body)).json()
            for route, body in [
                ("signal", {"signal_name": "s"}),
                ("pause", {}),
                ("unpause", {}),
                ("cancel", {}),
                ("terminate", {}),
            ]
        }
    schemas = doc["components"]["schemas"]
    for route, answer in answers.items():
        ok = doc["paths"][f"/api/v1/namespaces/{{namespace}}/workflows/{{workflow_id}}/{route}"]
        ref = ok["post"]["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
        schema = schemas[ref.rsplit("/", 1)[1]]
        assert set(answer) == set(schema["properties"]), route
        assert set(schema["required"]) <= set(answer), route
    next_event_id = schemas["HistoryResponse"]["properties"]["next_event_id"]
    assert "not a page cursor" in next_event_id["description"]


@pytest.mark.parametrize(
    ("method", "path", "code", "hints"),
    [
        ("GET", "/api/v1/no-such-thing", ErrorCode.NOT_FOUND, ["GET /api/v1/no-such-thing"]),
        ("POST", "/api/v2/namespaces", ErrorCode.NOT_FOUND, ["/openapi.json"]),
        ("DELETE", "/api/v1/namespaces", ErrorCode.METHOD_NOT_ALLOWED, ["DELETE", "GET", "POST"]),
        ("PUT", "/healthz", ErrorCode.METHOD_NOT_ALLOWED, ["PUT /healthz", "GET"]),
    ],
)
async def test_an_unknown_route_or_method_names_what_was_asked_and_where_the_routes_are(
    region: Region, method: str, path: str, code: ErrorCode, hints: list[str]
) -> None:
    """An integrator told only "no such route: Not Found" or "this route does
    not take that HTTP method" learned neither what was wrong nor what to use."""
    async with httpx.AsyncClient(base_url=region.url, timeout=10) as http:
        r = await http.request(method, path, json={})
    error = await expect_error(r, 404 if code is ErrorCode.NOT_FOUND else 405, code)
    for hint in hints:
        assert hint in error["message"], error
