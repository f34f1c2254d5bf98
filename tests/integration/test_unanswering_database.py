"""Operator commands that open connections to region databases themselves give
up on a database that takes the connection and never answers within a
bounded time (not asyncpg's minute), naming the region and what to check."""

from __future__ import annotations

import asyncio
import json
import socket
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ops.pg import PgCluster
from tests.conftest import fresh_database
from tests.helpers import free_port, write_config

pytestmark = pytest.mark.integration
NS = "payments"


@pytest.fixture
def silent_database() -> Iterator[str]:
    """The DSN of a "database" whose host takes TCP connections (the kernel
    completes them) and never says a word, as a hung or half-dead host does."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        yield f"postgresql://postgres@127.0.0.1:{listener.getsockname()[1]}/baton"


async def _baton(cfg: Path, *args: str) -> tuple[int, Any, str, float]:
    """(exit code, JSON on stdout, stderr, seconds taken) of one command."""
    began = time.monotonic()
    proc = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "ops.cli", "--config", str(cfg), *args, "--output", "json"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(90):
        out, err = await proc.communicate()
    return (
        int(proc.returncode or 0),
        json.loads(out or b"null"),
        err.decode(),
        (time.monotonic() - began),
    )


async def test_commands_give_up_on_a_silent_region_database_and_name_it(
    pg: PgCluster, template_db: str, tmp_path: Path, silent_database: str
) -> None:
    up = fresh_database(pg, template_db)
    pg.psql(
        up,
        "INSERT INTO namespaces (name, regions, active_region, failover_version) "
        f"VALUES ('{NS}', '{{region-a,region-b}}', 'region-a', 1)",
    )
    cfg = write_config(
        tmp_path / "baton.toml",
        {"region-a": (free_port(), pg.dsn(up)), "region-b": (free_port(), silent_database)},
    )
    cfg.write_text(cfg.read_text() + '\n[kafka]\nbootstrap = "127.0.0.1:1"\n')
    quick = ("--request-timeout", "2")
    commands = [
        ("failover", NS, "--to", "region-b"),
        ("failover", NS, "--to", "region-b", "--force"),
        ("replication", "verify", NS),
        ("replication", "dlq", "list", "--region", "region-b"),
        ("replication", "dlq", "retry", "1", "--region", "region-b"),
        ("replication", "dlq", "purge", "1", "--region", "region-b"),
        ("replication", "conflicts", "--region", "region-b"),
    ]
    for args in commands:
        code, out, err, took = await _baton(cfg, *quick, *args)
        assert code == 1 and out["error"]["code"] == "UNAVAILABLE", (args, out, err)
        message = out["error"]["message"]
        assert "region-b" in message and "within 2 s" in message, (args, message)
        assert "[regions.region-b]" in message, (args, message)
        # 2 s for region-b, as much again reading the namespace's regions, and
        # the start of a Python process on a loaded machine: well under a minute
        assert took < 30, (args, took)
    # the namespace stays where it was, writable
    row = pg.psql(up, f"SELECT active_region, state FROM namespaces WHERE name = '{NS}'")
    assert row.split() == ["region-a|active"], row

    code, out, err, took = await _baton(cfg, *quick, "replication", "status")
    assert code == 1 and "region-b" in err, (out, err)
    assert took < 30, took
    # what could not be read is null, not 0: no broker, no partitions known;
    # region-b's database silent, nothing known of what it applied
    assert out and all(row["partitions"] is None for row in out), out
    applied = {row["region"]: row["applied_partitions"] for row in out}
    assert applied["region-b"] is None and applied["region-a"] == 0, out

    # without --request-timeout, the bound is 10 s, not asyncpg's 60 s
    code, out, err, took = await _baton(cfg, "replication", "dlq", "list", "--region", "region-b")
    assert code == 1 and "within 10 s" in out["error"]["message"], (out, err)
    assert took < 40, took


async def test_migrate_gives_up_on_a_silent_region_database_within_the_request_timeout(
    pg: PgCluster, tmp_path: Path, silent_database: str
) -> None:
    """``baton migrate`` named only the address and waited its own 10 s,
    whatever ``--request-timeout`` said; and it stopped at the first region
    that failed, so an upgrade with one region down migrated none after it."""
    empty = f"t_{uuid.uuid4().hex[:12]}"
    pg.create_database(empty)  # no schema yet: migrate up creates it
    cfg = write_config(
        tmp_path / "baton.toml",
        {"region-b": (free_port(), silent_database), "region-a": (free_port(), pg.dsn(empty))},
    )
    for verb in ("status", "up"):
        code, rows, err, took = await _baton(cfg, "--request-timeout", "1", "migrate", verb)
        assert code == 1 and "region-b" in err, (verb, rows, err)
        silent, up = rows
        assert silent["region"] == "region-b" and silent["error"]["code"] == "UNAVAILABLE"
        message = silent["error"]["message"]
        assert "region region-b" in message and "within 1 s" in message, (verb, message)
        assert "[regions.region-b]" in message, (verb, message)
        assert up["region"] == "region-a", (verb, up)
        assert up["up_to_date"] is (verb == "up"), (verb, up)
        assert took < 9, (verb, took)
    # region-a was migrated past the silent region before it
    code, rows, err, _ = await _baton(cfg, "migrate", "status", "--region", "region-a")
    assert code == 0 and rows[0]["up_to_date"] is True, (rows, err)
    # one region asked for, and it does not answer: the command's own error
    code, out, err, _ = await _baton(
        cfg, "--request-timeout", "1", "migrate", "up", "--region", "region-b"
    )
    assert code == 1 and out["error"]["code"] == "UNAVAILABLE", (out, err)
