"""The HTTP API as /openapi.json documents it: real answers checked against the document.

A client generated from the document, or a test that validates answers by it,
must find every status it gets documented, the content type it gets
documented, and a body the documented schema takes. A workflow is driven
through a worker so that the answers carry real runs, activities and pages.
HTTP's own rules too: a GET resource answers HEAD, and a 405 names what the
resource takes (``Allow``).
"""

from __future__ import annotations

import asyncio
import base64
import re
from datetime import timedelta
from typing import Any

import httpx
import jsonschema_rs
import pytest

from tests.conftest import Region
from worker import Client, Worker, activity, workflow

pytestmark = pytest.mark.integration


def _json(value: object) -> dict[str, Any]:
    data = base64.b64encode(repr(value).replace("'", '"').encode()).decode()
    return {"metadata": {"encoding": "json/plain"}, "data": data}


@activity.defn
async def contract_echo(text: str) -> str:
    activity.heartbeat("half")
    return "echo:" + text


@workflow.defn
class ContractFlow:
    def __init__(self) -> None:
        self.total = 0
        self.done = False

    @workflow.run
    async def run(self, text: str) -> str:
        out = await workflow.execute_activity(
            contract_echo, text, start_to_close_timeout=timedelta(seconds=10)
        )
        await workflow.wait_condition(lambda: self.done)
        return f"{out}:{self.total}"

    @workflow.signal
    def add(self, n: int) -> None:
        self.total += n

    @workflow.signal
    def finish(self) -> None:
        self.done = True

    @workflow.query
    def total_now(self) -> int:
        return self.total

    @workflow.update
    def add_now(self, n: int) -> int:
        self.total += n
        return self.total


@workflow.defn
class ContractWaits:
    @workflow.run
    async def run(self) -> str:
        # an activity no worker takes: pending, so the activity routes reach it
        return await workflow.execute_activity(
            contract_echo,
            "never",
            task_queue="contract-nobody",
            start_to_close_timeout=timedelta(seconds=10),
        )


class Contract:
    """Sends requests and checks each answer against the server's document."""

    def __init__(self, http: httpx.AsyncClient, doc: dict[str, Any]) -> None:
        self.http = http
        self.doc = doc
        self.problems: list[str] = []
        self.checked = 0
        #: operations whose 2xx answer the document gives no schema for
        self.unshaped: set[str] = set()

    def operation(self, method: str, path: str) -> dict[str, Any] | None:
        for template, operations in self.doc["paths"].items():
            pattern = "^" + re.sub(r"\{[^}]+\}", "[^/]+", template) + "$"
            if re.match(pattern, path) and method.lower() in operations:
                found: dict[str, Any] = operations[method.lower()]
                return found
        return None

    async def __call__(self, method: str, path: str, **kw: Any) -> httpx.Response:
        answer = await self.http.request(method, path, **kw)
        self.check(method, path.split("?")[0], answer)
        return answer

    def check(self, method: str, path: str, answer: httpx.Response) -> None:
        self.checked += 1
        said = f"{method} {path} answered {answer.status_code}"
        operation = self.operation(method, path)
        if operation is None:
            self.problems.append(f"{said}: no such operation in the document")
            return
        responses = operation["responses"]
        documented = responses.get(str(answer.status_code))
        if documented is None and answer.status_code >= 400:
            documented = responses.get("default")
        if documented is None:
            self.problems.append(f"{said}: status not documented ({sorted(responses)})")
            return
        content = documented.get("content", {})
        kind = answer.headers.get("content-type", "").split(";")[0]
        if kind not in content:
            self.problems.append(f"{said}: content type {kind} not documented ({list(content)})")
            return
        schema = content[kind].get("schema")
        if kind == "application/json" and answer.status_code < 300 and not schema:
            self.unshaped.add(f"{method} {path}")
        if kind != "application/json" or not schema:
            return
        validator = jsonschema_rs.validator_for({**schema, "components": self.doc["components"]})
        for error in list(validator.iter_errors(answer.json()))[:3]:
            self.problems.append(f"{said}: {error.message[:300]} at {list(error.instance_path)}")


