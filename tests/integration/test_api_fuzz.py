"""Every route of /openapi.json fuzzed with schemathesis: no answer is a 500, every
error has the typed shape (the only 5xx left are retryable: a query no worker
answered in time, a database that is away).

A short run is part of the suite (``BATON_FUZZ_EXAMPLES`` cases per operation,
default 40); set it higher for a long run. The server is a real `baton server`
process on its own database. Long-polls are asked not to wait (``wait_s`` and
``timeout_s`` are set to zero or near it where a case has them) and the two
poll routes, which only wait, are left out.
"""

from __future__ import annotations

import asyncio
import os
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from ops.pg import PgCluster
from tests.conftest import fresh_database
from tests.helpers import free_port, server_proc, wait_healthy, write_config
from worker.wire import ErrorCode

pytestmark = pytest.mark.integration
EXAMPLES = int(os.environ.get("BATON_FUZZ_EXAMPLES", "40"))
CODES = {c.value for c in ErrorCode}


@pytest.fixture(scope="module")
def api_schema(
    pg: PgCluster, template_db: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Any]:
    tmp: Path = tmp_path_factory.mktemp("fuzz")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    cfg = write_config(
        tmp / "baton.toml", {"region-a": (port, pg.dsn(fresh_database(pg, template_db)))}
    )
    proc = server_proc(cfg, "region-a", tmp / "server.log").start()
    try:
        asyncio.run(wait_healthy(url, timeout=60, proc=proc))
        # a namespace and a run, so that cases reach past "not found"
        httpx.post(f"{url}/api/v1/namespaces", json={"name": "default"}).raise_for_status()
        httpx.post(
            f"{url}/api/v1/namespaces/default/workflows",
            json={"workflow_id": "fuzzed", "workflow_type": "T", "task_queue": "q"},
        ).raise_for_status()
        yield schemathesis.openapi.from_url(f"{url}/openapi.json")
    finally:
        proc.stop()
        log = proc.tail()
        assert "Traceback" not in log or "unexpected error" not in log, log


def _tame(case: Any) -> None:
    """Keep long-polls from waiting, and aim half the cases at the real namespace."""
    if case.query and "wait_s" in case.query:
        case.query["wait_s"] = 0
    if isinstance(case.body, dict) and (
        "timeout_s" in case.body or case.path.endswith(("/query", "/update"))
    ):
        case.body["timeout_s"] = 0.2
    if isinstance(case.body, dict) and "wait_result_s" in case.body:
        case.body["wait_result_s"] = 0
    params = case.path_parameters or {}
    if "namespace" in params and hash(str(params)) % 2 == 0:
        params["namespace"] = "default"


STATUSES: Counter[int] = Counter()


def _check(case: Any) -> None:
    _tame(case)
    response = case.call(timeout=30)
    STATUSES[response.status_code] += 1
    what = f"{case.method} {case.formatted_path} answered {response.status_code}: "
    assert response.status_code != 500, what + response.text[:500]
    if response.status_code >= 400:
        error = response.json()["error"]
        assert set(error) == {"code", "message", "retryable", "details"}, response.text
        assert error["code"] in CODES and error["message"]
        # a 5xx other than 500 is a retryable wait that ran out (a query no
        # worker answered), never a failure of the server
        assert response.status_code < 500 or error["retryable"], what + response.text


def test_no_route_answers_500_and_every_error_is_typed(api_schema: Any) -> None:
    operations = [r.ok() for r in api_schema.get_all_operations()]
    fuzzed = [op for op in operations if not op.path.endswith("-tasks/poll")]
    assert len(fuzzed) >= 20  # every route but the two polls
    for op in fuzzed:
        run = settings(
            max_examples=EXAMPLES,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )(given(case=op.as_strategy())(_check))
        run()
    print(
        f"\nfuzzed {len(fuzzed)} operations, {sum(STATUSES.values())} requests: "
        + ", ".join(f"{code}: {n}" for code, n in sorted(STATUSES.items()))
    )
