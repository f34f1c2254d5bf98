"""Deployment and build names the server cannot route are refused where they
come in (a poll, a routing change, a describe), with INVALID_ARGUMENT, and
leave the namespace's deployments as they were."""

from __future__ import annotations

import pytest

from tests.apps.versioned import ACTIVITIES, V1
from tests.conftest import Region
from tests.helpers import baton_json
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


async def test_an_empty_or_slashed_deployment_name_is_refused_not_sent(
    client: Client, region: Region
) -> None:
    """An empty name made ``GET .../deployments/``, which redirects to the list:
    describe answered None (the CLI printed ``null`` and exit 0). A '/' named
    no route (NOT_FOUND). Both are names no worker can have."""
    async with Worker(
        client, task_queue=QUEUE, workflows=V1, activities=ACTIVITIES, deployment=("shop", "1")
    ):
        await registered(client, "1")
        for name in ("", "sh/op"):
            with pytest.raises(InvalidArgumentError, match="deployment name"):
                await client.describe_deployment(name)
            with pytest.raises(InvalidArgumentError, match="deployment name"):
                await client.set_current_version(name, "1")
            with pytest.raises(InvalidArgumentError, match="deployment name"):
                await client.set_ramping_version(name, "1", 10)
        # the CLI refuses an empty name as a usage error before sending it
        code, out, _ = await baton_json(region.config_path, "deployment", "describe", "")
        assert code == 2 and out["error"]["code"] == "USAGE_ERROR", out
        assert "deployment name" in out["error"]["message"], out
        code, out, _ = await baton_json(region.config_path, "deployment", "set-current", "", "1")
        assert code == 2 and out["error"]["code"] == "USAGE_ERROR", out
        # a name with '/' passes the CLI's check and the SDK refuses it
        code, out, _ = await baton_json(region.config_path, "deployment", "describe", "sh/op")
        assert code == 1 and out["error"]["code"] == "INVALID_ARGUMENT", out
        assert (await client.describe_deployment("shop"))["revision"] == 0