async def test_real_answers_match_the_document(region: Region, client: Client) -> None:
    ns = "/api/v1/namespaces/default"
    wf = f"{ns}/workflows/contract-1"
    async with httpx.AsyncClient(base_url=region.url, timeout=30) as http:
        doc = (await http.get("/openapi.json")).json()
        call = Contract(http, doc)
        async with Worker(
            client,
            task_queue="contract",
            workflows=[ContractFlow, ContractWaits],
            activities=[contract_echo],
        ):
            start = {
                "workflow_id": "contract-1",
                "workflow_type": "ContractFlow",
                "task_queue": "contract",
                "input": [_json("hi")],
            }
            assert (await call("POST", f"{ns}/workflows", json=start)).status_code == 201
            again = {**start, "id_conflict_policy": "use_existing"}
            assert (await call("POST", f"{ns}/workflows", json=again)).status_code == 200
            refused = await call("POST", f"{ns}/workflows", json=start)
            assert refused.status_code == 409
            await call("POST", f"{wf}/signal", json={"signal_name": "add", "input": [_json(2)]})
            for _ in range(100):
                described = (await call("GET", wf)).json()
                if (
                    described["pending_activities"] == []
                    and described["execution"]["history_length"] > 8
                ):
                    break
                await asyncio.sleep(0.1)
            query = {"query_name": "total_now", "timeout_s": 10}
            assert (await call("POST", f"{wf}/query", json=query)).status_code == 200
            update = {"name": "add_now", "input": [_json(3)], "timeout_s": 10}
            assert (await call("POST", f"{wf}/update", json=update)).status_code == 200
            run_id = described["execution"]["run_id"]
            for path in (
                wf,
                f"{wf}/history",
                f"{wf}/history?page_size=2",
                f"{wf}/buffered?run_id={run_id}",
                f"{wf}/result?wait_s=0",
                f"{ns}/workflows/nobody",
                f"{ns}/workflows",
                f"{ns}/workflows?page_size=1",
                f"{ns}/workflow-count",
                f"{ns}/search-attributes",
                f"{ns}/batches",
                f"{ns}/deployments",
                f"{ns}/schedules",
                ns,
                "/api/v1/namespaces",
                "/api/v1/cluster",
                "/healthz",
                "/metrics",
            ):
                answer = await call("GET", path)
                assert answer.status_code == (404 if "nobody" in path else 200), answer.text
            await call("POST", f"{wf}/pause", json={"reason": "look"})
            await call("POST", f"{wf}/unpause", json={})
            await call("POST", f"{wf}/signal", json={"signal_name": "finish"})
            result = await call("GET", f"{wf}/result?wait_s=20")
            assert result.json()["closed"] is True, result.text
            await call("POST", f"{ns}/workflows", json={**start, "workflow_id": "contract-2"})
            await call("POST", f"{ns}/workflows/contract-2/terminate", json={"reason": "t"})
            await call("GET", f"{ns}/workflows/contract-2/result?wait_s=5")
            await call("GET", f"{ns}/workflows/contract-2")
            # the operator routes: search attributes, batch jobs, the clock
            attribute = {"name": "ContractKey", "type": "Keyword"}
            await call("POST", f"{ns}/search-attributes", json=attribute)
            await call("POST", f"{ns}/search-attributes", json=attribute)
            await call("GET", f"{ns}/search-attributes")
            await call("DELETE", f"{ns}/search-attributes/ContractKey")
            await call("DELETE", f"{ns}/search-attributes/ContractKey")
            batch = {
                "job_id": "contract-job",
                "query": "WorkflowId = 'contract-1'",
                "operation": {"kind": "signal", "params": {"signal_name": "add"}},
                "reason": "contract",
            }
            assert (await call("POST", f"{ns}/batches", json=batch)).status_code == 201
            await call("POST", f"{ns}/batches/contract-job/stop", json={"reason": "enough"})
            for _ in range(100):
                job = (await call("GET", f"{ns}/batches/contract-job")).json()
                if job["state"] != "running":
                    break
                await asyncio.sleep(0.1)
            assert job["state"] != "running", job
            await call("POST", f"{ns}/batches/contract-job/stop", json={"reason": "again"})
            await call("GET", f"{ns}/batches")
            await call("GET", "/api/v1/clock")
            # an activity paused, unpaused and reset
            waits = {"workflow_id": "contract-w", "workflow_type": "ContractWaits"}
            await call("POST", f"{ns}/workflows", json={**waits, "task_queue": "contract"})
            for _ in range(100):
                got = (await call("GET", f"{ns}/workflows/contract-w")).json()
                if got["pending_activities"]:
                    break
                await asyncio.sleep(0.1)
            one = {"workflow_id": "contract-w", "activity_id": "1"}
            for action in ("pause", "pause", "unpause", "reset"):
                acted = await call("POST", f"{ns}/activities/{action}", json=one)
                assert acted.status_code == 200, acted.text
            # a schedule through its routes
            sched = {
                "spec": {"intervals": [{"every": 3600}]},
                "action": {"workflow_type": "ContractFlow", "task_queue": "nobody"},
            }
            made = {"schedule_id": "contract-s", "schedule": sched}
            assert (await call("POST", f"{ns}/schedules", json=made)).status_code == 201
            s = f"{ns}/schedules/contract-s"
            await call("GET", s)
            await call("GET", f"{ns}/schedules")
            await call("POST", f"{s}/pause", json={"note": "look"})
            await call("POST", f"{s}/unpause", json={"catch_up": "none"})
            await call("POST", f"{s}/trigger", json={})
            window = {"start": "2026-01-01T00:00:00Z", "end": "2026-01-01T02:00:00Z"}
            await call("POST", f"{s}/backfill", json=window)
            await call("PUT", s, json={"schedule": sched})
            await call("PUT", f"{s}-2", json={"schedule": sched, "create": True})
            await call("GET", s)
            await call("DELETE", s)
        # each page size the document allows is taken, and one past it refused
        for op_path, operation in (
            (path, ops["get"]) for path, ops in doc["paths"].items() if "get" in ops
        ):
            for param in operation.get("parameters", []):
                if param["name"] != "page_size" or "{workflow_id}" in op_path:
                    continue
                bounds = param["schema"]
                assert "minimum" in bounds and "maximum" in bounds, (op_path, bounds)
                path = op_path.replace("{namespace}", "default")
                top = await call("GET", f"{path}?page_size={bounds['maximum']}")
                assert top.status_code == 200, (path, top.text)
                past = await call("GET", f"{path}?page_size={bounds['maximum'] + 1}")
                assert past.status_code == 400, (path, past.text)
    assert call.checked >= 30
    assert call.problems == []
    # every answer above has its shape in the document
    assert not call.unshaped, call.unshaped


