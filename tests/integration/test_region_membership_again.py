"""`baton namespace add-region` for a region the namespace has already, and
`remove-region` for one it lacks, are safe to run again, as every operator
command is: exit 0, saying nothing changed, and nothing changes, where they
failed with exit 1 and an error a runbook had to tell apart from a real
failure."""

from __future__ import annotations

import json
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
#: What add-region writes when it adds a region: the namespace's row, its
#: outbox, and the backfill's cursor.
STATE = (
    "SELECT regions::text || '|' || updated_at::text || '|' "
    "|| (SELECT count(*) FROM outbox) || '|' || (SELECT count(*) FROM namespace_backfills) "
    f"FROM namespaces WHERE name = '{NS}'"
)


def _baton(cfg: Path, *args: str, output: str = "json") -> tuple[int, Any]:
    result = CliRunner().invoke(cli, ["--config", str(cfg), *args, "--output", output])
    return result.exit_code, json.loads(result.stdout) if output == "json" else result.stdout


def test_adding_a_region_the_namespace_has_changes_nothing_and_says_so(
    pg: PgCluster, template_db: str, tmp_path: Path
) -> None:
    db_a, db_b, db_c = (fresh_database(pg, template_db) for _ in range(3))
    regions = {"region-a": db_a, "region-b": db_b, "region-c": db_c}
    cfg = write_config(
        tmp_path / "baton.toml", {name: (free_port(), pg.dsn(d)) for name, d in regions.items()}
    )
    # no broker answers: a region the namespace has needs none
    cfg.write_text(cfg.read_text() + '\n[kafka]\nbootstrap = "127.0.0.1:1"\n')
    for name in (db_a, db_b):
        pg.psql(
            name,
            "INSERT INTO namespaces (name, regions, active_region, failover_version) "
            f"VALUES ('{NS}', '{{region-a,region-b,region-c}}', 'region-a', 1)",
        )
    # region-c was added and backfilled by an earlier add-region
    pg.psql(
        db_a,
        "INSERT INTO namespace_backfills (namespace, region, state, total) "
        f"VALUES ('{NS}', 'region-c', 'done', 0)",
    )
    before = pg.psql(db_a, STATE)
    for region, role in (
        ("region-b", "a standby"),  # a standby from the start
        ("region-c", "a standby"),  # backfilled before
        ("region-a", "the active region"),
    ):
        code, out = _baton(cfg, "namespace", "add-region", NS, region)
        assert code == 0, out
        assert out["already_member"] is True and out["resumed"] is False, out
        assert (out["namespace"], out["region"], out["source"]) == (NS, region, "region-a"), out
        code, text = _baton(cfg, "namespace", "add-region", NS, region, output="table")
        assert code == 0 and f"{region} is {role} of {NS} already: nothing changed" in text, text
    assert pg.psql(db_a, STATE) == before


def test_removing_a_region_the_namespace_lacks_changes_nothing_and_says_so(
    pg: PgCluster, template_db: str, tmp_path: Path
) -> None:
    """As a second `remove-region` finds it: exit 0, `changed: false`. The
    active region is still refused: taking it out would lose the namespace."""
    db_a, db_b = fresh_database(pg, template_db), fresh_database(pg, template_db)
    cfg = write_config(
        tmp_path / "baton.toml",
        {"region-a": (free_port(), pg.dsn(db_a)), "region-b": (free_port(), pg.dsn(db_b))},
    )
    cfg.write_text(cfg.read_text() + '\n[kafka]\nbootstrap = "127.0.0.1:1"\n')
    pg.psql(
        db_a,
        "INSERT INTO namespaces (name, regions, active_region, failover_version) "
        f"VALUES ('{NS}', '{{region-a}}', 'region-a', 1)",
    )
    before = pg.psql(db_a, STATE)
    code, out = _baton(cfg, "namespace", "remove-region", NS, "region-b")
    assert code == 0, out
    assert out == {
        "namespace": NS,
        "removed": "region-b",
        "regions": ["region-a"],
        "changed": False,
    }
    code, text = _baton(cfg, "namespace", "remove-region", NS, "region-b", output="table")
    assert code == 0 and f"region-b is not a region of {NS}: nothing changed" in text, text
    code, out = _baton(cfg, "namespace", "remove-region", NS, "region-a")
    assert code == 1 and out["error"]["code"] == "INVALID_ARGUMENT", out
    assert "active region" in out["error"]["message"], out
    assert pg.psql(db_a, STATE) == before
