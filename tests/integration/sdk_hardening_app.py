"""Workflows and activities of the SDK hardening tests, and a worker process that runs them.

``python -m tests.integration.sdk_hardening_app --url URL [--grace S]`` is a
worker process that drains on SIGTERM the way a deployment would stop it:
``await worker.run(handle_signals=True)``.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
from datetime import timedelta

from worker import (
    ActivityError,
    ApplicationError,
    Client,
    RetryPolicy,
    Worker,
    activity,
    workflow,
)

QUEUE = "hardening"

#: Activity attempts that have begun running in this process, by workflow id.
RUNNING: list[str] = []
#: How attempts of ``heartbeats`` ended in this process, by workflow id.
OUTCOMES: dict[str, str] = {}
#: Workflow ids whose run method ran its ``finally`` (an instance was torn down).
CLEANED_UP: list[str] = []


@activity.defn(name="hardening_slow_first_attempt")
async def slow_first_attempt() -> int:
    """Hangs on its first attempt (longer than any grace); later ones return at once."""
    info = activity.info()
    RUNNING.append(info.workflow_id)
    if info.attempt == 1:
        await asyncio.sleep(3600)
    return info.attempt


@workflow.defn(name="HardeningSlowActivity")
class SlowActivity:
    @workflow.run
    async def run(self) -> int:
        attempt: int = await workflow.execute_activity(
            slow_first_attempt, start_to_close_timeout=timedelta(seconds=60)
        )
        return attempt


@activity.defn(name="hardening_heartbeats")
async def heartbeats() -> None:
    key = activity.info().workflow_id
    try:
        while True:
            activity.heartbeat("tick")
            await asyncio.sleep(0.05)
    except asyncio.CancelledError:
        OUTCOMES[key] = "cancelled"
        raise


@workflow.defn(name="HardeningHeartbeating")
class Heartbeating:
    @workflow.run
    async def run(self) -> None:
        await workflow.execute_activity(
            heartbeats,
            start_to_close_timeout=timedelta(seconds=60),
            heartbeat_timeout=timedelta(seconds=1),
        )


@workflow.defn(name="HardeningSignals")
class Signals:
    def __init__(self) -> None:
        self.notes: list[str] = []

    @workflow.run
    async def run(self) -> list[str]:
        await workflow.wait_condition(lambda: "done" in self.notes)
        return self.notes

    @workflow.signal
    def note(self, value: str) -> None:
        self.notes.append(value)


@workflow.defn(name="HardeningCleansUp")
class CleansUp:
    @workflow.run
    async def run(self) -> None:
        workflow_id = workflow.info().workflow_id
        try:
            await workflow.wait_condition(lambda: False)
        finally:
            CLEANED_UP.append(workflow_id)

    @workflow.query
    def alive(self) -> bool:
        return True


@activity.defn(name="hardening_declines")
async def declines(marker: str) -> None:
    raise ApplicationError(f"card declined {marker}", type="CardDeclined", non_retryable=True)


@workflow.defn(name="HardeningFailsAfterActivity")
class FailsAfterActivity:
    @workflow.run
    async def run(self, activity_marker: str, workflow_marker: str) -> None:
        try:
            await workflow.execute_activity(
                declines, activity_marker, start_to_close_timeout=timedelta(seconds=10)
            )
        except ActivityError as err:
            cause = err.__cause__
            seen = cause.message if isinstance(cause, ApplicationError) else repr(cause)
            raise ApplicationError(
                f"order failed {workflow_marker}; the activity said: {seen}", type="OrderFailed"
            ) from None


@workflow.defn(name="HardeningRefuses")
class Refuses:
    def __init__(self) -> None:
        self.done = False

    @workflow.run
    async def run(self) -> None:
        await workflow.wait_condition(lambda: self.done)

    @workflow.update
    def change(self, marker: str) -> None:
        raise ApplicationError(f"change failed {marker}", type="ChangeFailed")

    @workflow.update
    def rename(self, marker: str) -> None:
        pass

    @rename.validator
    def check_rename(self, marker: str) -> None:
        raise ApplicationError(f"rename refused {marker}", type="RenameRefused")

    @workflow.query
    def peek(self, marker: str) -> None:
        raise ValueError(f"peek refused {marker}")

    @workflow.signal
    def finish(self) -> None:
        self.done = True


#: What each attempt of ``counts_on``/``counts_on_sync`` found in its heartbeat details.
SEEN_DETAILS: list[tuple[int, list[int]]] = []


def _count_on(steps: int) -> int:
    """Heartbeat ``steps`` counts on from the last attempt's; fail the first two attempts."""
    info = activity.info()
    start = int(info.heartbeat_details[0]) if info.heartbeat_details else 0
    SEEN_DETAILS.append((info.attempt, list(info.heartbeat_details)))
    for k in range(start + 1, start + steps + 1):
        activity.heartbeat(k)  # all within the throttle's interval: only the first goes at once
    if info.attempt < 3:
        raise RuntimeError(f"attempt {info.attempt} fails after counting to {start + steps}")
    return start + steps


@activity.defn(name="hardening_counts_on")
async def counts_on(steps: int) -> int:
    return _count_on(steps)


@activity.defn(name="hardening_counts_on_sync")
def counts_on_sync(steps: int) -> int:
    return _count_on(steps)


@workflow.defn(name="HardeningCountsOn")
class CountsOn:
    @workflow.run
    async def run(self, steps: int, sync: bool) -> int:
        count: int = await workflow.execute_activity(
            counts_on_sync if sync else counts_on,
            steps,
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=RetryPolicy(initial_interval=timedelta(milliseconds=100)),
        )
        return count


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", action="append", required=True)
    parser.add_argument("--namespace", default="default")
    parser.add_argument("--grace", type=float, default=10.0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    async with await Client.connect(args.url, namespace=args.namespace) as client:
        worker = Worker(
            client,
            task_queue=QUEUE,
            workflows=[SlowActivity],
            activities=[slow_first_attempt],
            graceful_shutdown_timeout=args.grace,
        )
        print("worker polling", flush=True)
        await worker.run(handle_signals=True)
    print("worker stopped", flush=True)


if __name__ == "__main__":
    asyncio.run(main())
