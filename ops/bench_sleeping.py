"""`baton bench --sleeping N`: the benchmark beside N open workflows asleep on
durable timers.

Before the measured run, N ``Sleeper`` workflows are started (50 at a time)
and the benchmark waits until each has its timer stored (two hours off, so
none fires during the run). The measured run then shares the tables, the
timer loop and the task queues with them; comparing it with a run without
``--sleeping`` gives what open, sleeping workflows cost.
"""

from __future__ import annotations

import asyncio
import time

import asyncpg

from ops.bench import progress_bar
from worker import Client

STARTERS = 50


async def start_sleepers(
    client: Client, queue: str, n: int, dsn: str, *, show_progress: bool
) -> float:
    """Start ``n`` Sleeper workflows and wait until all sleep; the seconds it took."""
    t0 = time.perf_counter()
    ids: asyncio.Queue[int] = asyncio.Queue()
    for i in range(n):
        ids.put_nowait(i)
    progress = progress_bar(show_progress)

    async def starter() -> None:
        while not ids.empty():
            i = ids.get_nowait()
            await client.start_workflow("Sleeper", id=f"sleeper-{i}", task_queue=queue)
            progress.advance(task)

    with progress:
        task = progress.add_task("sleeping workflows", total=n)
        await asyncio.gather(*[starter() for _ in range(STARTERS)])
    conn = await asyncpg.connect(dsn)
    try:
        deadline = time.monotonic() + max(120.0, n / 20)
        while time.monotonic() < deadline:
            sleeping = await conn.fetchval(
                "SELECT count(*) FROM timers WHERE namespace = $1 AND kind = 'user'",
                client.namespace,
            )
            if sleeping >= n:
                return time.perf_counter() - t0
            await asyncio.sleep(0.5)
    finally:
        await conn.close()
    raise TimeoutError(f"{n} sleeping workflows were not all asleep in time")
