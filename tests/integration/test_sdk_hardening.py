"""The SDK against real region servers: request ids, shutdown, the run cache, failure
text under a codec, lost activity tasks, heartbeat details of failed attempts and
one-region namespaces."""

from __future__ import annotations

import asyncio
import gc
import signal
import sys
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from ops.pg import PgCluster
from store import db
from store.config import load_config
from tests.conftest import Region, fresh_database, serve_region
from tests.helpers import Proc, eventually, free_port, write_config
from tests.integration.sdk_hardening_app import (
    CLEANED_UP,
    OUTCOMES,
    QUEUE,
    RUNNING,
    SEEN_DETAILS,
    CleansUp,
    CountsOn,
    FailsAfterActivity,
    Heartbeating,
    Refuses,
    Signals,
    SlowActivity,
    counts_on,
    counts_on_sync,
    declines,
    heartbeats,
    slow_first_attempt,
)
from tests.integration.test_encryption import contains_marker
from worker import AesGcmCodec, ApplicationError, Client, DataConverter, Worker
from worker.codec import generate_key
from worker.errors import (
    QueryFailedError,
    UpdateFailedError,
    UpdateRejectedError,
    WorkflowFailureError,
)

pytestmark = pytest.mark.integration


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def events_of(events: list[dict[str, Any]], event_type: str) -> list[dict[str, Any]]:
    return [e["attributes"] for e in events if e["event_type"] == event_type]


class PathRecordingWorker(Worker):
    """A worker that notes the path of every call it makes to the server."""

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.paths: list[str] = []

    async def _call(self, path: str, body: Any, **params: Any) -> Any:
        self.paths.append(path)
        return await super()._call(path, body, **params)


# =========================================================================== A: request ids


async def test_every_signal_carries_a_request_id(client: Client) -> None:
    async with Worker(client, task_queue=QUEUE, workflows=[Signals]):
        handle = await client.start_workflow(Signals, id=new_id("signals"), task_queue=QUEUE)
        await handle.signal("note", "a")
        await handle.signal("note", "b")
        await handle.signal("note", "done", request_id="explicit-1")
        assert await handle.result(timeout=20) == ["a", "b", "done"]
    signaled = events_of(await handle.history(), "WorkflowExecutionSignaled")
    ids = [a.get("request_id") for a in signaled]
    assert len(ids) == 3
    assert all(isinstance(i, str) and i for i in ids)
    assert ids[0] != ids[1]
    assert ids[2] == "explicit-1"


# =========================================================================== B: shutdown


async def give_back_check(handle: Any, client: Client) -> None:
    """Another worker finishes the workflow on the activity's second attempt, at once."""
    async with Worker(
        client, task_queue=QUEUE, workflows=[SlowActivity], activities=[slow_first_attempt]
    ):
        # far less than the 60 s start-to-close timeout the first attempt had
        assert await handle.result(timeout=15) == 2
    started = events_of(await handle.history(), "ActivityTaskStarted")
    assert started[-1]["attempt"] == 2
    last_failure = started[-1]["last_failure"]
    assert last_failure["type"] == "WorkerShutdown"
    assert last_failure["message"] == "worker shutting down"
    assert not last_failure["non_retryable"]


async def test_shutdown_gives_running_activities_back_to_the_server(client: Client) -> None:
    first = Worker(
        client, task_queue=QUEUE, workflows=[SlowActivity], activities=[slow_first_attempt]
    )
    runner = asyncio.create_task(first.run())
    workflow_id = new_id("slow")
    handle = await client.start_workflow(SlowActivity, id=workflow_id, task_queue=QUEUE)

    async def running() -> bool:
        return workflow_id in RUNNING

    await eventually(running, timeout=20, what="first attempt running")
    began = time.monotonic()
    await first.shutdown(grace=0.5)
    await asyncio.wait_for(runner, 5)
    assert time.monotonic() - began < 5
    await give_back_check(handle, client)


