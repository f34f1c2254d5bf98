"""A request that meets a database outage is answered with a typed 503 and
logged in one line, where the server logged a whole traceback for each
(`Exception in ASGI application`), burying the log while the outage lasted."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest

from tests.conftest import Region


@contextlib.asynccontextmanager
async def database_closed(region: Region) -> AsyncIterator[None]:
    """The region's database closed to new sessions and its sessions ended,
    as a restart of PostgreSQL leaves it for a while."""
    conn = await asyncpg.connect(region.pg.dsn("postgres"))
    try:
        await conn.execute(f'ALTER DATABASE "{region.dbname}" ALLOW_CONNECTIONS false')
        await conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1",
            region.dbname,
        )
        yield
    finally:
        await conn.execute(f'ALTER DATABASE "{region.dbname}" ALLOW_CONNECTIONS true')
        await conn.close()


async def test_requests_in_an_outage_log_one_line_each(
    region: Region, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    asked = ["/healthz", "/metrics", "/api/v1/namespaces", "/api/v1/namespaces/default/workflows"]
    async with database_closed(region), httpx.AsyncClient() as http:
        caplog.clear()
        for path in asked:
            answer = await http.get(f"{region.url}{path}")
            assert answer.status_code == 503, (path, answer.text)
            assert answer.json()["error"]["code"] == "UNAVAILABLE"
        served = [r for r in caplog.records if not r.name.startswith("httpx")]
    # the pool's own attempts to reconnect are one line each too
    assert not [(r.name, r.getMessage()) for r in served if r.exc_info], "a traceback was logged"
    lines = [r.getMessage() for r in served if r.name == "baton.api"]
    for path in ("/healthz", "/metrics", "/api/v1/namespaces"):
        assert any(f"GET {path}: region database unavailable" in line for line in lines), lines
    assert all("\n" not in line for line in lines)
