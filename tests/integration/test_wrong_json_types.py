"""A number or flag of a request given as another JSON type (``true`` for a
timeout, ``"10"`` for seconds, ``"no"`` for a flag) is INVALID_ARGUMENT naming
the field, and nothing stored changes: it was taken as 1 second, 10 seconds,
one attempt or false, a run with a timeout or a retry policy the caller never
wrote."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import Region
from tests.integration.test_bad_input import expect_error, snapshot, start_body
from worker import Client
from worker.wire import ErrorCode

pytestmark = pytest.mark.integration


def start_with(workflow_id: str, **fields: Any) -> dict[str, Any]:
    return {**start_body(workflow_id), **fields}


async def test_numbers_and_flags_of_another_json_type_are_refused(
    region: Region, client: Client
) -> None:
    await client.start_workflow("ThreeSteps", 1, id="running-1", task_queue="q")
    ns = f"{region.url}/api/v1/namespaces/default"
    wf = f"{ns}/workflows/running-1"
    cases: list[tuple[str, dict[str, Any], str]] = [
        (f"{ns}/workflows", start_with("w1", task_timeout_s=True), "task_timeout_s"),
        (f"{ns}/workflows", start_with("w2", run_timeout_s="10"), "run_timeout_s"),
        (f"{ns}/workflows", start_with("w3", execution_timeout_s=True), "execution_timeout_s"),
        (f"{ns}/workflows", start_with("w4", wait_result_s="1"), "wait_result_s"),
        (
            f"{ns}/workflows",
            start_with("w5", retry_policy={"maximum_attempts": True}),
            "retry_policy.maximum_attempts",
        ),
        (
            f"{ns}/workflows",
            start_with("w6", retry_policy={"initial_interval_s": "2"}),
            "retry_policy.initial_interval_s",
        ),
        (
            f"{ns}/signal-with-start",
            start_with("w7", signal_name="s", run_timeout_s=True),
            "run_timeout_s",
        ),
        (f"{wf}/query", {"query_name": "q", "timeout_s": True}, "timeout_s"),
        (f"{wf}/update", {"name": "u", "timeout_s": "5"}, "timeout_s"),
        (f"{wf}/reset", {"event_id": "3", "reason": "r"}, "event_id"),
        (
            f"{ns}/batches",
            {
                "query": "WorkflowType = 'ThreeSteps'",
                "operation": {"kind": "terminate"},
                "reason": "r",
                "rps": "5",
            },
            "rps",
        ),
        (
            f"{ns}/activities/pause",
            {"workflow_id": "running-1", "activity_id": "1", "keep_paused": "no"},
            "keep_paused",
        ),
        (
            f"{ns}/schedules",
            {
                "schedule_id": "s1",
                "schedule": {
                    "spec": {"intervals": [{"every": "1h"}]},
                    "action": {"workflow_type": "T", "task_queue": "q"},
                },
                "paused": "false",
            },
            "paused",
        ),
        (f"{ns}/workflow-tasks/poll", {"task_queue": "q", "wait_s": "0"}, "wait_s"),
        (f"{ns}/activity-tasks/poll", {"task_queue": "q", "wait_s": 0, "sticky": 1}, "sticky"),
    ]
    before = await snapshot(region.dsn)
    async with httpx.AsyncClient(timeout=30) as http:
        for url, body, field in cases:
            answer = await http.post(url, json=body)
            error = await expect_error(answer, 400, ErrorCode.INVALID_ARGUMENT)
            assert field in error["message"], (url, body, error)
    assert await snapshot(region.dsn) == before
