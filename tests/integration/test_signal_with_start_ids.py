"""A signal-with-start and a plain start are different requests: one that
reuses the other's request id is refused (INVALID_ARGUMENT, nothing stored),
where a signal-with-start answered ``started: false`` as a retry and its signal
was lost. A real retry of either still answers as the first did."""

from __future__ import annotations

from typing import Any

import asyncpg
import httpx
import pytest

from tests.conftest import Region
from tests.integration.test_bad_input import expect_error, snapshot, start_body
from worker import Client
from worker.wire import ErrorCode

pytestmark = pytest.mark.integration


def _sws(workflow_id: str, request_id: str) -> dict[str, Any]:
    return {**start_body(workflow_id), "signal_name": "s", "request_id": request_id}


async def test_a_signal_with_start_reusing_a_starts_request_id_is_refused(
    region: Region,
    client: Client,  # (creates the default namespace)
) -> None:
    ns = f"{region.url}/api/v1/namespaces/default"
    async with httpx.AsyncClient(timeout=30) as http:
        r = await http.post(f"{ns}/workflows", json={**start_body("a"), "request_id": "req-1"})
        assert r.status_code == 201, r.text
        before = await snapshot(region.dsn)
        r = await http.post(f"{ns}/signal-with-start", json=_sws("a", "req-1"))
        error = await expect_error(r, 400, ErrorCode.INVALID_ARGUMENT)
        assert "used by a start" in error["message"], error
        assert error["details"] == {"request_id": "req-1", "used_by": "start"}
        assert await snapshot(region.dsn) == before
        # the plain start's retry is still one
        r = await http.post(f"{ns}/workflows", json={**start_body("a"), "request_id": "req-1"})
        assert r.status_code == 200 and r.json()["started"] is False, r.text


async def test_a_start_reusing_a_signal_with_starts_request_id_is_refused(
    region: Region,
    client: Client,  # (creates the default namespace)
) -> None:
    ns = f"{region.url}/api/v1/namespaces/default"
    async with httpx.AsyncClient(timeout=30) as http:
        # one signal-with-start that started its run, one that signaled it running
        first = await http.post(f"{ns}/signal-with-start", json=_sws("b", "sws-new"))
        assert first.status_code == 201, first.text
        # a worker holds the run's workflow task: the next signal waits behind it
        poll = {"task_queue": "q", "identity": "w", "wait_s": 10}
        assert (await http.post(f"{ns}/workflow-tasks/poll", json=poll)).json()["task"]
        second = await http.post(f"{ns}/signal-with-start", json=_sws("b", "sws-running"))
        assert second.status_code == 200, second.text
        before = await snapshot(region.dsn)
        for request_id in ("sws-new", "sws-running"):
            body = {**start_body("b"), "request_id": request_id}
            r = await http.post(f"{ns}/workflows", json=body)
            error = await expect_error(r, 400, ErrorCode.INVALID_ARGUMENT)
            assert "used by a " in error["message"], error
        assert await snapshot(region.dsn) == before
        # each signal-with-start's retry is still one, and records no second signal
        for request_id in ("sws-new", "sws-running"):
            r = await http.post(f"{ns}/signal-with-start", json=_sws("b", request_id))
            assert r.status_code == 200 and r.json()["started"] is False, r.text
            assert r.json()["run_id"] == first.json()["run_id"]
        assert await snapshot(region.dsn) == before
    # one signal in history, one buffered behind the started workflow task
    kinds = [e["event_type"] for e in await client.get_workflow_handle("b").history()]
    assert kinds.count("WorkflowExecutionSignaled") == 1, kinds
    conn = await asyncpg.connect(region.dsn)
    try:
        buffered = "SELECT count(*) FROM buffered_events WHERE workflow_id = 'b'"
        assert await conn.fetchval(buffered) == 1
    finally:
        await conn.close()
