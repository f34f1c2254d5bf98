"""A forced failover to a region none of whose servers answers moves the
namespace (a lost region is worse) and says on stderr that nothing serves it
there until its servers start, where the table alone read as all done."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from ops.pg import PgCluster
from tests.integration.test_failover_cli import NS, _baton_err, _state, _two_regions_behind

pytestmark = pytest.mark.integration


async def test_a_forced_failover_to_an_unserved_region_says_nothing_serves_it(
    pg: PgCluster, template_db: str, tmp_path: Path
) -> None:
    cfg, _, (_, b) = _two_regions_behind(pg, template_db, tmp_path)
    code, out, err = await asyncio.to_thread(
        _baton_err, cfg, "failover", NS, "--to", "region-b", "--force"
    )
    assert code == 0 and out["target"] == "region-b" and out["forced"] is True, (out, err)
    assert await _state(b) == "active"
    assert "no server of region-b answers" in err, err
    assert "baton server --region region-b" in err, err
