"""The chaos test's workflow and its worker process.

`python -m tests.apps.chaos --url A --url B --namespace NS` runs a worker that
drains on SIGTERM. Each Chaos workflow runs a heartbeating activity that fails
its first attempt, sleeps on a durable timer, waits for its signals and its
updates (whose handlers sleep across a failover), and, for some, has a workflow
task that raises until the file named by $BATON_CHAOS_FLAG exists (a bug, then
the fix deployed). Its result is a pure function of its spec and of the
signals and updates it was sent, which the test computes on its own.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
from datetime import timedelta
from typing import Any

from worker import Client, RetryPolicy, Worker, activity, workflow

QUEUE = "chaos"
FLAG_ENV = "BATON_CHAOS_FLAG"


@activity.defn
async def flaky_heartbeat(base: int) -> int:
    """Heartbeats, then fails its first attempt; any later attempt succeeds."""
    info = activity.info()
    activity.heartbeat(f"attempt {info.attempt}")
    await asyncio.sleep(0.2)
    if info.attempt == 1:
        raise RuntimeError("the first attempt fails")
    return base + 1


def _fixed() -> bool:
    # Reads a file: not deterministic, on purpose (the fix being deployed).
    return os.path.exists(os.environ.get(FLAG_ENV, "/nonexistent"))


@workflow.defn(name="Chaos")
class Chaos:
    def __init__(self) -> None:
        self.signals: list[list[Any]] = []
        self.updates: list[list[Any]] = []

    @workflow.run
    async def run(self, spec: dict[str, Any]) -> dict[str, Any]:
        got = await workflow.execute_activity(
            flaky_heartbeat,
            spec["base"],
            start_to_close_timeout=timedelta(seconds=20),
            heartbeat_timeout=timedelta(seconds=10),
            retry_policy=RetryPolicy(initial_interval=timedelta(seconds=0.5)),
        )
        await workflow.sleep(timedelta(seconds=spec["sleep_s"]))
        await workflow.wait_condition(
            lambda: len(self.signals) >= spec["signals"] and len(self.updates) >= spec["updates"]
        )
        if spec["buggy"] and not _fixed():
            raise RuntimeError("a bug in the workflow code, until the fix is deployed")
        return {
            "activity": got,
            "signals": sorted(self.signals),
            "updates": sorted(self.updates),
        }

    @workflow.signal
    def add(self, key: str, value: int) -> None:
        self.signals.append([key, value])

    @workflow.update
    async def slow_add(self, key: str, value: int) -> int:
        await workflow.sleep(timedelta(seconds=3))
        self.updates.append([key, value])
        return 2 * value


def expected(spec: dict[str, Any], signals: list[list[Any]], updates: list[list[Any]]) -> Any:
    """The oracle: the result a Chaos workflow must return."""
    return {"activity": spec["base"] + 1, "signals": sorted(signals), "updates": sorted(updates)}


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", action="append", required=True)
    parser.add_argument("--namespace", required=True)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    client = await Client.connect(args.url, namespace=args.namespace, retry_for_s=180)
    worker = Worker(
        client,
        task_queue=QUEUE,
        workflows=[Chaos],
        activities=[flaky_heartbeat],
        graceful_shutdown_timeout=2.0,
    )
    print("chaos worker polling", flush=True)
    await worker.run(handle_signals=True)
    await client.close()


if __name__ == "__main__":
    asyncio.run(main())
