"""`baton bench --failover`: how long moving a namespace takes.

Two figures on the local stack (two regions):

* **graceful**: ``open_workflows`` workflows are open in the namespace (started
  on a task queue no worker polls, so each waits with a pending workflow task)
  and replicated; `baton failover` hands the namespace over. The figure is the
  command's duration: handover, drain, and the rebuild of every open run.
* **forced to first progress**: ThreeSteps workflows run under steady load
  (one worker process, ``concurrency`` starters); a forced failover promotes
  the other region; the figure is the time from the command until the first
  workflow makes progress (an activity or workflow task completes) under the
  new failover version.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from pathlib import Path
from typing import Any

from ops.bench import start_worker, stop_processes
from replication.failover import forced_failover, graceful_failover
from replication.migration import count_runs
from replication.sql import QUERIES as Q
from store import db
from store.config import BatonConfig
from worker import Client

IDLE_QUEUE = "bench-failover-idle"
LOAD_QUEUE = "bench-failover-load"


async def _first_progress(config: BatonConfig, region: str, ns: str, version: int) -> float:
    """Epoch seconds of the first completed task under ``version`` (waits for it)."""
    conn = await db.connect(config.regions[region].dsn)
    try:
        while True:
            t = await conn.fetchval(Q["first_progress_at"], ns, version)
            if t is not None:
                return float(t)
            # the figure is the event's own time: polling need not be tight
            await asyncio.sleep(0.1)
    finally:
        await conn.close()


async def run_failover_bench(
    config: BatonConfig,
    urls: list[str],
    source: str,
    target: str,
    *,
    open_workflows: int = 1000,
    concurrency: int = 20,
    log_dir: Path,
    say: Any = print,
) -> dict[str, Any]:
    tag = f"{int(time.time()) % 1_000_000:06d}"
    out: dict[str, Any] = {"source": source, "target": target, "open_workflows": open_workflows}

    # Graceful, with open workflows.
    ns = f"bench-fo-{tag}"
    async with await Client.connect(urls, namespace=ns) as client:
        await client.create_namespace(ns, regions=[source, target], active_region=source)
        gate = asyncio.Semaphore(concurrency)

        async def start(i: int) -> None:
            async with gate:
                await client.start_workflow("ThreeSteps", i, id=f"open-{i}", task_queue=IDLE_QUEUE)

        say(f"starting {open_workflows} workflows in {source} (no worker: they stay open)")
        await asyncio.gather(*[start(i) for i in range(open_workflows)])
        while True:  # the target holds them all before the move
            if await count_runs(config, target, ns) >= open_workflows:
                break
            await asyncio.sleep(0.2)
        moved = await graceful_failover(config, ns, target, timeout_s=300)
        out["graceful_seconds"] = moved.seconds
        out["graceful_rebuilt"] = moved.workflows_rebuilt
        say(f"graceful failover of {moved.workflows_rebuilt} open workflows: {moved.seconds} s")

    # Forced, under load.
    ns = f"bench-ff-{tag}"
    async with await Client.connect(urls, namespace=ns) as client:
        await client.create_namespace(ns, regions=[source, target], active_region=source)
        args = [sys.executable, "-m", "ops.apps", "--namespace", ns, "--task-queue", LOAD_QUEUE]
        for u in urls:
            args += ["--url", u]
        worker = start_worker(args, log_dir / "bench-failover-worker.log")
        stop = asyncio.Event()
        done = 0

        async def starter(k: int) -> None:
            nonlocal done
            i = 0
            while not stop.is_set():
                with contextlib.suppress(Exception):
                    await client.execute_workflow(
                        "ThreeSteps", i, id=f"load-{k}-{i}", task_queue=LOAD_QUEUE
                    )
                    done += 1
                i += 1

        starters = [asyncio.create_task(starter(k)) for k in range(concurrency)]
        try:
            await asyncio.sleep(8.0)  # steady state
            say(f"{done} workflows completed under load in {source}; forcing over to {target}")
            t0 = time.time()
            forced = await forced_failover(config, ns, target)
            first = await asyncio.wait_for(_first_progress(config, target, ns, forced.version), 60)
            out["forced_promote_seconds"] = forced.seconds
            out["forced_first_progress_seconds"] = round(first - t0, 3)
            say(
                f"forced failover: promoted in {forced.seconds} s, first progress in {target} "
                f"{first - t0:.3f} s after the command"
            )
        finally:
            stop.set()
            for t in starters:
                t.cancel()
            await asyncio.gather(*starters, return_exceptions=True)
            stop_processes([worker])
    return out
