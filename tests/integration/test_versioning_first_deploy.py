"""A deployment's first build polls, nobody made it current: describe says why
the run does not move.

A deployment takes work from its first `set-current`; until then its queue's
new work goes to unversioned workers, as in Temporal. A run started then sat
with its first workflow task pending while the build's workers polled the
same queue, and describe said nothing of it (`next_task_version` null, no
note): the first step of a deploy forgotten looked like a hung server.
"""

from __future__ import annotations

import pytest

from tests.helpers import eventually
from tests.versioning_helpers import QUEUE, registered
from tests.versioning_helpers import shop_worker as build
from worker import Client

pytestmark = pytest.mark.integration


async def test_a_run_for_unversioned_workers_says_set_current_is_what_it_lacks(
    client: Client,
) -> None:
    async with build(client, "1"):
        await registered(client, "1")
        h = await client.start_workflow("Order", 1, id="first", task_queue=QUEUE)
        d = await h.describe()
        assert d["pending_workflow_task"] is not None
        view = d["versioning"]
        assert view["next_task_version"] is None and not view["waiting_for_poller"]
        assert "unversioned workers on task queue 'shop'" in view["note"]
        assert "shop:1" in view["note"]
        assert "baton deployment set-current shop BUILD" in view["note"]
        await client.set_current_version("shop", "1")

        async def moved() -> bool:
            return (await h.describe())["execution"]["build_id"] == "1"

        await eventually(moved, timeout=20, what="the run taken by build 1")
        assert "note" not in (await h.describe())["versioning"]
        await h.signal("proceed")
        assert await h.result(timeout=20) == "v1"
