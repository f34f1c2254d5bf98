"""Workers of the "shop" deployment and a wait for their builds, shared by the
versioning tests."""

from __future__ import annotations

from tests.apps.versioned import ACTIVITIES, V1, V2
from tests.helpers import eventually
from worker import Client, Worker
from worker.errors import DeploymentNotFoundError

QUEUE = "shop"


def shop_worker(client: Client, build_id: str) -> Worker:
    """A worker of build ``build_id`` of "shop": V1's code for build 1, V2's otherwise."""
    return Worker(
        client,
        task_queue=QUEUE,
        workflows=V1 if build_id == "1" else V2,
        activities=ACTIVITIES,
        deployment=("shop", build_id),
    )


async def registered(client: Client, *builds: str) -> None:
    """Wait until "shop" knows every build of ``builds``."""

    async def there() -> bool:
        try:
            d = await client.describe_deployment("shop")
        except DeploymentNotFoundError:
            return False
        return {v["build_id"] for v in d["versions"]} >= set(builds)

    await eventually(there, timeout=20, what=f"builds {builds} registered")
