"""Deployment and build names the server cannot route are refused where they
come in (a poll, a routing change, a describe), with INVALID_ARGUMENT, and
leave the namespace's deployments as they were."""

from __future__ import annotations

import pytest

from tests.apps.versioned import ACTIVITIES, V1
from tests.versioning_helpers import QUEUE, registered
from worker import Client, Worker
from worker._http import ns_path
from worker.errors import InvalidArgumentError

pytestmark = pytest.mark.integration


async def test_a_name_with_a_trailing_line_break_is_not_a_version(client: Client) -> None:
    async with Worker(
        client, task_queue=QUEUE, workflows=V1, activities=ACTIVITIES, deployment=("shop", "1")
    ):
        await registered(client, "1")
        before = await client.describe_deployment("shop")
        poll = {"task_queue": QUEUE, "identity": "t", "wait_s": 0.0}
        for dep, build in (("shop", "2\n"), ("shop\n", "2")):
            with pytest.raises(InvalidArgumentError, match="is not valid"):
                await client.call(
                    "POST",
                    ns_path(client.namespace, "/workflow-tasks/poll"),
                    {**poll, "deployment": dep, "build_id": build},
                )
        with pytest.raises(InvalidArgumentError, match="is not valid"):
            await client.set_current_version("shop", "1\n", allow_no_pollers=True)
        after = await client.describe_deployment("shop")
        assert [v["build_id"] for v in after["versions"]] == ["1"]
        assert after["revision"] == before["revision"]
    with pytest.raises(ValueError, match="is not valid"):
        Worker(
            client,
            task_queue=QUEUE,
            workflows=V1,
            activities=ACTIVITIES,
            deployment=("shop", "2\n"),
        )
