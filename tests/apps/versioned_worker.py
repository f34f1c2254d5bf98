"""A versioned worker process: `python -m tests.apps.versioned_worker --url URL --build 1`."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal

from tests.apps.versioned import ACTIVITIES, V1, V2, V2_BAD
from worker import Client, Worker

CODE = {"v1": V1, "v2": V2, "v2-bad": V2_BAD}


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", action="append", required=True)
    parser.add_argument("--namespace", default="default")
    parser.add_argument("--task-queue", default="shop")
    parser.add_argument("--deployment", default="shop")
    parser.add_argument("--build", required=True)
    parser.add_argument("--code", choices=sorted(CODE), default="v1")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    client = await Client.connect(args.url, namespace=args.namespace)
    worker = Worker(
        client,
        task_queue=args.task_queue,
        workflows=CODE[args.code],
        activities=ACTIVITIES,
        deployment=(args.deployment, args.build),
    )
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, lambda: asyncio.ensure_future(worker.shutdown()))
    print(f"worker {args.deployment}:{args.build} polling", flush=True)
    await worker.run()
    await client.close()


if __name__ == "__main__":
    asyncio.run(main())
