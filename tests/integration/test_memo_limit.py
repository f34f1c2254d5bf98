"""A memo is held to the payload limit as a whole: a start whose memo of plain
JSON values (or of payloads each within the limit) is over it is
PAYLOAD_TOO_LARGE and nothing is stored, where it was stored, kept in the run's
row and shipped in each of its replication messages."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import PgCluster, Region, one_region
from tests.integration.test_bad_input import expect_error, snapshot, start_body
from worker.wire import ErrorCode

pytestmark = pytest.mark.integration

LIMIT = 64 * 1024


@pytest.fixture
async def small_region(pg: PgCluster, template_db: str, tmp_path: Path) -> AsyncIterator[Region]:
    async with one_region(pg, template_db, tmp_path, max_payload_bytes=LIMIT) as r:
        yield r


def payload(size: int) -> dict[str, Any]:
    data = base64.b64encode(b"x" * size).decode()
    return {"metadata": {"encoding": "binary/plain"}, "data": data}


async def test_a_memo_over_the_payload_limit_is_refused(small_region: Region) -> None:
    region = small_region
    ns = f"{region.url}/api/v1/namespaces"
    async with httpx.AsyncClient(timeout=30) as http:
        assert (await http.post(ns, json={"name": "m"})).status_code == 201
        before = await snapshot(region.dsn)
        over = [
            {"note": "x" * (LIMIT + 1)},
            {f"k{i}": payload(LIMIT // 2) for i in range(3)},
        ]
        for memo in over:
            answer = await http.post(f"{ns}/m/workflows", json={**start_body("w"), "memo": memo})
            error = await expect_error(answer, 413, ErrorCode.PAYLOAD_TOO_LARGE)
            assert "memo" in error["message"] and str(LIMIT) in error["message"]
            body = {**start_body("w"), "memo": memo, "signal_name": "s"}
            answer = await http.post(f"{ns}/m/signal-with-start", json=body)
            await expect_error(answer, 413, ErrorCode.PAYLOAD_TOO_LARGE)
        assert await snapshot(region.dsn) == before
        within = {"note": "x" * 1000, "p": payload(LIMIT // 2)}
        answer = await http.post(f"{ns}/m/workflows", json={**start_body("w"), "memo": within})
        assert answer.status_code == 201, answer.text
