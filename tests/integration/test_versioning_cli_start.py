"""`baton workflow start --versioning-behavior`: a start's behaviour from the CLI.

The SDK's start (and the API) let a start override its workflow type's
versioning behaviour, as the README says; the CLI's start had no way to.
"""

from __future__ import annotations

import pytest

from tests.conftest import Region
from tests.helpers import baton_json, eventually
from tests.versioning_helpers import QUEUE, registered
from tests.versioning_helpers import shop_worker as build
from worker import Client

pytestmark = pytest.mark.integration


async def test_a_cli_start_pins_an_auto_upgrade_type(client: Client, region: Region) -> None:
    async with build(client, "1"), build(client, "2"):
        await registered(client, "1", "2")
        await client.set_current_version("shop", "1")
        start = ("workflow", "start", "-t", "Flow", "-q", QUEUE, "--id")
        code, _, err = await baton_json(
            region.config_path, *start, "held", "--versioning-behavior", "pinned"
        )
        assert code == 0, err
        code, _, err = await baton_json(
            region.config_path, *start, "bad", "--versioning-behavior", "sticky"
        )
        assert code == 2 and "sticky" in err, err
        h = client.get_workflow_handle("held")

        async def pinned() -> bool:
            return (await h.describe())["execution"]["build_id"] == "1"

        await eventually(pinned, timeout=20, what="the run's first task on build 1")
        view = (await h.describe())["versioning"]
        assert (view["behavior"], view["effective_behavior"]) == ("pinned", "pinned")
        await client.set_current_version("shop", "2")
        await h.signal("next", "x")
        await h.signal("finish")
        assert await h.result(timeout=20) == ["did x"]
    events = await h.history()
    ran = [
        e["attributes"]["worker_version"]
        for e in events
        if e["event_type"] == "WorkflowTaskCompleted"
    ]
    assert set(ran) == {"shop:1"}, ran
