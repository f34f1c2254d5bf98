"""`-o` given twice: the last one wins for a usage error too, as it does for
a command's answer, where `-o json -o table` printed the error as JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from ops.cli import cli


@pytest.mark.parametrize(
    "args",
    [
        ["workflow", "list", "-o", "json", "-o", "table", "--bogus"],
        ["-o", "json", "workflow", "list", "-o", "table", "--bogus"],
        ["workflow", "-o", "json", "list", "--output=table", "--bogus"],
        ["-o", "json", "-o", "table", "workflow", "list", "--bogus"],
        ["workflow", "describe", "w", "--run-id", "nope", "-o", "json", "-otable"],
    ],
)
def test_a_later_table_output_prints_a_usage_error_plain(args: list[str], tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["--config", str(tmp_path / "absent.toml"), *args])
    assert result.exit_code == 2, result.output
    assert result.stdout == "", result.stdout
    assert "Error:" in result.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["workflow", "list", "-o", "table", "-o", "json", "--bogus"],
        ["-o", "table", "workflow", "list", "--bogus", "-ojson"],
        ["workflow", "list", "--bogus", "--output", "json"],
        ["workflow", "describe", "w", "--run-id", "nope", "-o", "table", "--output=json"],
    ],
)
def test_a_later_json_output_prints_a_usage_error_as_json(args: list[str], tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["--config", str(tmp_path / "absent.toml"), *args])
    assert result.exit_code == 2, result.output
    assert json.loads(result.stdout)["error"]["code"] in ("USAGE_ERROR", "INVALID_ARGUMENT")
