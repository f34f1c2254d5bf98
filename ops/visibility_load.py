"""A generated namespace of many runs, for visibility's index checks and benchmark.

The runs are written by the store's own write function, batch by batch, each
batch one transaction: a million runs take a few minutes on a laptop-class
machine instead of the hours a million real workflows would.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

import asyncpg

from store.sql import parse_queries

QUERIES = parse_queries((Path(__file__).parent / "visibility_load.sql").read_text())

#: Custom attributes the generated runs carry.
ATTRIBUTES = {
    "CustomerId": {"type": "Keyword", "removed": False},
    "Amount": {"type": "Int", "removed": False},
}


async def create_load_namespace(conn: asyncpg.Connection, namespace: str, region: str) -> None:
    """A one-region namespace with the generated runs' custom attributes registered."""
    await conn.execute(QUERIES["create_load_namespace"], namespace, [region], region, ATTRIBUTES)


async def load_runs(
    conns: Sequence[asyncpg.Connection],
    namespace: str,
    total: int,
    *,
    batch: int = 20_000,
    progress: Callable[[int, int], None] | None = None,
) -> float:
    """Write runs 1..total of ``namespace``, a batch per transaction, one writer per
    connection; returns the seconds it took."""
    t0 = time.monotonic()
    until = datetime.now(UTC)
    starts = iter(range(1, total + 1, batch))
    done = 0

    async def writer(conn: asyncpg.Connection) -> None:
        nonlocal done
        for first in starts:
            last = min(first + batch - 1, total)
            async with conn.transaction():
                await conn.fetchval(QUERIES["load_runs"], namespace, first, last, until)
            done += last - first + 1
            if progress is not None:
                progress(done, total)

    await asyncio.gather(*(writer(c) for c in conns))
    await conns[0].execute("ANALYZE executions")
    return time.monotonic() - t0
