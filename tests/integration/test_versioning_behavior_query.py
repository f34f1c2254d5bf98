"""A VersioningBehavior query takes Temporal's spellings (Pinned, AutoUpgrade)
as well as Baton's, and refuses a value that is none, where it matched nothing."""

from __future__ import annotations

import pytest

from tests.apps.versioned import V1
from tests.helpers import eventually
from tests.versioning_helpers import QUEUE, registered
from tests.versioning_helpers import shop_worker as build
from worker import Client, InvalidQueryError, Worker

pytestmark = pytest.mark.integration


async def test_versioning_behavior_reads_temporals_spellings(client: Client) -> None:
    async with build(client, "1"):
        await registered(client, "1")
        await client.set_current_version("shop", "1")
    async with Worker(client, task_queue=QUEUE, workflows=V1, deployment=("shop", "1")):
        await client.start_workflow("Order", 1, id="pinned-run", task_queue=QUEUE)
        await client.start_workflow("Flow", id="upgrading-run", task_queue=QUEUE)

        async def both_ran() -> bool:
            return await client.count_workflows("VersioningBehavior IS NOT NULL") == 2

        await eventually(both_ran, timeout=20, what="both runs' first workflow task")

    async def ids(query: str) -> list[str]:
        return sorted([r.id async for r in client.list_workflows(query)])

    for pinned in ("pinned", "Pinned", "VERSIONING_BEHAVIOR_PINNED"):
        assert await ids(f"VersioningBehavior = '{pinned}'") == ["pinned-run"], pinned
    for upgrade in ("auto-upgrade", "AutoUpgrade", "VERSIONING_BEHAVIOR_AUTO_UPGRADE"):
        assert await ids(f"VersioningBehavior = '{upgrade}'") == ["upgrading-run"], upgrade
    assert await ids("VersioningBehavior != 'Pinned'") == ["upgrading-run"]
    both = "VersioningBehavior IN ('Pinned', 'AutoUpgrade')"
    assert await ids(both) == ["pinned-run", "upgrading-run"]
    assert await client.count_workflows("VersioningBehavior NOT IN ('AutoUpgrade')") == 1
    # a prefix is no value: it is matched as it is written
    assert await ids("VersioningBehavior STARTS_WITH 'auto'") == ["upgrading-run"]

    # a value that is no behavior is refused, naming the ones there are
    with pytest.raises(InvalidQueryError, match="use pinned or auto-upgrade"):
        await client.count_workflows("VersioningBehavior = 'Pinnned'")
