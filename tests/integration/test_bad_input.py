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
