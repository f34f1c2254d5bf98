"""Workflows of the demo and the benchmark, and a worker process that runs them.

``python -m ops.apps --url URL [--url URL2] --task-queue Q`` runs a worker.
This module imports the SDK only, as any worker process should.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
from datetime import timedelta
from pathlib import Path
from typing import Any

from worker import Client, Worker, activity, workflow


@activity.defn
async def step(x: int) -> int:
    """The benchmark's no-op activity."""
    return x + 1


@workflow.defn(name="ThreeSteps")
class ThreeSteps:
    """`x = n`, then three times `x = await step(x)`."""

    @workflow.run
    async def run(self, n: int) -> int:
        x = n
        for _ in range(3):
            x = await workflow.execute_activity(
                step, x, start_to_close_timeout=timedelta(seconds=30)
            )
        return x


@activity.defn
async def charge_card(order_id: str, amount: int) -> dict[str, Any]:
    """A slow activity with heartbeats: the demo kills the worker while it runs."""
    info = activity.info()
    done = int(info.heartbeat_details[0]) if info.heartbeat_details else 0
    for i in range(done, 4):
        activity.heartbeat(i)
        await asyncio.sleep(0.5)
    pid = os.getpid()
    return {
        "order": order_id,
        "charged": amount,
        "attempt": info.attempt,
        "worker_pid": pid,
        "resumed_from_step": done,
    }


@activity.defn
async def reserve_stock(order_id: str) -> str:
    return f"reserved:{order_id}"


@activity.defn
async def send_receipt(order_id: str, charge: dict[str, Any]) -> str:
    return f"receipt:{order_id}:{charge['charged']}"


@workflow.defn(name="Order")
class Order:
    """The demo workflow: reserve, charge (slow), wait a moment, send a receipt."""

    def __init__(self) -> None:
        self.stage = "new"

    @workflow.run
    async def run(self, order_id: str, amount: int) -> dict[str, Any]:
        self.stage = "reserving"
        reservation = await workflow.execute_activity(
            reserve_stock, order_id, start_to_close_timeout=timedelta(seconds=10)
        )
        self.stage = "charging"
        charge = await workflow.execute_activity(
            charge_card,
            order_id,
            amount,
            start_to_close_timeout=timedelta(seconds=20),
            heartbeat_timeout=timedelta(seconds=2),
        )
        self.stage = "cooling-off"
        await workflow.sleep(timedelta(seconds=1))
        self.stage = "receipt"
        receipt = await workflow.execute_activity(
            send_receipt, order_id, charge, start_to_close_timeout=timedelta(seconds=10)
        )
        self.stage = "done"
        return {"reservation": reservation, "charge": charge, "receipt": receipt}

    @workflow.query
    def current_stage(self) -> str:
        return self.stage


@workflow.defn(name="Counter")
class Counter:
    """Adds up ``add`` signals until ``finish``; ``count`` answers the sum so far
    (the benchmark's long history: one event per signal)."""

    def __init__(self) -> None:
        self.total = 0
        self.done = False

    @workflow.run
    async def run(self) -> int:
        await workflow.wait_condition(lambda: self.done)
        return self.total

    @workflow.signal
    def add(self, n: int) -> None:
        self.total += n

    @workflow.signal
    def finish(self) -> None:
        self.done = True

    @workflow.query
    def count(self) -> int:
        return self.total


@workflow.defn(name="Sleeper")
class Sleeper:
    """Sleeps two hours on a durable timer (the benchmark's open workflows)."""

    @workflow.run
    async def run(self) -> None:
        await workflow.sleep(timedelta(hours=2))


WORKFLOWS = [ThreeSteps, Order, Counter, Sleeper]
ACTIVITIES = [step, charge_card, reserve_stock, send_receipt]


async def run_worker(urls: list[str], namespace: str, task_queue: str) -> dict[str, Any]:
    """Run a worker until SIGTERM or SIGINT; returns its figures (its cache's)."""
    client = await Client.connect(urls, namespace=namespace)
    worker = Worker(
        client,
        task_queue=task_queue,
        workflows=WORKFLOWS,
        activities=ACTIVITIES,
        max_concurrent_workflow_tasks=200,
        max_concurrent_activities=200,
    )
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, lambda: asyncio.ensure_future(worker.shutdown()))
    loop.add_signal_handler(signal.SIGINT, lambda: asyncio.ensure_future(worker.shutdown()))
    print(f"worker {os.getpid()} polling {task_queue!r} in {namespace!r}", flush=True)
    try:
        await worker.run()
    finally:
        await client.close()
    return {"cache": worker.cache_stats(), "run_ahead": worker.speculation_stats()}


def main() -> None:
    parser = argparse.ArgumentParser(description="Run a worker for Baton's demo and benchmark")
    parser.add_argument("--url", action="append", required=True)
    parser.add_argument("--namespace", default="default")
    parser.add_argument("--task-queue", default="demo")
    parser.add_argument("--stats-file", default=None, help="Write the worker's figures here")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    run = run_worker(args.url, args.namespace, args.task_queue)
    try:
        import uvloop
    except ImportError:
        figures = asyncio.run(run)
    else:
        figures = uvloop.run(run)
    if args.stats_file:
        # the benchmark reads the worker's figures from here
        Path(args.stats_file).write_text(json.dumps(figures))


if __name__ == "__main__":
    main()
