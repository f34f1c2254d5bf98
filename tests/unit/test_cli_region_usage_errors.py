"""A region the config does not have, and a namespace create the server
would refuse for its name or regions, are usage errors the CLI finds
before anything is sent: exit 2 with the server's message, as the README
says of every refusal of usage. They were exit 1 (refused by the config
lookup, or sent and refused by the server)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from ops.cli import cli
from tests.helpers import free_port, write_config

CASES = [
    (["--region", "nope", "workflow", "list"], "unknown region 'nope'"),
    (["workflow", "describe", "w", "--region", "nope"], "unknown region 'nope'"),
    (["namespace", "list", "--region", "nope"], "unknown region 'nope'"),
    (["replication", "dlq", "list", "--region", "nope"], "unknown region 'nope'"),
    (["namespace", "create", "X", "--active", "region-c"], "unknown region 'region-c'"),
    (["namespace", "create", "X", "--regions", "region-a,region-q"], "unknown region 'region-q'"),
    (
        ["namespace", "create", "X", "--regions", "region-a", "--active", "region-b"],
        "active region 'region-b' is not among regions ['region-a']",
    ),
    (
        ["namespace", "create", "X", "--regions", "region-a,region-a"],
        "name region-a more than once",
    ),
    (["namespace", "create", "bad name"], "'bad name' is not a namespace name"),
]


@pytest.fixture
def config(tmp_path: Path) -> str:
    # servers and databases that are not there: nothing may be sent
    regions = {
        r: (free_port(), f"postgresql://baton@127.0.0.1:{free_port()}/baton")
        for r in ("region-a", "region-b")
    }
    return str(write_config(tmp_path / "baton.toml", regions))


@pytest.mark.parametrize(("args", "message"), CASES, ids=[" ".join(a) for a, _ in CASES])
def test_a_region_or_name_no_config_allows_is_a_usage_error(
    config: str, args: list[str], message: str
) -> None:
    for output in ("json", "table"):
        result = CliRunner().invoke(
            cli, ["--config", config, "--request-timeout", "1", "-o", output, *args]
        )
        assert result.exit_code == 2, result.output
        assert "Traceback" not in result.output
        if output == "json":
            error = json.loads(result.stdout)["error"]
            assert error["code"] == "INVALID_ARGUMENT" and message in error["message"], error
        else:
            assert "error [INVALID_ARGUMENT]: " in result.stderr, result.stderr
            assert message in result.stderr, result.stderr
