"""Every session Baton opens runs with JIT off.

PostgreSQL's JIT compiles asyncpg's type introspection, which a new connection
runs once per type it has not seen: with JIT on it takes 0.3 to 1.5 s, and the
request that met a new pool connection stalled that long."""

from __future__ import annotations

import asyncio

import pytest

from store import db
from tests.conftest import Region

pytestmark = pytest.mark.integration


async def test_the_server_pool_runs_every_session_with_jit_off(region: Region) -> None:
    pool = region.store.pool
    # hold several at once, so the pool opens connections beyond its floor
    conns = [await pool.acquire() for _ in range(5)]
    try:
        settings = await asyncio.gather(*(c.fetchval("SHOW jit") for c in conns))
    finally:
        for c in conns:
            await pool.release(c)
    assert settings == ["off"] * 5


async def test_a_single_connection_runs_with_jit_off(region: Region) -> None:
    conn = await db.connect(region.dsn)
    try:
        assert await conn.fetchval("SHOW jit") == "off"
    finally:
        await conn.close()
