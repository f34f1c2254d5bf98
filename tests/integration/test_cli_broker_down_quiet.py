"""A command that cannot reach the Kafka broker reports it as its own typed
error, and only that: aiokafka's own log line of the refused connection
("Unable connect to ...") no longer reaches stderr beside it, where logging's
last resort printed it in every command but `baton server`."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import pytest

from ops.pg import PgCluster
from tests.integration.test_failover_cli import NS, _two_regions_behind

pytestmark = pytest.mark.integration


async def test_replication_status_with_the_broker_down_prints_only_its_error(
    pg: PgCluster, template_db: str, tmp_path: Path
) -> None:
    cfg, _, _ = _two_regions_behind(pg, template_db, tmp_path)  # no broker answers
    proc = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "ops.cli", "--config", str(cfg), "--output", "json"),
        *("replication", "status", "--namespace", NS),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(120):
        out, err = await proc.communicate()
    assert proc.returncode == 1, (out, err)
    # what the regions' databases say, the lag left unknown
    rows = json.loads(out)
    assert [r["consumer_lag_messages"] for r in rows] == [None, None], rows
    # a lag not known is not exact (it said `lag_exact: true` beside the null)
    assert [r["lag_exact"] for r in rows] == [False, False], rows
    assert err.startswith(b"error [UNAVAILABLE]"), err
    assert b"Unable connect" not in err, err
    assert b"Traceback" not in err, err


async def test_replication_status_table_with_the_broker_down_says_unreachable(
    pg: PgCluster, template_db: str, tmp_path: Path
) -> None:
    cfg, _, _ = _two_regions_behind(pg, template_db, tmp_path)  # no broker answers
    proc = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "ops.cli", "--config", str(cfg)),
        *("replication", "status", "--namespace", NS),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(120):
        out, err = await proc.communicate()
    assert proc.returncode == 1, (out, err)
    # an unknown lag is no lower bound of one: never '≥None'
    assert "unreachable" in out.decode() and "None" not in out.decode(), out.decode()
