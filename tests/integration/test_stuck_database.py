"""Ordinary requests to a region whose database is stuck (not down) answer a
typed 503 UNAVAILABLE within the server's bounds, as /healthz does, where
they waited until their client gave up: a pool whose every connection is
held, sessions stopped mid-flight (a frozen host), a lock a session never
lets go of. What was stored is unchanged."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from tests.conftest import PgCluster, Region, one_region
from tests.helpers import eventually
from tests.integration.test_bad_input import snapshot, start_body

pytestmark = pytest.mark.integration

ACQUIRE_S = 1.0
STATEMENT_S = 2.0
#: The most one answer may take: a statement's bound, then giving its
#: connection back within the acquire's bound, and some slack.
ANSWER_WITHIN_S = STATEMENT_S + ACQUIRE_S + 3.0


@pytest.fixture
async def bounded_region(pg: PgCluster, template_db: str, tmp_path: Path) -> AsyncIterator[Region]:
    async with one_region(
        pg,
        template_db,
        tmp_path,
        db_acquire_timeout_s=ACQUIRE_S,
        db_statement_timeout_s=STATEMENT_S,
    ) as r:
        yield r


async def timed(call: httpx.Response | object) -> tuple[httpx.Response, float]:
    began = time.monotonic()
    answer = await call  # type: ignore[misc]
    return answer, time.monotonic() - began


def assert_unavailable(answer: httpx.Response, took: float) -> None:
    assert answer.status_code == 503, answer.text
    error = answer.json()["error"]
    assert error["code"] == "UNAVAILABLE" and error["retryable"] is True, error
    assert "database" in error["message"]
    assert took < ANSWER_WITHIN_S, took


async def answers(http: httpx.AsyncClient, url: str) -> bool:
    return (await http.get(url)).status_code == 200


async def test_requests_answer_503_when_no_connection_frees(bounded_region: Region) -> None:
    region = bounded_region
    base = f"{region.url}/api/v1/namespaces"
    async with httpx.AsyncClient(timeout=60) as http:
        assert (await http.post(base, json={"name": "ns1"})).status_code == 201
        before = await snapshot(region.dsn)
        pool = region.store.pool
        held = [await pool.acquire() for _ in range(pool.get_max_size())]
        try:
            assert_unavailable(*await timed(http.get(f"{base}/ns1")))
            assert_unavailable(
                *await timed(http.post(f"{base}/ns1/workflows", json=start_body("w")))
            )
        finally:
            for conn in held:
                await pool.release(conn)
        await eventually(lambda: answers(http, f"{base}/ns1"), what="describe answers again")
    assert await snapshot(region.dsn) == before


@contextlib.asynccontextmanager
async def backends_stopped(region: Region) -> AsyncIterator[None]:
    """The database's postmaster and every session of the region's database
    stopped (SIGSTOP), as a frozen database host leaves them: connected, and
    never answering, nor taking new sessions."""
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
    postmaster = int((region.pg.data_dir / "postmaster.pid").read_text().split()[0])
    pids.insert(0, postmaster)
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)


async def test_requests_answer_503_while_the_sessions_are_stopped(bounded_region: Region) -> None:
    region = bounded_region
    base = f"{region.url}/api/v1/namespaces"
    async with httpx.AsyncClient(timeout=60) as http:
        assert (await http.post(base, json={"name": "ns1"})).status_code == 201
        before = await snapshot(region.dsn)
        async with backends_stopped(region):
            for _ in range(3):  # each answers in time, none waits behind another
                assert_unavailable(*await timed(http.get(f"{base}/ns1")))
            assert_unavailable(
                *await timed(http.post(f"{base}/ns1/workflows", json=start_body("w")))
            )
        await eventually(lambda: answers(http, f"{base}/ns1"), what="describe answers again")
    assert await snapshot(region.dsn) == before


async def test_a_write_behind_a_lock_never_let_go_answers_503(bounded_region: Region) -> None:
    region = bounded_region
    base = f"{region.url}/api/v1/namespaces"
    async with httpx.AsyncClient(timeout=60) as http:
        assert (await http.post(base, json={"name": "ns1"})).status_code == 201
        started = await http.post(f"{base}/ns1/workflows", json=start_body("w"))
        assert started.status_code in (200, 201), started.text
        before = await snapshot(region.dsn)
        holder = await asyncpg.connect(region.dsn)
        try:
            # a session that took the run's row and then hangs (an operator's
            # forgotten transaction, a stuck batch job)
            txn = holder.transaction()
            await txn.start()
            await holder.execute(
                "SELECT 1 FROM executions WHERE namespace = 'ns1' AND workflow_id = 'w' FOR UPDATE"
            )
            signal_body = {"signal_name": "go", "request_id": "sig-1"}
            assert_unavailable(
                *await timed(http.post(f"{base}/ns1/workflows/w/signal", json=signal_body))
            )
            assert_unavailable(
                *await timed(http.post(f"{base}/ns1/workflows/w/terminate", json={}))
            )
            await txn.rollback()
        finally:
            await holder.close()
        assert await snapshot(region.dsn) == before
        again = await http.post(f"{base}/ns1/workflows/w/signal", json=signal_body)
        assert again.status_code == 200, again.text
