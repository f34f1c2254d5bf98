"""A --run-id that is not a UUID is refused by every command that takes one
before anything is sent: a usage error (exit 2) with INVALID_ARGUMENT, where
the server's refusal made it exit 1."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from ops.cli import cli


@pytest.mark.parametrize(
    "args",
    [
        ["workflow", "describe", "w"],
        ["workflow", "history", "w"],
        ["workflow", "result", "w"],
        ["workflow", "signal", "w", "go"],
        ["workflow", "query", "w", "state"],
        ["workflow", "cancel", "w"],
        ["workflow", "terminate", "w"],
        ["workflow", "pause", "w", "--reason", "r"],
        ["workflow", "unpause", "w"],
        ["workflow", "reset", "w", "--to", "first-workflow-task", "--reason", "r"],
        ["workflow", "update-versioning", "w", "--override", "auto-upgrade"],
        ["activity", "pause", "w", "a"],
    ],
)
def test_a_run_id_that_is_no_uuid_is_a_usage_error(args: list[str], tmp_path: Path) -> None:
    config = ["--config", str(tmp_path / "absent.toml")]
    result = CliRunner().invoke(cli, [*config, *args, "--run-id", "not-a-run", "-o", "json"])
    assert result.exit_code == 2, result.output
    error = json.loads(result.stdout)["error"]
    assert error["code"] == "INVALID_ARGUMENT" and "not a UUID" in error["message"], error
