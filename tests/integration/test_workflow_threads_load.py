"""Workflow threads under load: many short runs, constant eviction, queries, shutdown.

A small run cache makes every run's instance evicted between its tasks, so
teardown jobs (a run waiting on a condition has code left to cancel) share the
threads with activations and queries all the time; a shutdown in the middle of
it must leave the runs to another worker, which finishes every one.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import timedelta

import pytest

from worker import Client, Worker, activity, workflow
from worker.errors import BatonError

pytestmark = pytest.mark.integration

RUNS = 200


@activity.defn(name="load.double")
async def double(n: int) -> int:
    return 2 * n


@workflow.defn(name="LoadShort")
class LoadShort:
    def __init__(self) -> None:
        self.go = False
        self.steps = 0

    @workflow.run
    async def run(self, n: int) -> int:
        try:
            n = await workflow.execute_activity(
                double, n, start_to_close_timeout=timedelta(seconds=30)
            )
            self.steps += 1
            await workflow.wait_condition(lambda: self.go)
            self.steps += 1
            await workflow.sleep(0.05)
            return n + 1
        finally:
            logging.getLogger("tests.load").debug("run %d leaves its code", n)

    @workflow.signal
    def release(self) -> None:
        self.go = True

    @workflow.query
    def progress(self) -> int:
        return self.steps


def worker(client: Client, queue: str) -> Worker:
    return Worker(
        client,
        task_queue=queue,
        workflows=[LoadShort],
        activities=[double],
        max_cached_workflows=3,
        max_concurrent_workflow_tasks=8,
        deadlock_timeout=5.0,
        graceful_shutdown_timeout=0.5,
    )


async def _query_some(handles: list[object], stop: asyncio.Event) -> int:
    answered = 0
    while not stop.is_set():
        for h in handles[:: max(1, len(handles) // 10)]:
            try:
                await h.query(LoadShort.progress, timeout=10)  # type: ignore[attr-defined]
                answered += 1
            except (BatonError, TimeoutError):
                pass
        await asyncio.sleep(0.05)
    return answered


async def test_many_short_runs_with_eviction_queries_and_a_shutdown_mid_load(
    client: Client,
) -> None:
    queue = f"load-{uuid.uuid4().hex[:6]}"
    handles = await asyncio.gather(
        *(
            client.start_workflow(LoadShort, i, id=f"load-{queue}-{i}", task_queue=queue)
            for i in range(RUNS)
        )
    )
    stop = asyncio.Event()
    first = worker(client, queue)
    async with first:
        querying = asyncio.create_task(_query_some(list(handles), stop))
        await asyncio.sleep(1.5)
        await asyncio.gather(*(h.signal(LoadShort.release) for h in handles[: RUNS // 2]))
        done = await asyncio.wait_for(
            asyncio.gather(*(h.result(timeout=60) for h in handles[: RUNS // 2])), 90
        )
        # it stops with queries in flight and teardowns queued on its threads
    assert first._threads.closed
    async with worker(client, queue) as second:
        await asyncio.gather(*(h.signal(LoadShort.release) for h in handles[RUNS // 2 :]))
        rest = await asyncio.wait_for(
            asyncio.gather(*(h.result(timeout=60) for h in handles[RUNS // 2 :])), 90
        )
        stop.set()
        answered = await querying
        assert second._threads.stuck == 0
    assert done + rest == [2 * i + 1 for i in range(RUNS)]
    assert answered > 0
