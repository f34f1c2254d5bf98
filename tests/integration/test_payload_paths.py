"""A payload the server refuses is named by its path in the request, so the
caller can tell which argument or memo entry to shrink or fix."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import Region
from worker import Client
from worker.errors import InvalidArgumentError, PayloadTooLargeError

pytestmark = pytest.mark.integration
BIG = "x" * (2 * 1024 * 1024 + 10)


async def test_a_payload_over_the_limit_is_named_by_its_path(client: Client) -> None:
    """Regression: the message said `payload in m` for memo entry m, and
    `payload in input` whichever argument it was."""
    cases = [
        (lambda: client.start_workflow("W", 1, BIG, id="p-1", task_queue="q"), "input[1]"),
        (
            lambda: client.start_workflow("W", 1, id="p-2", task_queue="q", memo={"m": BIG}),
            "memo['m']",
        ),
    ]
    for call, where in cases:
        with pytest.raises(PayloadTooLargeError) as caught:
            await call()
        assert f"payload in {where} is " in caught.value.message, caught.value
    await client.start_workflow("W", id="p-3", task_queue="q")
    with pytest.raises(PayloadTooLargeError) as caught:
        await client.get_workflow_handle("p-3").signal("s", "small", BIG)
    assert "payload in input[1] is " in caught.value.message, caught.value
    assert [r.id async for r in client.list_workflows("")] == ["p-3"]


async def test_a_payload_that_is_not_base64_is_named_by_its_path(region: Region) -> None:
    body = {
        "workflow_id": "p-4",
        "workflow_type": "W",
        "task_queue": "q",
        "memo": {
            "ok": {"metadata": {"encoding": "json/plain"}, "data": "MQ=="},
            "bad": {"metadata": {"encoding": "json/plain"}, "data": "!!x"},
        },
    }
    async with httpx.AsyncClient(base_url=region.url, timeout=10) as http:
        r = await http.post("/api/v1/namespaces/default/workflows", json=body)
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["code"] == InvalidArgumentError.code, error
    assert error["message"].startswith("payload in memo['bad']: data is not base64"), error
