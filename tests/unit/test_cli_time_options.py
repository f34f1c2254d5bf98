"""A time option that is not a time (``--started-after yesterday``) is a usage
error, exit 2 before anything is sent, as a bad number of seconds is: not an
``INVALID_ARGUMENT`` failure (exit 1) that reads like the server refused it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from ops.cli import cli

CASES = [
    (["workflow", "list", "--started-after", "yesterday"], "--started-after"),
    (["workflow", "list", "--started-before", ""], "--started-before"),
    (["workflow", "list", "--started-after", "2026-13-01"], "--started-after"),
    (["schedule", "backfill", "s", "--start", "nope", "--end", "2026-01-01T00:00:00Z"], "--start"),
    # a backfill's times need an offset: a bare one is refused, naming how to add it
    (
        [
            "schedule",
            "backfill",
            "s",
            "--start",
            "2026-01-01T00:00:00Z",
            "--end",
            "2026-01-02T10:00",
        ],
        "--end",
    ),
]


@pytest.mark.parametrize(("args", "option"), CASES, ids=[" ".join(a) for a, _ in CASES])
def test_a_time_that_is_not_one_is_a_usage_error(
    args: list[str], option: str, tmp_path: Path
) -> None:
    # no config: a usage error is found before any region is asked
    config = str(tmp_path / "absent.toml")
    result = CliRunner().invoke(cli, ["--config", config, "-o", "json", *args])
    assert result.exit_code == 2, result.output
    doc = json.loads(result.stdout)
    assert doc["error"]["code"] == "USAGE_ERROR", doc
    assert option in doc["error"]["message"], doc
    assert "Traceback" not in result.output


def test_an_iso_time_without_offset_is_taken_as_utc(tmp_path: Path) -> None:
    """A well-formed time passes the option and goes on to the config (absent here)."""
    config = str(tmp_path / "absent.toml")
    args = ["workflow", "list", "--started-after", "2026-01-01", "--started-before"]
    result = CliRunner().invoke(cli, ["--config", config, "-o", "json", *args, "2026-02-01T00:00Z"])
    assert result.exit_code == 1, result.output
    assert json.loads(result.stdout)["error"]["code"] == "INVALID_ARGUMENT"
