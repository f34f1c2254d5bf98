"""An update still running when its timeout runs out says UPDATE_TIMED_OUT
(it may still complete), also when the server it waited on was killed
meanwhile: the caller's timeout is what ended the call."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from ops.pg import PgCluster
from tests.conftest import fresh_database
from tests.helpers import free_port, server_proc, wait_healthy, write_config
from worker import (
    Client,
    UnavailableError,
    UpdateTimedOutError,
    Worker,
    WorkflowUpdateStage,
    workflow,
)

pytestmark = pytest.mark.integration
QUEUE = "slow-updates"


@workflow.defn
class SlowUpdates:
    def __init__(self) -> None:
        self.done = False

    @workflow.run
    async def run(self) -> None:
        await workflow.wait_condition(lambda: self.done)

    @workflow.update
    async def slow(self) -> str:
        await workflow.wait_condition(lambda: self.done)
        return "never"


async def test_update_past_its_timeout_with_the_server_killed_times_out(
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
        client = await Client.connect(url, namespace="default", retry_for_s=5)
        try:
            await client.create_namespace("default")
            async with Worker(client, task_queue=QUEUE, workflows=[SlowUpdates]):
                h = await client.start_workflow(SlowUpdates, id="slow", task_queue=QUEUE)
                # the server waits on it, then is killed while the update runs
                upd = await h.start_update(
                    SlowUpdates.slow, wait_for_stage=WorkflowUpdateStage.ACCEPTED, timeout=3
                )
                proc.kill()
                started = time.monotonic()
                with pytest.raises(UpdateTimedOutError) as err:
                    await h.update(SlowUpdates.slow, update_id=upd.id, timeout=3)
                assert time.monotonic() - started < 8
                assert upd.id in err.value.message and "could not be reached" in err.value.message
                assert isinstance(err.value.__cause__, UnavailableError)
                # the handle's result() does not spin on a server that is gone
                with pytest.raises((UpdateTimedOutError, UnavailableError)):
                    await upd.result()
        finally:
            await client.close()
    finally:
        proc.kill()
