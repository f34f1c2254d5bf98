"""A standby told that the active region refused a deposed region's branch
drops only that branch, not the history a later promotion wrote.

Region A is deposed by a forced failover to B, and the namespace then moves
gracefully on to C. When A returns, C refuses A's late tail and ships the
outline of the refusal (winning version: C's). B holds the same event ids as
that tail, written under B's own version after the forced failover, and C
holds them too: they are history, not the lost branch, and must stay.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from replication.conflicts import converge_txn
from tests.conftest import Region
from tests.integration.test_apply_rules import apply, batch, conflicts, event, history

pytestmark = pytest.mark.integration


async def refusal(
    region: Region, rid: uuid.UUID, first: int, last: int, losing: int, winning: int
) -> dict[str, Any]:
    """The outline the active region ships of a branch it refused (its row of
    the run: this region's, as both hold the history before the branch)."""
    row = await region.store.pool.fetchval(
        "SELECT to_jsonb(e) FROM executions e WHERE run_id = $1", rid
    )
    shipped = batch(region.name, rid, [event(i, winning) for i in range(1, last + 1)], winning)
    return {
        "type": "conflict_v1",
        "source_region": "elsewhere",
        "namespace": "rules",
        "workflow_id": "wf",
        "run_id": str(rid),
        "execution": row,
        "namespace_info": shipped["namespace_info"],
        "conflict": {
            "kind": "rejected_batch",
            "first_event_id": first,
            "last_event_id": last,
            "losing_version": losing,
            "winning_version": winning,
            "events": [],
        },
    }


async def converge(region: Region, msg: dict[str, Any]) -> None:
    await region.store.txn(lambda conn: converge_txn(region.store, conn, msg))


async def test_history_of_a_later_version_than_the_refused_branch_stays(region: Region) -> None:
    rid = uuid.uuid4()
    # events 1..3 of the deposed region (version 3), then 4..5 the forced
    # failover's target wrote under version 101
    await apply(region, batch(region.name, rid, [event(i, 3) for i in (1, 2, 3)], ns_version=3))
    await apply(region, batch(region.name, rid, [event(i, 101) for i in (4, 5)], ns_version=101))
    before = await history(region)
    # the region active now (version 102) refused the deposed region's 4..5
    await converge(region, await refusal(region, rid, 4, 5, losing=3, winning=102))
    assert await history(region) == before == [(1, 3), (2, 3), (3, 3), (4, 101), (5, 101)]
    assert await conflicts(region) == []


async def test_a_copy_of_the_refused_branch_is_still_dropped(region: Region) -> None:
    rid = uuid.uuid4()
    await apply(region, batch(region.name, rid, [event(i, 3) for i in range(1, 6)], ns_version=3))
    await converge(region, await refusal(region, rid, 4, 5, losing=3, winning=102))
    assert await history(region) == [(1, 3), (2, 3), (3, 3)]
    [c] = await conflicts(region)
    assert (c["kind"], c["first_event_id"], c["losing_version"]) == ("local_tail", 4, 3)