async def test_get_routes_answer_head_and_405_says_allow(region: Region, client: Client) -> None:
    ns = "/api/v1/namespaces/default"
    async with httpx.AsyncClient(base_url=region.url, timeout=30) as http:
        await http.post(
            f"{ns}/workflows",
            json={"workflow_id": "h-1", "workflow_type": "T", "task_queue": "nobody"},
        )
        for path in ("/api/v1/cluster", ns, f"{ns}/workflows", f"{ns}/workflows/h-1", "/healthz"):
            got = await http.get(path)
            head = await http.head(path)
            assert head.status_code == got.status_code == 200, (path, head.text)
            assert head.content == b""
            assert head.headers["content-type"] == got.headers["content-type"]
        missing = await http.head(f"{ns}/workflows/nobody")
        assert missing.status_code == 404 and missing.content == b""
        wrong = await http.delete(f"{ns}/workflows")
        assert wrong.status_code == 405
        assert wrong.json()["error"]["code"] == "METHOD_NOT_ALLOWED"
        assert wrong.headers["allow"] == "GET, POST, HEAD"
        post_only = await http.put("/api/v1/namespaces/default/workflow-tasks/complete")
        assert post_only.status_code == 405 and post_only.headers["allow"] == "POST"
        doc = (await http.get("/openapi.json")).json()
    assert not [p for p, ops in doc["paths"].items() if "head" in ops]


