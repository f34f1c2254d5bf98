"""A worker process for the tests: `python -m tests.apps.worker_app --url URL`.

``--code`` picks the workflows it runs (the default: every test workflow);
``--deployment DEP --build B`` makes it a versioned worker of that build.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
from typing import Any

from tests.apps import versioned
from tests.apps.pausing import SlowFirstTask, SlowLastTask, SlowSelfPausing
from tests.apps.workflows import ALL_ACTIVITIES, ALL_WORKFLOWS
from worker import Client, Worker

#: name -> (workflows, activities)
CODE: dict[str, tuple[list[Any], list[Any]]] = {
    "all": (ALL_WORKFLOWS, ALL_ACTIVITIES),
    "v1": (versioned.V1, versioned.ACTIVITIES),
    "v2": (versioned.V2, versioned.ACTIVITIES),
    "v2-bad": (versioned.V2_BAD, versioned.ACTIVITIES),
    "pausing": ([SlowFirstTask, SlowLastTask, SlowSelfPausing], versioned.ACTIVITIES),
}


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", action="append", required=True)
    parser.add_argument("--namespace", default="default")
    parser.add_argument("--task-queue", default="tests")
    parser.add_argument("--code", choices=sorted(CODE), default="all")
    parser.add_argument("--deployment", default=None)
    parser.add_argument("--build", default=None)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    client = await Client.connect(args.url, namespace=args.namespace)
    workflows, activities = CODE[args.code]
    worker = Worker(
        client,
        task_queue=args.task_queue,
        workflows=workflows,
        activities=activities,
        deployment=(args.deployment, args.build) if args.deployment else None,
    )
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, lambda: asyncio.ensure_future(worker.shutdown()))
    print("worker polling", flush=True)
    await worker.run()
    await client.close()


if __name__ == "__main__":
    asyncio.run(main())
