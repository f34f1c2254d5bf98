"""A standby's copies of the inputs waiting behind a started task in the
active region, when the namespace moves: they waited in a region the
namespace has left, and the new active region's history brings those it
holds, so the standby keeps none (one it kept sat under a seq the new active
region numbers its own waiting inputs with, and a failover to the standby
wrote it in their place). A deposed region keeps its own: it ships them, for
the new active region to re-apply."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from replication.apply import apply_buffered_txn, apply_namespace_txn
from tests.conftest import Region
from tests.integration.test_apply_rules import apply, batch, event, ns_info

pytestmark = pytest.mark.integration


def _waiting(region: str, rid: uuid.UUID, version: int, seqs: list[int]) -> dict[str, Any]:
    info = ns_info(region, version)
    return {
        **batch(region, rid, [event(1, version, "WorkflowExecutionStarted")]),
        "type": "buffered_v1",
        "version": version,
        "events": [],
        "namespace_info": info,
        "buffered": [
            {"seq": s, "event_type": "WorkflowExecutionSignaled", "attributes": {"n": s}}
            for s in seqs
        ],
    }


async def _waiting_here(region: Region) -> list[int]:
    rows = await region.store.pool.fetch(
        "SELECT seq FROM buffered_events WHERE namespace = 'rules' ORDER BY seq"
    )
    return [r["seq"] for r in rows]


async def _buffered(region: Region, msg: dict[str, Any]) -> None:
    await region.store.txn(lambda conn: apply_buffered_txn(region.store, conn, region.name, msg))


async def _moved(region: Region, info: dict[str, Any]) -> None:
    await region.store.txn(lambda conn: apply_namespace_txn(conn, region.name, info))


async def test_a_standby_drops_the_waiting_inputs_of_a_region_the_namespace_left(
    region: Region,
) -> None:
    rid = uuid.uuid4()
    await apply(region, batch(region.name, rid, [event(i, 1) for i in (1, 2, 3)]))
    await _buffered(region, _waiting(region.name, rid, 1, [1, 2]))
    assert await _waiting_here(region) == [1, 2]
    # the namespace moves on, from "elsewhere" to a third region
    moved = {
        **ns_info(region.name, 102),
        "regions": [region.name, "elsewhere", "third"],
        "active_region": "third",
        "updated_at": "2026-01-02T00:00:00+00:00",
    }
    await _moved(region, moved)
    assert await _waiting_here(region) == []
    # the old region's waiting inputs shipped late are not kept either
    late = _waiting(region.name, rid, 1, [1, 2, 3])
    await _buffered(region, {**late, "namespace_info": moved})
    assert await _waiting_here(region) == []
    # the new active region's are
    own = _waiting(region.name, rid, 102, [1])
    await _buffered(region, {**own, "source_region": "third", "namespace_info": moved})
    assert await _waiting_here(region) == [1]


async def test_a_deposed_region_keeps_its_own_waiting_inputs(region: Region) -> None:
    rid = uuid.uuid4()
    here = {**ns_info(region.name, 1), "active_region": region.name}
    await _moved(region, here)
    await region.store.pool.execute(
        "INSERT INTO buffered_events (namespace, workflow_id, run_id, seq, event_type, "
        "attributes) VALUES ('rules', 'wf', $1, 1, 'WorkflowExecutionSignaled', '{}')",
        rid,
    )
    await _moved(region, {**ns_info(region.name, 2), "updated_at": "2026-01-02T00:00:00+00:00"})
    assert await _waiting_here(region) == [1]
