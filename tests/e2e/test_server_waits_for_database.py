"""A server started while its database is down waits for it, then serves.

A server process restarted while its region's PostgreSQL restarts too (a
crash of both, a host booting them in any order) must not exit: it would leave
the region without a server once the database is back.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest

from store.config import load_config
from tests.helpers import free_port, server_proc, wait_healthy, write_config
from tests.multiregion import _own_cluster
from worker import Client

pytestmark = pytest.mark.e2e


@pytest.mark.timeout(90)
async def test_a_server_started_while_its_database_is_down_serves_once_it_is_up(
    state_dir: Path, tmp_path: Path
) -> None:
    own = state_dir / f"waits-{uuid.uuid4().hex[:6]}"
    own.mkdir(mode=0o755)
    cluster = await _own_cluster(own, "a")
    await asyncio.to_thread(cluster.stop, 30, "immediate")  # down, as in a crash
    cfg = write_config(tmp_path / "baton.toml", {"region-a": (free_port(), cluster.dsn("baton"))})
    url = load_config(cfg).regions["region-a"].url
    server = server_proc(cfg, "region-a", tmp_path / "server.log").start()
    stopped = server_proc(cfg, "region-a", tmp_path / "stopped.log").start()
    try:
        await asyncio.sleep(4.0)
        assert server.proc is not None and stopped.proc is not None
        assert server.proc.poll() is None, f"the server exited:\n{server.tail()}"
        assert "waiting for the database of region-a" in server.tail()
        stopped.stop()  # SIGTERM ends the wait
        assert stopped.proc.returncode == 0, stopped.tail()
        await asyncio.to_thread(cluster.start)
        await wait_healthy(url, timeout=30, proc=server)
        async with await Client.connect(url, retry_for_s=30) as client:
            await client.create_namespace("default")
            handle = await client.start_workflow("Nothing", id="after-wait", task_queue="q")
            assert (await handle.describe())["execution"]["status"] == "running"
        server.stop()  # SIGTERM: a clean exit
        assert server.proc.returncode == 0, server.tail()
    finally:
        server.kill()
        stopped.kill()
        await asyncio.to_thread(cluster.stop, 30, "immediate")
