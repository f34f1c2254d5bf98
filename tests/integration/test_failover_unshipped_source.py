"""A graceful failover from a region that holds unshipped batches of the
namespace and none of whose servers answers is refused at once with
``UNAVAILABLE`` naming the source and the way out (``--force``), and nothing
moves: its servers publish the outbox, so the drain could only hold every
write for the whole ``--timeout`` and then give up with a timeout."""

from __future__ import annotations

import dataclasses
import time

import pytest

from replication.failover import graceful_failover
from store.errors import Unavailable
from tests.conftest import RegionPair
from tests.helpers import eventually, free_port
from tests.integration.test_run_state import QUEUE, HoldBack, fetchval, two_region_ns

pytestmark = pytest.mark.integration
NS = "unshipped"
ROW = (
    "SELECT active_region || '/' || state || '/' || failover_version "
    "FROM namespaces WHERE name = $1"
)


async def test_a_source_that_cannot_ship_its_outbox_is_refused_at_once(
    regions: RegionPair,
) -> None:
    rs = regions
    client = await two_region_ns(rs, NS)

    async def in_b() -> bool:
        return await fetchval(rs.b, ROW, NS) == f"{rs.a.name}/active/1"

    await eventually(in_b, timeout=30, what="the namespace in region-b")
    # the source's servers no longer answer (their address is gone), and a
    # start of the namespace waits in its outbox
    gone = dataclasses.replace(
        rs.a.config.regions[rs.a.name], url=f"http://127.0.0.1:{free_port()}"
    )
    config = dataclasses.replace(rs.a.config, regions={**rs.a.config.regions, rs.a.name: gone})
    async with HoldBack(rs.a):
        await client.start_workflow("T", id="held", task_queue=QUEUE)
        began = time.monotonic()
        with pytest.raises(Unavailable) as refused:
            await graceful_failover(config, NS, rs.b.name, timeout_s=20)
        assert time.monotonic() - began < 15  # not the drain's whole timeout
        assert refused.value.details == {"source": rs.a.name, "url": gone.url}
        assert f"--to {rs.b.name} --force" in refused.value.message
        for r in (rs.a, rs.b):
            assert await fetchval(r, ROW, NS) == f"{rs.a.name}/active/1", r.name
    # once it ships, the same failover moves the namespace with the start
    moved = await graceful_failover(rs.a.config, NS, rs.b.name, timeout_s=30)
    assert (moved.target, moved.version) == (rs.b.name, 2)
    held = "SELECT count(*) FROM executions WHERE namespace = $1 AND workflow_id = 'held'"
    assert await fetchval(rs.b, held, NS) == 1
