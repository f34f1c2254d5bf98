"""What the CLI refuses itself, before anything is sent, is a usage error
(exit 2), as click's own are: a time option that is not a time
(``--started-after yesterday``), JSON that is not JSON, options that conflict.
It was exit 1, which reads like a failure of the operation itself."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from ops.cli import cli
from ops.cli_base import Seconds

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
    (
        ["schedule", "create", "s", "-t", "T", "-q", "q", "--cron", "@daily", "--start-time", "x"],
        "--start-time",
    ),
    (
        ["schedule", "update", "s", "--cron", "@daily", "--end-time", "2026-01-02T10:00"],
        "--end-time",
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


REFUSED_BEFORE_SENDING = [
    ["workflow", "start", "-t", "T", "-q", "q", "--id", "w", "--input", "{bad"],
    ["workflow", "start", "-t", "T", "-q", "q", "--id", "w", "--memo", "[1]"],
    ["workflow", "start", "-t", "T", "-q", "q", "--id", "w", "--search-attribute", "=1"],
    ["workflow", "signal", "w", "s", "--input", "nope"],
    ["schedule", "create", "s", "-t", "T", "-q", "q"],  # no time: --cron, --calendar or ...
    ["schedule", "create", "s", "-t", "T", "-q", "q", "--cron", "61 * * * *"],
    ["schedule", "trigger", "s", "--overlap", "sometimes"],
    ["schedule", "backfill", "s", "--start", "2026-01-02T00:00:00Z", "--end", "2026-01-01T00:00Z"],
    ["batch", "describe", "a/b"],
    ["batch", "start", "--query", "x", "--op", "signal", "--reason", "r"],  # no --signal
    ["workflow", "unpause", "w", "--to-current", "--build-id", "b1"],
    # NaN, Infinity and a number past a double are not JSON (they were taken, then
    # refused by the SDK with exit 1, or sent on as infinite)
    ["workflow", "start", "-t", "T", "-q", "q", "--id", "w", "--input", "NaN"],
    ["workflow", "start", "-t", "T", "-q", "q", "--id", "w", "--memo", '{"a": Infinity}'],
    ["workflow", "signal", "w", "s", "--input", "1e400"],
    ["workflow", "update", "w", "u", "--input", "[-Infinity]"],
    ["batch", "start", "-q", "x", "--op", "signal", "s", "--input", "NaN", "--reason", "r"],
    ["schedule", "create", "s", "-t", "T", "-q", "q", "--cron", "@daily", "--input", "[NaN]"],
    # the shorthand options are a query of their own: the server took one or the other
    ["workflow", "list", "--query", "WorkflowType = 'T'", "--status", "running"],
    ["workflow", "list", "-q", "CustomerId = 'c'", "--prefix", "order-", "--type", "T"],
]


@pytest.mark.parametrize("args", REFUSED_BEFORE_SENDING, ids=" ".join)
def test_a_value_the_cli_refuses_before_sending_is_a_usage_error(
    args: list[str], tmp_path: Path
) -> None:
    """Exit 2, as click's own usage errors: the command line is to fix and
    nothing was sent; the code still says what kind of problem it is."""
    config = str(tmp_path / "absent.toml")
    for output in ("json", "table"):
        result = CliRunner().invoke(cli, ["--config", config, "-o", output, *args])
        assert result.exit_code == 2, result.output
        assert "Traceback" not in result.output
        if output == "json":
            assert json.loads(result.stdout)["error"]["code"] == "INVALID_ARGUMENT", result.stdout
        else:
            assert "error [INVALID_ARGUMENT]" in result.stderr, result.stderr


@pytest.mark.parametrize(
    ("text", "seconds"), [("90", 90.0), ("1.5", 1.5), ("15m", 900.0), ("1h30m", 5400.0)]
)
def test_a_timeout_takes_seconds_or_a_span_as_temporal_s_cli_does(
    text: str, seconds: float
) -> None:
    """`--run-timeout 1h` (Temporal's CLI takes it) was a usage error reading
    "'1h' is not a valid seconds"."""
    assert Seconds().convert(text, None, None) == seconds


@pytest.mark.parametrize("text", ["5x", "", "1h 30m", "-15m", "m"])
def test_what_is_neither_seconds_nor_a_span_is_a_usage_error_saying_what_it_takes(
    text: str, tmp_path: Path
) -> None:
    config = str(tmp_path / "absent.toml")
    args = ["workflow", "start", "-t", "T", "-q", "q", "--id", "w", "--run-timeout", text]
    result = CliRunner().invoke(cli, ["--config", config, "-o", "json", *args])
    assert result.exit_code == 2, result.output
    message = json.loads(result.stdout)["error"]["message"]
    assert "--run-timeout" in message and "a span like 1h30m" in message, message


def test_query_and_shorthand_options_name_the_options(tmp_path: Path) -> None:
    """It was the server's INVALID_ARGUMENT naming its own fields ("give either
    query or the fixed filters (status, ...)"), exit 1, after connecting."""
    config = str(tmp_path / "absent.toml")
    args = ["workflow", "list", "--query", "WorkflowType = 'T'", "--prefix", "o-", "--status"]
    result = CliRunner().invoke(cli, ["--config", config, "-o", "json", *args, "failed"])
    assert result.exit_code == 2, result.output
    message = json.loads(result.stdout)["error"]["message"]
    assert "--query" in message and "--status, --prefix" in message, message


def test_an_empty_query_beside_shorthand_options_is_no_conflict(tmp_path: Path) -> None:
    """An empty query matches every run, so the options alone filter (the
    config is absent here: the command got as far as reading it)."""
    config = str(tmp_path / "absent.toml")
    args = ["workflow", "list", "--query", "", "--status", "running"]
    result = CliRunner().invoke(cli, ["--config", config, "-o", "json", *args])
    assert result.exit_code == 1, result.output
    assert "config" in json.loads(result.stdout)["error"]["message"].lower()


@pytest.mark.parametrize(
    "args",
    [
        ["workflow", "-o", "json", "list"],
        ["namespace", "search-attribute", "--output", "json", "list"],
        ["replication", "-o", "json", "dlq", "list"],
    ],
    ids=" ".join,
)
def test_the_output_may_be_chosen_before_any_command_of_the_line(
    args: list[str], tmp_path: Path
) -> None:
    """Regression: only the root took it (`baton -o json workflow list`);
    `baton workflow -o json list` was "No such option '-o'"."""
    config = str(tmp_path / "absent.toml")
    result = CliRunner().invoke(cli, ["--config", config, *args])
    # the config is absent: the error document says so, as JSON on stdout
    assert result.exit_code == 1, result.output
    assert json.loads(result.stdout)["error"]["code"] == "INVALID_ARGUMENT", result.stdout


def test_a_command_s_own_output_overrides_its_group_s(tmp_path: Path) -> None:
    config = str(tmp_path / "absent.toml")
    args = ["--config", config, "workflow", "-o", "json", "list", "-o", "table"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 1, result.output
    assert "error [INVALID_ARGUMENT]" in result.stderr and not result.stdout.strip()
