"""A worker process for the tests: `python -m tests.apps.worker_app --url URL`."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal

from tests.apps.workflows import ALL_ACTIVITIES, ALL_WORKFLOWS
from worker import Client, Worker


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", action="append", required=True)
    parser.add_argument("--namespace", default="default")
    parser.add_argument("--task-queue", default="tests")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    client = await Client.connect(args.url, namespace=args.namespace)
    worker = Worker(
        client, task_queue=args.task_queue, workflows=ALL_WORKFLOWS, activities=ALL_ACTIVITIES
    )
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, lambda: asyncio.ensure_future(worker.shutdown()))
    print("worker polling", flush=True)
    await worker.run()
    await client.close()


if __name__ == "__main__":
    asyncio.run(main())
