"""When a build drained: `drained_since` is never before the build stopped
being current (or ramping), and a build no pinned run ever used says when it
drained too, so a cleanup that retires builds drained for an hour can trust it.

Builds are in-process Workers of the ``shop`` deployment (see
``tests/apps/versioned.py``).
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

import pytest

from tests.versioning_helpers import registered
from tests.versioning_helpers import shop_worker as build
from worker import Client

pytestmark = pytest.mark.integration
QUEUE = "shop"


async def version(client: Client, build_id: str) -> dict[str, Any]:
    d = await client.describe_deployment("shop")
    return next(v for v in d["versions"] if v["build_id"] == build_id)


async def test_a_build_drains_from_when_it_stopped_being_current_not_from_an_older_close(
    client: Client,
) -> None:
    """Build 1's last pinned run closed while 1 was still current; set-current 2
    came later. Build 1 showed `drained` since that close, before it had
    stopped taking new work; a build with no pinned run showed no time at all."""
    async with build(client, "1"), build(client, "2"), build(client, "3"):
        await registered(client, "1", "2", "3")
        await client.set_current_version("shop", "1")
        h = await client.start_workflow("Order", 1, id="closed-early", task_queue=QUEUE)
        await h.signal("proceed")
        assert await h.result(timeout=20) == "v1"
        closed = datetime.fromisoformat((await h.describe())["execution"]["close_time"])
        await asyncio.sleep(0.2)
        moved = await client.set_current_version("shop", "2")
        assert moved["changed"]
        routed_away = datetime.fromisoformat(
            (await client.describe_deployment("shop"))["updated_at"]
        )
        one = await version(client, "1")
        assert one["status"] == "drained"
        assert datetime.fromisoformat(one["drained_since"]) >= routed_away > closed
        # build 2 took no pinned run: it drains the moment 3 takes its place
        await client.set_current_version("shop", "3")
        two = await version(client, "2")
        assert two["status"] == "drained" and two["drained_since"] is not None
        assert datetime.fromisoformat(two["drained_since"]) > routed_away
