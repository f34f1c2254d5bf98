"""Routing and unpause values are taken as their JSON kinds only: `true` was
a 1 percent ramp (and a revision of 1), "50" fifty percent, and "yes" (or 1)
moved a run onto the current build, each changing routing nobody asked for;
"false" is refused as well, as a batch unpause refuses it."""

from __future__ import annotations

from typing import Any

import pytest

from tests.helpers import eventually
from tests.versioning_helpers import registered
from tests.versioning_helpers import shop_worker as build
from worker import Client
from worker.errors import InvalidArgumentError

pytestmark = pytest.mark.integration
QUEUE = "shop"


@pytest.mark.parametrize(
    "kw",
    [
        {"percent": True},
        {"percent": "50"},
        {"percent": 50, "expect_revision": True},
        {"percent": 50, "expect_revision": "1"},
        {"percent": 50, "allow_no_pollers": "no"},
    ],
)
async def test_a_ramp_given_another_kind_of_value_is_refused(
    client: Client, kw: dict[str, Any]
) -> None:
    async with build(client, "1"), build(client, "2"):
        await registered(client, "1", "2")
        await client.set_current_version("shop", "1")
        before = await client.describe_deployment("shop")
        percent = kw.pop("percent")
        with pytest.raises(InvalidArgumentError):
            await client.set_ramping_version("shop", "2", percent, **kw)
        after = await client.describe_deployment("shop")
        assert (after["ramping"], after["revision"]) == (before["ramping"], before["revision"])


@pytest.mark.parametrize("to_current", ["yes", "false", 1])
async def test_an_unpause_given_a_to_current_that_is_no_boolean_is_refused(
    client: Client, to_current: Any
) -> None:
    async with build(client, "1"):
        await registered(client, "1")
        await client.set_current_version("shop", "1")
        h = await client.start_workflow("Flow", id="held", task_queue=QUEUE)

        async def first_task() -> bool:
            events = await h.history()
            return any(e["event_type"] == "WorkflowTaskCompleted" for e in events)

        await eventually(first_task, timeout=20, what="the first task")
        await h.pause("hold")
        with pytest.raises(InvalidArgumentError, match="to_current"):
            await h.unpause(to_current=to_current)
        d = await h.describe()
        assert d["execution"]["paused"] and d["versioning"]["override"] is None
        await h.unpause(to_current=True)
        assert (await h.describe())["versioning"]["override"] == {"kind": "pinned", "build_id": "1"}
