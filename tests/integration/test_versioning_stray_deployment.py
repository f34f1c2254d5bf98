"""A worker of another deployment on a queue does not take its new work away.

The deployment a new run joined was the one of the newest version polling
its task queue, whatever its routing: one worker started with another
deployment name on a shared queue (a renamed deployment's first build, a
stray worker of a test setup) made that deployment the queue's, and as it had
no current build every new run went to unversioned workers, none of which
polled: new work stopped. As in Temporal, a task queue follows the
deployments that route work, the one changed last.
"""

from __future__ import annotations

import pytest

from tests.apps.versioned import ACTIVITIES, V1
from tests.helpers import eventually
from tests.versioning_helpers import QUEUE, registered
from tests.versioning_helpers import shop_worker as build
from worker import Client, Worker
from worker.errors import DeploymentNotFoundError

pytestmark = pytest.mark.integration


async def test_a_stray_deployments_worker_takes_no_work_until_it_is_made_current(
    client: Client,
) -> None:
    stray = Worker(
        client, task_queue=QUEUE, workflows=V1, activities=ACTIVITIES, deployment=("stray", "x")
    )
    async with build(client, "1"):
        await registered(client, "1")
        await client.set_current_version("shop", "1")
        async with stray:

            async def stray_known() -> bool:
                try:
                    await client.describe_deployment("stray")
                except DeploymentNotFoundError:
                    return False
                return True

            await eventually(stray_known, timeout=20, what="the stray deployment polled")
            h = await client.start_workflow("Order", 1, id="after-stray", task_queue=QUEUE)
            await h.signal("proceed")
            assert await h.result(timeout=20) == "v1"
            d = await h.describe()
            assert (d["execution"]["deployment"], d["execution"]["build_id"]) == ("shop", "1")
            # made current, the renamed deployment takes the queue's new work
            await client.set_current_version("stray", "x")
            h2 = await client.start_workflow("Order", 2, id="renamed", task_queue=QUEUE)
            await h2.signal("proceed")
            assert await h2.result(timeout=20) == "v1"
            d = await h2.describe()
            assert (d["execution"]["deployment"], d["execution"]["build_id"]) == ("stray", "x")
