"""`baton failover` and the replication views as an operator drives them when
a failover process dies or a region is down."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from ops.cli import cli
from ops.pg import PgCluster
from replication.failover import FailoverTimedOut, graceful_failover
from store import db
from store.config import load_config
from store.errors import Unavailable
from tests.conftest import fresh_database, serve_region
from tests.helpers import eventually, free_port, write_config

pytestmark = pytest.mark.integration

NS = "payments"


def _baton(cfg: Path, *args: str) -> tuple[int, Any]:
    result = CliRunner().invoke(cli, ["--config", str(cfg), *args, "--output", "json"])
    return result.exit_code, json.loads(result.stdout)


def _baton_err(cfg: Path, *args: str) -> tuple[int, Any, str]:
    """(exit code, JSON on stdout, stderr) of one command."""
    result = CliRunner().invoke(cli, ["--config", str(cfg), *args, "--output", "json"])
    return result.exit_code, json.loads(result.stdout), result.stderr


async def _state(dsn: str) -> str:
    conn = await db.connect(dsn)
    try:
        state: str = await conn.fetchval("SELECT state FROM namespaces WHERE name = $1", NS)
        return state
    finally:
        await conn.close()


def _two_regions_behind(
    pg: PgCluster, template_db: str, tmp_path: Path
) -> tuple[Path, tuple[str, str], tuple[str, str]]:
    """A config of two region databases holding NS, active in region-a, with a
    batch region-a has not shipped: region-b is behind, and a handover waits
    for it. No server of either region runs (see :func:`_both_serving`).
    Returns the config, the databases and their DSNs."""
    db_a, db_b = fresh_database(pg, template_db), fresh_database(pg, template_db)
    a, b = pg.dsn(db_a), pg.dsn(db_b)
    cfg = write_config(
        tmp_path / "baton.toml", {"region-a": (free_port(), a), "region-b": (free_port(), b)}
    )
    # No broker answers here: the failover never gets past the source's outbox.
    cfg.write_text(cfg.read_text() + '\n[kafka]\nbootstrap = "127.0.0.1:1"\n')
    for name in (db_a, db_b):
        pg.psql(
            name,
            "INSERT INTO namespaces (name, regions, active_region, failover_version) "
            f"VALUES ('{NS}', '{{region-a,region-b}}', 'region-a', 1)",
        )
    pg.psql(
        db_a,
        "INSERT INTO outbox (namespace, workflow_id, run_id, first_event_id, last_event_id, "
        f"version) VALUES ('{NS}', 'w', gen_random_uuid(), 1, 3, 1)",
    )
    return cfg, (db_a, db_b), (a, b)


@contextlib.asynccontextmanager
async def _both_serving(cfg: Path) -> AsyncIterator[None]:
    """Both regions' APIs answering (a handover checks, before it begins, that
    its target serves and that a source holding unshipped batches does) while
    the stream still cannot carry anything: no broker answers."""
    config = load_config(cfg)
    async with serve_region(config, "region-a"), serve_region(config, "region-b"):
        yield


async def test_a_handover_left_by_a_killed_failover_is_abandoned_by_failing_over_to_its_source(
    pg: PgCluster, template_db: str, tmp_path: Path
) -> None:
    cfg, (db_a, _), (a, _) = _two_regions_behind(pg, template_db, tmp_path)
    async with _both_serving(cfg):
        failover = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "ops.cli",
            "--config",
            str(cfg),
            "failover",
            NS,
            "--to",
            "region-b",
            "--timeout",
            "600",
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        try:

            async def in_handover() -> bool:
                return await _state(a) == "handover"

            await eventually(in_handover, what="the failover's handover")
            # While that failover runs, going back to region-a is its business.
            code, out = await asyncio.to_thread(_baton, cfg, "failover", NS, "--to", "region-a")
            assert code == 1 and out["error"]["code"] == "NAMESPACE_IN_HANDOVER", out
            assert await _state(a) == "handover"
            failover.send_signal(signal.SIGKILL)  # the operator's session died
            await failover.wait()
        finally:
            if failover.returncode is None:
                failover.kill()
                await failover.wait()
        assert await _state(a) == "handover"  # every write in region-a is refused

        code, out = await asyncio.to_thread(_baton, cfg, "failover", NS, "--to", "region-a")
        assert code == 0, out
        assert out["handover_abandoned"] is True and out["target"] == "region-a", out
        assert await _state(a) == "active"
        # Run again, there is no handover left to abandon: nothing moves, and it says so.
        for force in ((), ("--force",)):
            code, out = await asyncio.to_thread(
                _baton, cfg, "failover", NS, "--to", "region-a", *force
            )
            assert code == 0, out
            assert out["already_active"] is True and not out["handover_abandoned"], out
            assert (out["namespace"], out["target"], out["version"]) == (NS, "region-a", 1), out
            assert out["workflows_rebuilt"] == 0, out
        table = await asyncio.to_thread(
            CliRunner().invoke, cli, ["--config", str(cfg), "failover", NS, "--to", "region-a"]
        )
        assert table.exit_code == 0, table.output
        assert f"{NS} is already active in region-a (failover version 1): nothing moved" in (
            table.stdout
        ), table.output
        assert await _state(a) == "active"

        # A forced failover to the region that holds the handover abandons it too.
        pg.psql(
            db_a,
            f"UPDATE namespaces SET state = 'handover' WHERE name = '{NS}'",
        )
        code, out = await asyncio.to_thread(
            _baton, cfg, "failover", NS, "--to", "region-a", "--force"
        )
        assert code == 0 and out["handover_abandoned"] is True, out
        assert await _state(a) == "active"


async def test_a_failover_that_cannot_go_on_says_what_to_do_next(
    pg: PgCluster, template_db: str, tmp_path: Path
) -> None:
    cfg, _, (a, _) = _two_regions_behind(pg, template_db, tmp_path)
    async with _both_serving(cfg):
        code, out = await asyncio.to_thread(
            _baton, cfg, "failover", NS, "--to", "region-b", "--timeout", "0.5"
        )
        assert code == 1 and out["error"]["code"] == "FAILOVER_TIMED_OUT", out
        assert f"baton replication status --namespace {NS}" in out["error"]["message"], out
        assert await _state(a) == "active"

        # The active region's database is down: a graceful failover cannot hand
        # over, and the answer names the forced one.
        down = cfg.read_text().replace(a, f"postgresql://postgres@127.0.0.1:{free_port()}/x")
        cfg.write_text(down)
        code, out = await asyncio.to_thread(_baton, cfg, "failover", NS, "--to", "region-b")
        assert code == 1 and out["error"]["code"] == "UNAVAILABLE", out
        assert f"baton failover {NS} --to region-b --force" in out["error"]["message"], out


def test_the_dead_letters_and_conflicts_of_the_regions_that_are_up_are_listed_in_an_outage(
    pg: PgCluster, template_db: str, tmp_path: Path
) -> None:
    up = fresh_database(pg, template_db)
    pg.psql(
        up,
        "INSERT INTO replication_dlq (source_region, topic, kafka_partition, kafka_offset, "
        "namespace, workflow_id, message, error, attempts) VALUES ('region-b', "
        "'baton.replication.region-b', 0, 7, 'payments', 'w', '{\"type\": \"history\"}', "
        "'boom', 3)",
    )
    cfg = write_config(
        tmp_path / "baton.toml",
        {
            "region-a": (free_port(), pg.dsn(up)),
            "region-b": (free_port(), f"postgresql://postgres@127.0.0.1:{free_port()}/x"),
        },
    )
    code, rows, err = _baton_err(cfg, "replication", "dlq", "list")
    assert code == 1, err
    assert [(r["region"], r["kafka_offset"]) for r in rows] == [("region-a", 7)]
    assert "UNAVAILABLE" in err and "region-b" in err, err
    code, rows, err = _baton_err(cfg, "replication", "conflicts")
    assert code == 1 and rows == [], err
    assert "UNAVAILABLE" in err and "region-b" in err, err
    # Asked for the region that is down alone: an error naming it.
    code, out, _ = _baton_err(cfg, "replication", "dlq", "list", "--region", "region-b")
    assert code == 1 and out["error"]["code"] == "UNAVAILABLE", out
    assert "region-b" in out["error"]["message"], out


async def test_a_failover_to_a_target_with_no_server_is_refused_before_its_handover(
    pg: PgCluster, template_db: str, tmp_path: Path
) -> None:
    """A target none of whose servers answers applies nothing, so it never
    catches up: the failover refuses it at once, before the handover, where it
    held every write of the namespace for the whole --timeout and then
    answered FAILOVER_TIMED_OUT, which sent the operator to wait for a lag
    that could not shrink."""
    cfg, _, (a, _) = _two_regions_behind(pg, template_db, tmp_path)
    said: list[str] = []
    started = time.monotonic()
    with pytest.raises(Unavailable) as refused:
        await graceful_failover(
            load_config(cfg), NS, "region-b", timeout_s=60, progress=said.append
        )
    assert time.monotonic() - started < 30
    assert refused.value.details["target"] == "region-b", refused.value.details
    assert "baton server --region region-b" in refused.value.message
    assert f"{NS} stays active in region-a" in refused.value.message
    assert not any("handover" in m for m in said), said  # writes were never held
    assert await _state(a) == "active"


async def test_a_failover_stopped_by_sigterm_undoes_its_handover(
    pg: PgCluster, template_db: str, tmp_path: Path
) -> None:
    """``timeout 60 baton failover ...`` and process supervisors stop it with
    SIGTERM: the handover is undone, as for Ctrl-C, not left refusing writes.
    The process ignores SIGINT, as one a script starts in the background does."""
    cfg, _, (a, _) = _two_regions_behind(pg, template_db, tmp_path)
    async with _both_serving(cfg):
        failover = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "ops.cli", "--config", str(cfg)),
            *("failover", NS, "--to", "region-b", "--timeout", "600", "--output", "json"),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
        )
        try:

            async def in_handover() -> bool:
                return await _state(a) == "handover"

            await eventually(in_handover, what="the failover's handover")
            failover.send_signal(signal.SIGTERM)
            async with asyncio.timeout(30):
                out, err = await failover.communicate()
        finally:
            if failover.returncode is None:
                failover.kill()
                await failover.wait()
        assert failover.returncode == 130, err
        assert b"interrupted" in err and b"Traceback" not in err, err
        # with --output json, stdout is still one JSON document a script can read
        assert json.loads(out)["error"]["code"] == "INTERRUPTED", out
        assert await _state(a) == "active"


def test_a_failover_to_a_region_the_namespace_lacks_names_add_region(
    pg: PgCluster, template_db: str, tmp_path: Path
) -> None:
    one = fresh_database(pg, template_db)
    pg.psql(
        one,
        "INSERT INTO namespaces (name, regions, active_region, failover_version) "
        f"VALUES ('{NS}', '{{region-a}}', 'region-a', 1)",
    )
    cfg = write_config(
        tmp_path / "baton.toml",
        {"region-a": (free_port(), pg.dsn(one)), "region-b": (free_port(), pg.dsn(one))},
    )
    cfg.write_text(cfg.read_text() + '\n[kafka]\nbootstrap = "127.0.0.1:1"\n')
    code, out = _baton(cfg, "failover", NS, "--to", "region-b")
    assert code == 1 and out["error"]["code"] == "INVALID_ARGUMENT", out
    assert f"baton namespace add-region {NS} region-b" in out["error"]["message"], out


async def test_a_draining_handover_reports_what_the_target_still_lacks(
    pg: PgCluster, template_db: str, tmp_path: Path
) -> None:
    cfg, _, _ = _two_regions_behind(pg, template_db, tmp_path)
    async with _both_serving(cfg):
        said: list[str] = []
        with pytest.raises(FailoverTimedOut):
            await graceful_failover(
                load_config(cfg), NS, "region-b", timeout_s=0.5, progress=said.append
            )
        assert any("1 batch(es) of payments in region-a's outbox" in m for m in said), said


def test_a_failover_to_a_region_whose_database_is_down_names_it_and_moves_nothing(
    pg: PgCluster, template_db: str, tmp_path: Path
) -> None:
    db_a, db_b = fresh_database(pg, template_db), fresh_database(pg, template_db)
    for name in (db_a, db_b):
        pg.psql(
            name,
            "INSERT INTO namespaces (name, regions, active_region, failover_version) "
            f"VALUES ('{NS}', '{{region-a,region-b}}', 'region-a', 1)",
        )
    down = pg.dsn(db_b).replace(f"port={pg.port}", f"port={free_port()}")
    assert down != pg.dsn(db_b)
    cfg = write_config(
        tmp_path / "baton.toml", {"region-a": (free_port(), pg.dsn(db_a)), "region-b": (1, down)}
    )
    cfg.write_text(cfg.read_text() + '\n[kafka]\nbootstrap = "127.0.0.1:1"\n')
    for force in ([], ["--force"]):
        code, out = _baton(cfg, "failover", NS, "--to", "region-b", *force)
        assert code == 1 and out["error"]["code"] == "UNAVAILABLE", out
        message = out["error"]["message"]
        assert "region-b" in message and "nothing moved" in message, out
    row = pg.psql(
        db_a, f"SELECT active_region, failover_version, state FROM namespaces WHERE name = '{NS}'"
    )
    assert row.split() == ["region-a|1|active"], row


def test_conflicts_of_a_namespace_no_region_knows_is_namespace_not_found(
    pg: PgCluster, template_db: str, tmp_path: Path
) -> None:
    """A misspelt --namespace must not read as "no conflicts" to a script."""
    one = fresh_database(pg, template_db)
    pg.psql(
        one,
        "INSERT INTO namespaces (name, regions, active_region, failover_version) "
        f"VALUES ('{NS}', '{{region-a}}', 'region-a', 1)",
    )
    cfg = write_config(tmp_path / "baton.toml", {"region-a": (free_port(), pg.dsn(one))})
    code, out = _baton(cfg, "replication", "conflicts", "--namespace", NS)
    assert (code, out) == (0, []), out
    code, out = _baton(cfg, "replication", "conflicts", "--namespace", NS + "x")
    assert code == 1 and out["error"]["code"] == "NAMESPACE_NOT_FOUND", out
    assert "baton namespace list" in out["error"]["message"], out


def test_dlq_purge_without_an_id_or_with_an_id_and_all_is_a_usage_error(
    pg: PgCluster, template_db: str, tmp_path: Path
) -> None:
    one = fresh_database(pg, template_db)
    for offset in (7, 8):
        pg.psql(
            one,
            "INSERT INTO replication_dlq (source_region, topic, kafka_partition, kafka_offset, "
            "namespace, workflow_id, message, error, attempts) VALUES ('region-b', "
            f"'baton.replication.region-b', 0, {offset}, 'payments', 'w', "
            "'{\"type\": \"history\"}', 'boom', 3)",
        )
    ids = pg.psql(one, "SELECT id FROM replication_dlq ORDER BY id").split()
    cfg = write_config(tmp_path / "baton.toml", {"region-a": (free_port(), pg.dsn(one))})
    purge = ("replication", "dlq", "purge", "--region", "region-a")
    for extra in ((), (ids[0], "--all")):
        code, out, err = _baton_err(cfg, *purge, *extra)
        assert code == 2 and out["error"]["code"] == "USAGE_ERROR", (extra, out, err)
        assert "--all" in out["error"]["message"], out
        result = CliRunner().invoke(cli, ["--config", str(cfg), *purge, *extra])
        assert result.exit_code == 2 and "--all" in result.stderr, result.output
    assert pg.psql(one, "SELECT id FROM replication_dlq ORDER BY id").split() == ids
    code, out, err = _baton_err(cfg, *purge, ids[0])
    assert code == 0 and out["purged"] == [int(ids[0])], (out, err)
    code, out, err = _baton_err(cfg, *purge, "--all")
    assert code == 0 and out["purged"] == [int(ids[1])], (out, err)


def test_allow_behind_without_force_is_a_usage_error(tmp_path: Path) -> None:
    """Refused before any config or database is read, as an option that
    cannot go with the others is."""
    args = ["--config", str(tmp_path / "absent.toml"), "failover", NS, "--to", "region-b"]
    result = CliRunner().invoke(cli, [*args, "--allow-behind", "--output", "json"])
    assert result.exit_code == 2, result.output
    error = json.loads(result.stdout)["error"]
    assert error["code"] == "USAGE_ERROR" and "--force" in error["message"], error


@pytest.mark.parametrize(
    "args",
    [
        ("failover", "a/b", "--to", "region-b"),
        ("failover", "a b", "--to", "region-b", "--force"),
        ("replication", "verify", "a?b"),
        ("replication", "conflicts", "--namespace", "a/b"),
        ("namespace", "add-region", "a/b", "region-b"),
    ],
)
def test_a_namespace_name_no_namespace_can_have_is_refused_saying_what_a_name_holds(
    tmp_path: Path, args: tuple[str, ...]
) -> None:
    """Said at once, before any region database is asked (these are down)."""
    down = f"postgresql://postgres@127.0.0.1:{free_port()}/x"
    cfg = write_config(tmp_path / "baton.toml", {"region-a": (1, down), "region-b": (2, down)})
    cfg.write_text(cfg.read_text() + '\n[kafka]\nbootstrap = "127.0.0.1:1"\n')
    code, out = _baton(cfg, *args)
    assert code == 1 and out["error"]["code"] == "INVALID_ARGUMENT", out
    assert "letters, digits, '.', '_' and '-'" in out["error"]["message"], out
