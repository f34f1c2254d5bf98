"""`baton server` and the operator commands on a config that cannot work: a
typed error naming the key to fix, at once, and no server left half-started."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from ops.pg import PgCluster
from tests.helpers import ROOT, free_port, write_config


def baton(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ops.cli", "--config", str(config), *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("dsn_of", "fix"),
    [
        (lambda pg, db: pg.dsn("no_such_database"), "the database name"),
        (lambda pg, db: pg.dsn(db).replace("postgres@", "nobody@"), "the user and password"),
    ],
    ids=["database", "role"],
)
def test_a_dsn_naming_what_the_database_lacks_is_a_typed_error(
    pg: PgCluster, template_db: str, tmp_path: Path, dsn_of: object, fix: str
) -> None:
    # It was `error [INTERNAL]: database error: InvalidCatalogNameError: ...`,
    # which names neither the config key nor a next step.
    dsn = dsn_of(pg, template_db)  # type: ignore[operator]
    cfg = write_config(tmp_path / "baton.toml", {"region-a": (free_port(), dsn)})
    served = baton(cfg, "server", "--region", "region-a")
    assert served.returncode == 1, served.stderr
    assert "error [INVALID_ARGUMENT]" in served.stderr
    assert "[regions.region-a]" in served.stderr and fix in served.stderr
    assert "Traceback" not in served.stderr
    status = baton(cfg, "-o", "json", "migrate", "status")
    assert status.returncode == 1
    assert '"INVALID_ARGUMENT"' in status.stdout and "[regions.region-a]" in status.stdout


@pytest.mark.parametrize(
    ("settings", "url_port", "named"),
    [
        ({"retention_sweep_intervl_s": 5}, None, "did you mean 'retention_sweep_interval_s'"),
        ({"retention_sweep_interval_s": 0}, None, "[baton] retention_sweep_interval_s must be"),
        ({}, 99999, "[regions.region-a] url must be"),
    ],
    ids=["typo", "zero-interval", "port"],
)
def test_a_bad_setting_stops_the_server_before_it_starts(
    pg: PgCluster,
    template_db: str,
    tmp_path: Path,
    settings: dict[str, object],
    url_port: int | None,
    named: str,
) -> None:
    # A typo or a zero interval started a server on other values than written,
    # and a port out of range was a ValueError traceback.
    port = url_port or free_port()
    cfg = write_config(
        tmp_path / "baton.toml", {"region-a": (port, pg.dsn(template_db))}, **settings
    )
    served = baton(cfg, "server", "--region", "region-a")
    assert served.returncode == 1, served.stderr
    assert "error [INVALID_ARGUMENT]" in served.stderr and named in served.stderr
    assert "Traceback" not in served.stderr


def test_a_port_out_of_range_is_a_usage_error(tmp_path: Path) -> None:
    # It was an OverflowError traceback from bind().
    cfg = write_config(tmp_path / "baton.toml", {"region-a": (free_port(), "postgresql://x/y")})
    for bad in ("99999", "0", "-1"):
        served = baton(cfg, "server", "--region", "region-a", "--port", bad)
        assert served.returncode == 2, served.stderr
        assert "--port" in served.stderr and "Traceback" not in served.stderr


def test_an_address_another_process_holds_is_named_before_anything_starts(
    pg: PgCluster, template_db: str, tmp_path: Path
) -> None:
    # It was UNAVAILABLE "cannot reach a region database or server (Address
    # already in use): check that it is up", after the server's loops ran.
    port = free_port()
    cfg = write_config(tmp_path / "baton.toml", {"region-a": (port, pg.dsn(template_db))})
    holder = socket.socket()
    try:
        holder.bind(("127.0.0.1", port))
        holder.listen()
        served = baton(cfg, "server", "--region", "region-a")
    finally:
        holder.close()
    assert served.returncode == 1, served.stderr
    assert "error [INVALID_ARGUMENT]" in served.stderr
    assert f"127.0.0.1:{port}" in served.stderr and "[regions.region-a]" in served.stderr
    assert "another process listens there" in served.stderr
