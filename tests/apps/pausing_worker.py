"""A worker process for the pause tests: `python -m tests.apps.pausing_worker --url URL`."""

from __future__ import annotations

import argparse
import asyncio
import signal

from tests.apps.pausing import SlowFirstTask
from tests.apps.versioned import ACTIVITIES
from worker import Client, Worker


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--task-queue", default="pausing")
    args = parser.parse_args()
    client = await Client.connect(args.url, namespace="default")
    worker = Worker(
        client, task_queue=args.task_queue, workflows=[SlowFirstTask], activities=ACTIVITIES
    )
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, lambda: asyncio.ensure_future(worker.shutdown()))
    print("worker polling", flush=True)
    await worker.run()
    await client.close()


if __name__ == "__main__":
    asyncio.run(main())