@workflow.defn(versioning_behavior="pinned")
class ContractPinned:
    @workflow.run
    async def run(self) -> None:
        await workflow.wait_condition(lambda: False)


async def test_deployment_answers_match_the_document(region: Region, client: Client) -> None:
    ns = "/api/v1/namespaces/default"
    dep = f"{ns}/deployments/contract"
    async with httpx.AsyncClient(base_url=region.url, timeout=30) as http:
        call = Contract(http, (await http.get("/openapi.json")).json())
        async with Worker(
            client,
            task_queue="contract-v",
            workflows=[ContractPinned],
            deployment=("contract", "1"),
        ):
            for _ in range(100):
                if (await http.get(dep)).status_code == 200:
                    break
                await asyncio.sleep(0.1)
            await call("GET", dep)
            made = await call("POST", f"{dep}/current", json={"build_id": "1"})
            assert made.status_code == 200, made.text
            await call("POST", f"{dep}/current", json={"build_id": "1"})
            await call("POST", f"{dep}/ramping", json={"percent": 0})
            start = {"workflow_id": "pinned-1", "workflow_type": "ContractPinned"}
            await call("POST", f"{ns}/workflows", json={**start, "task_queue": "contract-v"})
            pin = {"kind": "pinned", "deployment": "contract", "build_id": "1"}
            override = f"{ns}/workflows/pinned-1/versioning"
            assert (await call("POST", override, json={"override": pin})).status_code == 200
            await call("POST", override, json={"override": None})
            await call("GET", f"{ns}/deployments")
            await call("GET", dep)
    assert call.problems == []
    assert not call.unshaped, call.unshaped


async def test_every_route_documents_the_shape_of_its_answer(region: Region) -> None:
    """A route whose 2xx answer has an empty schema tells a generated client nothing."""
    async with httpx.AsyncClient(base_url=region.url, timeout=30) as http:
        doc = (await http.get("/openapi.json")).json()
    empty = []
    for path, operations in doc["paths"].items():
        for method, operation in operations.items():
            for status, answer in operation["responses"].items():
                if not status.startswith("2"):
                    continue
                for kind, body in answer.get("content", {}).items():
                    if not body.get("schema"):
                        empty.append(f"{method.upper()} {path} {status} {kind}")
    assert empty == []


async def test_document_offers_only_what_the_server_takes_and_requires_what_it_sends(
    region: Region, client: Client
) -> None:
    """A signal-with-start refuses ``wait_result_s``, so its body must not offer it;
    every error carries code, message, retryable and details, so all four are required."""
    ns = "/api/v1/namespaces/default"
    async with httpx.AsyncClient(base_url=region.url, timeout=30) as http:
        doc = (await http.get("/openapi.json")).json()
        sws = {
            "workflow_id": "sws-wait",
            "workflow_type": "T",
            "task_queue": "nobody",
            "signal_name": "go",
            "wait_result_s": 1,
        }
        refused = await http.post(f"{ns}/signal-with-start", json=sws)
    assert refused.status_code == 400, refused.text
    assert set(refused.json()["error"]) == {"code", "message", "retryable", "details"}
    schemas = doc["components"]["schemas"]
    assert "wait_result_s" not in schemas["SignalWithStartRequest"]["properties"]
    assert "wait_result_s" in schemas["StartWorkflowRequest"]["properties"]
    assert set(schemas["ErrorBody"]["required"]) == {"code", "message", "retryable", "details"}