async def test_a_worker_process_drains_on_sigterm(
    client: Client, region: Region, tmp_path: Path
) -> None:
    app = "tests.integration.sdk_hardening_app"
    proc = Proc(
        [sys.executable, "-m", app, "--url", region.url, "--grace", "0.5"],
        tmp_path / "worker.log",
    ).start()
    try:
        handle = await client.start_workflow(SlowActivity, id=new_id("sigterm"), task_queue=QUEUE)

        async def attempt_started() -> bool:
            acts = (await handle.describe())["pending_activities"]
            return bool(acts) and acts[0]["state"] == "started"

        await eventually(attempt_started, timeout=20, what=f"attempt started:\n{proc.tail()}")
        assert proc.proc is not None
        proc.proc.send_signal(signal.SIGTERM)

        async def exited() -> bool:
            return proc.proc is not None and proc.proc.poll() is not None

        await eventually(exited, timeout=10, what="worker process exit")
        assert proc.proc.returncode == 0, proc.tail()
        assert "worker stopped" in proc.tail()
    finally:
        proc.kill()
    await give_back_check(handle, client)


# =========================================================================== C: run cache


@pytest.fixture
def no_gc() -> AsyncIterator[None]:
    # The garbage collector would close a leaked instance's coroutines at some
    # random point; with it off, only an explicit teardown runs them.
    gc.disable()
    try:
        yield None
    finally:
        gc.enable()


async def test_a_query_replay_is_torn_down_once_answered(client: Client, no_gc: None) -> None:
    workflow_id = new_id("cleans-up")
    async with Worker(client, task_queue=QUEUE, workflows=[CleansUp], max_cached_workflows=0):
        handle = await client.start_workflow(CleansUp, id=workflow_id, task_queue=QUEUE)

        async def first_task_done() -> bool:
            # no cache: the instance of the first task is torn down after it
            return CLEANED_UP.count(workflow_id) == 1

        await eventually(first_task_done, timeout=20, what="first workflow task")
        assert await handle.query("alive") is True  # answered by a replayed instance
        assert CLEANED_UP.count(workflow_id) == 2  # which was torn down right away


# =========================================================================== D: failure text


async def test_a_codec_keeps_failure_text_out_of_the_database(
    region: Region, pg: PgCluster
) -> None:
    codec = AesGcmCodec(keys={"k1": generate_key()}, active_key_id="k1")
    act_marker, wf_marker = f"ACT-{uuid.uuid4().hex}", f"WF-{uuid.uuid4().hex}"
    upd_marker, rej_marker, q_marker = (f"{k}-{uuid.uuid4().hex}" for k in ("UPD", "REJ", "Q"))
    async with await Client.connect(
        region.url, data_converter=DataConverter(codec=codec)
    ) as client:
        await client.create_namespace("default")
        async with Worker(
            client,
            task_queue=QUEUE,
            workflows=[FailsAfterActivity, Refuses],
            activities=[declines],
        ):
            handle = await client.start_workflow(
                FailsAfterActivity, act_marker, wf_marker, id=new_id("fails"), task_queue=QUEUE
            )
            with pytest.raises(WorkflowFailureError) as failed:
                await handle.result(timeout=20)
            refuses = await client.start_workflow(Refuses, id=new_id("refuses"), task_queue=QUEUE)
            with pytest.raises(UpdateFailedError) as update_failed:
                await refuses.update("change", upd_marker)
            with pytest.raises(UpdateRejectedError) as update_rejected:
                await refuses.update("rename", rej_marker)
            with pytest.raises(QueryFailedError) as query_failed:
                await refuses.query("peek", q_marker)
            await refuses.signal("finish")
            await refuses.result(timeout=20)

    # The workflow code saw the activity's own message, and the client sees the workflow's.
    cause = failed.value.__cause__
    assert isinstance(cause, ApplicationError) and cause.type == "OrderFailed"
    said = f"order failed {wf_marker}; the activity said: card declined {act_marker}"
    assert cause.message == said
    assert wf_marker in str(failed.value)
    assert cause.failure is not None and "sdk_hardening_app" in cause.failure.stack_trace
    assert f"change failed {upd_marker}" in str(update_failed.value)
    assert f"rename refused {rej_marker}" in str(update_rejected.value)
    assert f"peek refused {q_marker}" in str(query_failed.value)

    conn = await db.connect(region.dsn)
    try:
        history = await conn.fetchval(
            "SELECT string_agg(attributes::text, E'\\n') FROM history_events"
        )
    finally:
        await conn.close()
    for secret in ("card declined", "order failed", "change failed", "sdk_hardening_app"):
        assert secret not in history  # neither a message nor a stack trace line
    assert "Encoded failure" in history
    for failure_type in ("CardDeclined", "OrderFailed", "ChangeFailed"):
        assert f'"type": "{failure_type}"' in history  # the server's retry rules need it
    dump = pg.dump(region.dbname)
    for marker in (act_marker, wf_marker, upd_marker, rej_marker, q_marker):
        assert not contains_marker(dump, marker)


