"""Crashes: SIGKILL a worker mid-activity, SIGKILL the server mid-run.

Workers and servers here are separate processes started from the project's
own entry points (`python -m tests.apps.worker_app`, `baton server`).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import pytest

from ops.pg import PgCluster
from store.config import load_config
from tests.conftest import Region, fresh_database
from tests.helpers import (
    eventually,
    free_port,
    server_proc,
    wait_healthy,
    worker_proc,
    write_config,
)
from worker import Client

pytestmark = pytest.mark.e2e


def log_lines(path: Path) -> list[str]:
    return [line for line in path.read_text().splitlines() if line]


async def test_sigkill_worker_during_an_activity(
    region: Region, client: Client, activity_log: Path, tmp_path: Path
) -> None:
    first = worker_proc(region.url, tmp_path / "worker-1.log").start()
    try:
        handle = await client.start_workflow(
            "Crashable", 2.0, id="crash-worker-1", task_queue="tests"
        )

        async def in_step_2() -> bool:
            return "start step-2" in log_lines(activity_log)

        await eventually(in_step_2, timeout=30, what="activity step-2 running")
        first.kill()  # SIGKILL in the middle of step-2
    finally:
        first.kill()
    assert "done step-2" not in log_lines(activity_log)
    second = worker_proc(region.url, tmp_path / "worker-2.log").start()
    try:
        assert await handle.result(timeout=60) == 3
    finally:
        second.stop()
    counts = Counter(log_lines(activity_log))
    # completed activities never ran again; the interrupted one ran to its end once more
    assert counts["start step-1"] == 1 and counts["done step-1"] == 1
    assert counts["start step-2"] == 2 and counts["done step-2"] == 1
    assert counts["start step-3"] == 1 and counts["done step-3"] == 1
    events = await handle.history()
    completed = [e for e in events if e["event_type"] == "ActivityTaskCompleted"]
    assert len(completed) == 3
    started = [e for e in events if e["event_type"] == "ActivityTaskStarted"]
    assert [e["attributes"]["attempt"] for e in started] == [1, 2, 1]


async def test_sigkill_server_mid_run_and_restart(
    pg: PgCluster, template_db: str, tmp_path: Path
) -> None:
    dbname = fresh_database(pg, template_db)
    port = free_port()
    cfg = write_config(tmp_path / "baton.toml", {"region-a": (port, pg.dsn(dbname))})
    url = load_config(cfg).regions["region-a"].url
    server = server_proc(cfg, "region-a", tmp_path / "server.log").start()
    worker = None
    try:
        await wait_healthy(url, proc=server)
        async with await Client.connect(url, retry_for_s=120) as client:
            await client.create_namespace("default")
            worker = worker_proc(url, tmp_path / "worker.log").start()
            handle = await client.start_workflow(
                "Sleeper", 1, 3.0, id="crash-server-1", task_queue="tests"
            )

            async def sleeping() -> bool:
                kinds = [e["event_type"] for e in await handle.history()]
                return "TimerStarted" in kinds

            await eventually(sleeping, timeout=30, what="workflow sleeping on its timer")
            server.kill()  # SIGKILL: no shutdown, the timer is only in PostgreSQL
            await asyncio.sleep(1.0)
            server = server_proc(cfg, "region-a", tmp_path / "server.log").start()
            await wait_healthy(url, proc=server)
            assert await handle.result(timeout=60) == 3
            kinds = [e["event_type"] for e in await handle.history()]
            assert kinds.count("TimerFired") == 1
            assert kinds.count("ActivityTaskCompleted") == 2
    finally:
        if worker is not None:
            worker.stop()
        server.stop()
