"""A schedule's action input is checked as a start's is, before anything is stored.

A schedule keeps its input as sent and starts a run with it at every fire: a
payload no worker could decode (not base64, not a payload at all) or over the
server's limit failed every run it started, or every start. It is refused
with the error a start gives, and nothing stored changes.
"""

from __future__ import annotations

import base64

import httpx
import pytest

from tests.conftest import Region
from worker import Client

pytestmark = pytest.mark.integration
GOOD = {"metadata": {"encoding": "json/plain"}, "data": base64.b64encode(b"1").decode()}


def definition(*inputs: object) -> dict[str, object]:
    return {
        "spec": {"intervals": [{"every": "1h"}]},
        "action": {"workflow_type": "Report", "task_queue": "reports", "input": list(inputs)},
    }


@pytest.mark.parametrize(
    ("bad", "code", "says"),
    [
        ({"metadata": {"encoding": "json/plain"}, "data": "!!"}, "INVALID_ARGUMENT", "base64"),
        # no payload at all: the definition's own check names it
        (5, "INVALID_ARGUMENT", "action.input.1"),
        ({"metadata": {"encoding": 7}, "data": ""}, "INVALID_ARGUMENT", "action.input.1"),
        (
            {"metadata": {}, "data": base64.b64encode(b"x" * (2 * 1024 * 1024 + 10)).decode()},
            "PAYLOAD_TOO_LARGE",
            "over this server's limit",
        ),
    ],
)
async def test_a_schedule_whose_input_no_worker_could_take_is_refused_and_nothing_changes(
    client: Client, region: Region, bad: object, code: str, says: str
) -> None:
    # (the client fixture makes the default namespace)
    base = f"{region.url}/api/v1/namespaces/default/schedules"
    async with httpx.AsyncClient(timeout=30) as http:
        r = await http.post(base, json={"schedule_id": "s-bad", "schedule": definition(GOOD, bad)})
        assert r.status_code in (400, 413), r.text
        assert r.json()["error"]["code"] == code and says in r.json()["error"]["message"]
        assert (await http.get(f"{base}/s-bad")).status_code == 404  # nothing created
        r = await http.post(base, json={"schedule_id": "s-ok", "schedule": definition(GOOD)})
        assert r.status_code == 201, r.text
        before = (await http.get(f"{base}/s-ok")).json()
        r = await http.put(f"{base}/s-ok", json={"schedule": definition(GOOD, bad)})
        assert r.json()["error"]["code"] == code, r.text
        after = (await http.get(f"{base}/s-ok")).json()
        assert after["schedule"] == before["schedule"]  # the update changed nothing
