"""`baton namespace add-region` to a region none of whose servers answers is
refused with ``UNAVAILABLE`` naming the region, its URL and the command that
starts its servers, and nothing changes; a backfill resumed there keeps its
cursor and says how to resume it. The region's servers apply the backfill:
without them add-region waited its whole --timeout (half an hour by
default) and ended in a bare ``TIMEOUT`` that said nothing of why."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from ops.cli import cli
from ops.pg import PgCluster
from tests.conftest import fresh_database
from tests.helpers import free_port, write_config

pytestmark = pytest.mark.integration

NS = "payments"
#: What add-region writes: the namespace's row, its outbox, the backfill's cursor.
STATE = (
    "SELECT regions::text || '|' || updated_at::text || '|' "
    "|| (SELECT count(*) FROM outbox) || '|' "
    "|| (SELECT coalesce(string_agg(region || ':' || state, ','), '') FROM namespace_backfills) "
    f"FROM namespaces WHERE name = '{NS}'"
)


def _baton(cfg: Path, *args: str) -> tuple[int, Any]:
    result = CliRunner().invoke(cli, ["--config", str(cfg), *args, "--output", "json"])
    return result.exit_code, json.loads(result.stdout)


def _regions(pg: PgCluster, template_db: str, tmp_path: Path) -> tuple[Path, str]:
    """Regions a and c on databases of their own, NS active in region-a alone;
    no server of either runs. Returns the config and region-a's database."""
    db_a, db_c = fresh_database(pg, template_db), fresh_database(pg, template_db)
    cfg = write_config(
        tmp_path / "baton.toml",
        {"region-a": (free_port(), pg.dsn(db_a)), "region-c": (free_port(), pg.dsn(db_c))},
    )
    cfg.write_text(cfg.read_text() + '\n[kafka]\nbootstrap = "127.0.0.1:1"\n')
    pg.psql(
        db_a,
        "INSERT INTO namespaces (name, regions, active_region, failover_version) "
        f"VALUES ('{NS}', '{{region-a}}', 'region-a', 1)",
    )
    return cfg, db_a


def test_adding_a_region_whose_servers_are_down_is_refused_and_changes_nothing(
    pg: PgCluster, template_db: str, tmp_path: Path
) -> None:
    cfg, db_a = _regions(pg, template_db, tmp_path)
    before = pg.psql(db_a, STATE)
    started = time.monotonic()
    code, out = _baton(cfg, "namespace", "add-region", NS, "region-c", "--timeout", "20")
    assert time.monotonic() - started < 20
    assert code == 1 and out["error"]["code"] == "UNAVAILABLE", out
    message = out["error"]["message"]
    assert "baton server --region region-c" in message and "nothing changed" in message, out
    assert out["error"]["details"]["region"] == "region-c", out
    assert pg.psql(db_a, STATE) == before


def test_resuming_a_backfill_to_a_region_whose_servers_are_down_says_how_to_resume(
    pg: PgCluster, template_db: str, tmp_path: Path
) -> None:
    cfg, db_a = _regions(pg, template_db, tmp_path)
    # an earlier add-region added region-c and was stopped while it shipped
    pg.psql(
        db_a,
        f"UPDATE namespaces SET regions = '{{region-a,region-c}}' WHERE name = '{NS}'; "
        "INSERT INTO namespace_backfills (namespace, region, state, total) "
        f"VALUES ('{NS}', 'region-c', 'shipping', 0)",
    )
    before = pg.psql(db_a, STATE)
    code, out = _baton(cfg, "namespace", "add-region", NS, "region-c", "--timeout", "20")
    assert code == 1 and out["error"]["code"] == "UNAVAILABLE", out
    assert (
        f"`baton namespace add-region {NS} region-c` again resumes it" in (out["error"]["message"])
    ), out
    assert pg.psql(db_a, STATE) == before
