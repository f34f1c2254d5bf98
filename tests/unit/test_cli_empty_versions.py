"""An empty build id, version or failover name on the CLI (an unset shell
variable) is a usage error naming what it takes, as an empty id, name or
DEPLOYMENT is: exit 2 before anything is sent, not an INVALID_ARGUMENT
(exit 1) from the server or from a check after the config is read."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from ops.cli import cli


@pytest.mark.parametrize(
    ("args", "names"),
    [
        (["deployment", "set-current", "shop", ""], "BUILD_ID"),
        (["deployment", "set-current", "shop", " "], "BUILD_ID"),
        (["deployment", "set-ramping", "shop", "", "--percent", "5"], "BUILD_ID"),
        (["workflow", "unpause", "w", "--build-id", ""], "--build-id"),
        (["workflow", "update-versioning", "w", "--pinned", ""], "--pinned"),
        (["workflow", "update-versioning", "w", "--one-time", ""], "--one-time"),
        (
            ["workflow", "update-versioning", "w", "--override", "pinned", "--version", ""],
            "--version",
        ),
        (
            ["batch", "start", "--query", "", "--op", "unpause", "--build-id", "", "--reason", "r"],
            "--build-id",
        ),
        (
            [
                *("batch", "start", "--query", "", "--op", "update-versioning"),
                *("--override", "pinned", "--version", "", "--reason", "r"),
            ],
            "--version",
        ),
        (["failover", "", "--to", "region-b"], "NAMESPACE"),
        (["failover", "payments", "--to", ""], "--to"),
    ],
)
def test_an_empty_build_version_or_failover_name_is_a_usage_error(
    args: list[str], names: str, tmp_path: Path
) -> None:
    config = ["--config", str(tmp_path / "absent.toml")]
    result = CliRunner().invoke(cli, [*config, *args, "-o", "json"])
    assert result.exit_code == 2, result.output
    error = json.loads(result.stdout)["error"]
    assert error["code"] == "USAGE_ERROR", error
    assert names in error["message"] and "is empty" in error["message"], error
