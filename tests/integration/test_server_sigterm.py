"""`baton server` on SIGTERM: long-polls answer at once with no task, so
workers poll again (another server of the region answers them), and the
process exits cleanly."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import httpx
import pytest

from ops.pg import PgCluster
from tests.conftest import fresh_database
from tests.helpers import eventually, free_port, server_proc, wait_healthy, write_config


async def test_sigterm_answers_long_polls_with_no_task_and_exits(
    pg: PgCluster, template_db: str, tmp_path: Path
) -> None:
    port = free_port()
    cfg = write_config(
        tmp_path / "baton.toml", {"region-a": (port, pg.dsn(fresh_database(pg, template_db)))}
    )
    proc = server_proc(cfg, "region-a", tmp_path / "server.log").start()
    url = f"http://127.0.0.1:{port}"
    try:
        await wait_healthy(url, proc=proc)
        async with httpx.AsyncClient(base_url=url, timeout=60) as http:
            created = await http.post("/api/v1/namespaces", json={"name": "default"})
            assert created.status_code == 201, created.text

            async def poll(kind: str) -> tuple[float, httpx.Response]:
                started = time.monotonic()
                answer = await http.post(
                    f"/api/v1/namespaces/default/{kind}-tasks/poll",
                    json={"task_queue": "q", "wait_s": 60},
                )
                return time.monotonic() - started, answer

            polls = [asyncio.create_task(poll(k)) for k in ("workflow", "activity")]
            await asyncio.sleep(1.0)
            assert not any(p.done() for p in polls)
            os.kill(proc.pid, signal.SIGTERM)
            for took, answer in await asyncio.gather(*polls):
                # It was 503 UNAVAILABLE "region database unavailable (pool is
                # closing)": a worker took a shutdown for a database outage.
                assert answer.status_code == 200, answer.text
                assert answer.json() == {"task": None}
                assert took < 5
        assert proc.proc is not None

        async def exited() -> bool:
            return proc.proc is not None and proc.proc.poll() is not None

        await eventually(exited, timeout=10, what="the server exited")
        assert proc.proc.returncode == 0, proc.tail()
        assert "Traceback" not in proc.tail()
    finally:
        proc.stop()


async def test_sigterm_while_waiting_for_the_database_exits_at_once(tmp_path: Path) -> None:
    # Nothing is in flight before the server listens: no graceful wait is owed.
    down = f"postgresql://postgres@127.0.0.1:{free_port()}/baton"
    port = free_port()
    cfg = write_config(tmp_path / "baton.toml", {"region-a": (port, down)})
    proc = server_proc(cfg, "region-a", tmp_path / "server.log").start()
    try:

        async def waiting() -> bool:
            return "waiting for the database" in proc.tail()

        await eventually(waiting, timeout=30, what="the server waiting for its database")
        # it holds its port but takes no connection before it can serve one:
        # a client (or the kernel, spreading a shared port) goes elsewhere
        async with httpx.AsyncClient() as http:
            with pytest.raises(httpx.ConnectError):
                await http.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
        stopped = time.monotonic()
        os.kill(proc.pid, signal.SIGTERM)
        assert proc.proc is not None
        proc.proc.wait(10)
        assert time.monotonic() - stopped < 3
        assert proc.proc.returncode == 0, proc.tail()
    finally:
        proc.stop()
