"""/healthz and /metrics answer within their own bounds: a database that
does not answer makes them 503 UNAVAILABLE with the reason, where the probe
hung until the prober gave up (a load balancer's, Kubernetes' or Prometheus'
timeout, with no reason)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import AsyncIterator

import asyncpg
import httpx

from store.health import HEALTH_CHECK_TIMEOUT_S, METRICS_TIMEOUT_S
from tests.conftest import Region
from tests.helpers import eventually


async def healthz(http: httpx.AsyncClient, region: Region) -> tuple[httpx.Response, float]:
    began = time.monotonic()
    answer = await http.get(f"{region.url}/healthz", timeout=HEALTH_CHECK_TIMEOUT_S + 8)
    return answer, time.monotonic() - began


async def answers_ok(http: httpx.AsyncClient, region: Region) -> bool:
    answer, _ = await healthz(http, region)
    return answer.status_code == 200


async def test_healthz_answers_503_when_no_connection_frees(region: Region) -> None:
    pool = region.store.pool
    held = [await pool.acquire() for _ in range(pool.get_max_size())]
    try:
        async with httpx.AsyncClient() as http:
            answer, took = await healthz(http, region)
            assert answer.status_code == 503, answer.text
            error = answer.json()["error"]
            assert error["code"] == "UNAVAILABLE" and error["retryable"] is True
            assert "did not answer a health check" in error["message"]
            assert took < HEALTH_CHECK_TIMEOUT_S + 2
            began = time.monotonic()
            answer = await http.get(f"{region.url}/metrics", timeout=METRICS_TIMEOUT_S + 8)
            assert answer.status_code == 503, answer.text
            assert "did not answer the metrics' reads" in answer.json()["error"]["message"]
            assert time.monotonic() - began < METRICS_TIMEOUT_S + 2
    finally:
        for conn in held:
            await pool.release(conn)
    async with httpx.AsyncClient() as http:
        await eventually(lambda: answers_ok(http, region), what="/healthz answers 200 again")
        assert (await http.get(f"{region.url}/metrics")).status_code == 200


@contextlib.asynccontextmanager
async def backends_stopped(region: Region) -> AsyncIterator[None]:
    """Every session of the region's database stopped (SIGSTOP), as a stuck
    database host leaves them: connected, and never answering."""
    conn = await asyncpg.connect(region.dsn)
    try:
        pids = [
            r["pid"]
            for r in await conn.fetch(
                "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
                region.dbname,
            )
        ]
    finally:
        await conn.close()
    assert pids
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)


async def test_healthz_answers_503_while_the_database_is_stuck(region: Region) -> None:
    async with httpx.AsyncClient() as http, backends_stopped(region):
        for _ in range(3):  # each probe answers in time, none waits behind another
            answer, took = await healthz(http, region)
            assert answer.status_code == 503, answer.text
            assert answer.json()["error"]["code"] == "UNAVAILABLE"
            assert took < HEALTH_CHECK_TIMEOUT_S + 2
        await asyncio.sleep(0)
    async with httpx.AsyncClient() as http:
        await eventually(lambda: answers_ok(http, region), what="/healthz answers 200 again")