# =========================================================================== E: lost tasks


async def test_a_lost_activity_task_is_stopped_not_reported_canceled(client: Client) -> None:
    worker = PathRecordingWorker(
        client, task_queue=QUEUE, workflows=[Heartbeating], activities=[heartbeats]
    )
    async with worker:
        workflow_id = new_id("heartbeats")
        handle = await client.start_workflow(Heartbeating, id=workflow_id, task_queue=QUEUE)

        async def heartbeating() -> bool:
            return "/activity-tasks/heartbeat" in worker.paths

        await eventually(heartbeating, timeout=20, what="a heartbeat")
        await handle.terminate("the task goes away with the run")

        async def stopped() -> bool:
            return OUTCOMES.get(workflow_id) == "cancelled" and not worker._tasks

        await eventually(stopped, timeout=20, what="attempt stopped")
    assert "/activity-tasks/canceled" not in worker.paths


# =========================================================================== F: heartbeats


@pytest.mark.parametrize("sync", [False, True], ids=["async", "sync"])
async def test_a_failed_attempt_hands_its_last_heartbeat_to_the_next(
    client: Client, sync: bool
) -> None:
    SEEN_DETAILS.clear()
    async with Worker(
        client, task_queue=QUEUE, workflows=[CountsOn], activities=[counts_on, counts_on_sync]
    ):
        result = await client.execute_workflow(
            CountsOn, 50, sync, id=new_id("counts-on"), task_queue=QUEUE
        )
    # Each attempt heartbeats 50 counts within the throttle's interval and fails:
    # the next one starts from the last count, not from the first heartbeat.
    assert SEEN_DETAILS == [(1, []), (2, [50]), (3, [100])]
    assert result == 150


# =========================================================================== G: regions


async def test_a_client_given_every_region_finds_a_one_region_namespace(
    pg: PgCluster, template_db: str, tmp_path: Path
) -> None:
    names = ("region-a", "region-b")
    dbs = {r: fresh_database(pg, template_db) for r in names}
    cfg = write_config(
        tmp_path / "baton.toml",
        {r: (free_port(), pg.dsn(dbs[r])) for r in names},
        workflow_task_retry_max_s=1.0,
    )
    config = load_config(cfg)
    a_url, b_url = config.regions["region-a"].url, config.regions["region-b"].url
    async with serve_region(config, "region-a"), serve_region(config, "region-b"):
        async with await Client.connect(a_url, namespace="solo") as admin:
            await admin.create_namespace("solo")  # in region-a only
        # region-b first: it has never heard of the namespace
        async with (
            await Client.connect([b_url, a_url], namespace="solo") as worker_client,
            await Client.connect([b_url, a_url], namespace="solo") as client,
            Worker(worker_client, task_queue=QUEUE, workflows=[Signals]),
        ):
            handle = await client.start_workflow(Signals, id=new_id("solo"), task_queue=QUEUE)
            await handle.signal("note", "done")
            assert await asyncio.wait_for(handle.result(), 20) == ["done"]
            assert client.transport.active_endpoint == a_url
            assert worker_client.transport.active_endpoint == a_url
