"""Every CLI command answers in JSON on request (``--output json``) as well as
in a table: scripts drive Baton through the same commands people use."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from ops.cli import cli
from ops.cli_base import CliInputError, Seconds, name_value_pairs
from ops.output import emit, kv_table, table


def commands(cmd: click.Command, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    if isinstance(cmd, click.Group):
        for name, sub in sorted(cmd.commands.items()):
            yield from commands(sub, (*path, name))
    else:
        yield path


def command(path: tuple[str, ...]) -> click.Command:
    cmd: click.Command = cli
    for name in path:
        assert isinstance(cmd, click.Group)
        cmd = cmd.commands[name]
    return cmd


ALL = list(commands(cli))


def test_the_cli_has_its_commands() -> None:
    # the walk below sees the whole tree, not an empty one
    assert len(ALL) >= 50
    assert ("workflow", "start") in ALL and ("failover",) in ALL


@pytest.mark.parametrize("path", ALL, ids=[" ".join(p) for p in ALL])
def test_every_command_answers_in_json_or_a_table(path: tuple[str, ...]) -> None:
    options = [p for p in command(path).params if "--output" in getattr(p, "opts", ())]
    assert options, f"`baton {' '.join(path)}` has no --output"
    choices = getattr(options[0].type, "choices", ())
    assert {"json", "table"} <= set(choices), choices


@pytest.mark.parametrize(
    ("args", "json_out"),
    [
        (["-o", "json", "workflow", "describe", "x"], True),
        (["--output", "json", "namespace", "list"], True),
        (["-o", "json", "workflow", "describe", "x", "-o", "table"], False),
        (["workflow", "describe", "x"], False),
    ],
)
def test_output_given_before_the_command_is_its_default(
    args: list[str], json_out: bool, tmp_path: Path
) -> None:
    """``baton -o json workflow describe X`` answers as ``baton workflow
    describe X -o json`` does; the command's own option wins."""
    missing = tmp_path / "absent.toml"
    result = CliRunner().invoke(cli, ["--config", str(missing), *args])
    assert result.exit_code == 1
    if json_out:
        assert json.loads(result.stdout)["error"]["code"] == "INVALID_ARGUMENT"
    else:
        assert not result.stdout.lstrip().startswith("{")
        assert "INVALID_ARGUMENT" in result.output


def test_every_timeout_option_takes_only_a_positive_finite_number_of_seconds() -> None:
    timed = {
        (path, opt): param
        for path in ALL
        for param in command(path).params
        for opt in param.opts
        # the root's --request-timeout, taken after every command too
        if "timeout" in opt and not str(param.name).startswith("global_")
    }
    start = ["-t", "T", "-q", "q", "--id", "w"]
    sws = ["workflow", "signal-with-start", *start, "--signal", "s"]
    argv = {
        ("failover",): ["failover", "default", "--to", "region-b"],
        ("workflow", "result"): ["workflow", "result", "w"],
        ("workflow", "query"): ["workflow", "query", "w", "q"],
        ("workflow", "update"): ["workflow", "update", "w", "u"],
        ("namespace", "add-region"): ["namespace", "add-region", "default", "region-b"],
        ("workflow", "start"): ["workflow", "start", *start],
        ("workflow", "execute"): ["workflow", "execute", *start],
        ("workflow", "signal-with-start"): sws,
    }
    assert {path for path, _ in timed} == set(argv)
    assert (("workflow", "start"), "--run-timeout") in timed
    for (path, opt), param in timed.items():
        for bad in ("-5", "0", "-0.0", "nan", "inf"):
            result = CliRunner().invoke(cli, [*argv[path], opt, bad, "-o", "json"])
            # refused while parsing: nothing ran, no config was read
            assert result.exit_code == 2, (path, opt, bad, result.output)
            assert opt in result.output, (path, opt, bad, result.output)
        assert isinstance(param.type, Seconds)
    assert Seconds().convert("0.5", None, None) == 0.5


def test_replication_status_exits_1_when_it_cannot_read_a_region(tmp_path: Path) -> None:
    """Nothing listens on the config's ports: the figures show as unreachable
    (null in JSON), and the exit status says so for scripts and monitors."""
    ports = []
    for _ in range(3):
        with socket.socket() as s:  # a port nothing listens on once closed
            s.bind(("127.0.0.1", 0))
            ports.append(s.getsockname()[1])
    config = tmp_path / "baton.toml"
    config.write_text(
        f'[kafka]\nbootstrap = "127.0.0.1:{ports[0]}"\n'
        f'[regions."a"]\nurl = "http://127.0.0.1:{ports[1]}"\n'
        f'dsn = "postgresql://postgres@127.0.0.1:{ports[1]}/a"\ninitial_version = 1\n'
        f'[regions."b"]\nurl = "http://127.0.0.1:{ports[2]}"\n'
        f'dsn = "postgresql://postgres@127.0.0.1:{ports[2]}/b"\ninitial_version = 2\n'
    )
    result = CliRunner().invoke(
        cli, ["--config", str(config), "replication", "status", "-o", "json"]
    )
    assert result.exit_code == 1, result.output
    rows = json.loads(result.stdout)
    assert {(r["region"], r["source"]) for r in rows} >= {("a", "b"), ("b", "a")}
    assert all(r["consumer_lag_messages"] is None for r in rows)
    assert "UNAVAILABLE" in result.stderr


@pytest.mark.parametrize("verb", ["retry", "purge"])
@pytest.mark.parametrize("bad", ["0", "-1", str(2**63), "99999999999999999999"])
def test_a_dead_letter_id_out_of_range_is_a_usage_error(verb: str, bad: str) -> None:
    """An id no dead letter can have is refused before any database is asked
    (which would answer a DATABASE_ERROR pointing at the dsn)."""
    result = CliRunner().invoke(
        cli, ["replication", "dlq", verb, "--region", "a", "--", bad], catch_exceptions=False
    )
    assert result.exit_code == 2, result.output
    assert "DLQ_ID" in result.output and "range" in result.output, result.output


def test_a_table_printed_into_a_pipe_keeps_each_row_on_one_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``baton workflow list | grep`` finds a run id whole: into a pipe the
    table takes the width it needs instead of folding cells into 80 columns."""
    monkeypatch.delenv("COLUMNS", raising=False)
    run_id = "81744cab-43c7-457a-918e-9d217b375912"
    columns = ["workflow id", "run id", "type", "task queue", "status", "started", "closed"]
    row = ["order-1", run_id, "Order", "orders", "completed", "2026-12-04 13:57:45.577", "-"]
    emit([row], "table", lambda rows: table(columns, rows))
    out = capsys.readouterr().out
    (line,) = [text for text in out.splitlines() if "order-1" in text]
    assert run_id in line and "2026-12-04 13:57:45.577" in line, out
    assert "task queue" in out, out


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["workflow", "list", "--status", "bogus", "-o", "json"], "--status"),
        (["-o", "json", "workflow", "list", "--status", "bogus"], "--status"),
        (["workflow", "start", "--type", "T", "--output=json"], "--task-queue"),
        (["workflow", "describe", "-o", "json"], "WORKFLOW_ID"),
        (["-o", "json", "workflow", "lst"], "lst"),
        (["-o", "json", "--request-timeout", "0", "workflow", "list"], "--request-timeout"),
        (["workflow", "reset", "w", "--reason", "r", "-o", "json"], "--event-id"),
        (["-o", "json", "workflow"], "needs a command"),
    ],
)
def test_a_usage_error_with_json_output_is_a_json_error_too(args: list[str], says: str) -> None:
    """A script that asked for JSON can read why its command line was refused
    (exit 2 and the usage on stderr, as ever)."""
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2, result.output
    error = json.loads(result.stdout)["error"]
    assert error["code"] == "USAGE_ERROR"
    assert says in error["message"] and "--help" in error["message"], error
    assert result.stderr


def test_a_usage_error_with_table_output_leaves_stdout_empty() -> None:
    result = CliRunner().invoke(cli, ["workflow", "list", "--status", "bogus"])
    assert result.exit_code == 2
    assert result.stdout == "" and "--status" in result.stderr


@pytest.mark.parametrize(
    ("args", "option", "most"),
    [
        (["workflow", "start", "-t", "T", "-q", "q", "--id", "w"], "--task-timeout", 3600),
        (["workflow", "start", "-t", "T", "-q", "q", "--id", "w"], "--run-timeout", 315360000),
        (["workflow", "query", "w", "q"], "--timeout", 300),
        (["workflow", "update", "w", "u"], "--timeout", 3600),
    ],
)
def test_a_timeout_past_the_server_s_bound_is_refused_naming_the_option(
    args: list[str], option: str, most: int, tmp_path: Path
) -> None:
    """Not an INVALID_ARGUMENT naming the wire field (task_timeout_s) after a round trip."""
    config = ["--config", str(tmp_path / "absent.toml")]
    result = CliRunner().invoke(cli, [*config, *args, option, str(most + 1), "-o", "json"])
    assert result.exit_code == 2, result.output
    assert option in json.loads(result.stdout)["error"]["message"], result.stdout
    # the bound itself passes the parser (the missing config fails it after)
    result = CliRunner().invoke(cli, [*config, *args, option, str(most), "-o", "json"])
    assert result.exit_code == 1, result.output


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["workflow", "start", "-t", "T", "-q", "q", "--id", "w"], "--request-id"),
        (["workflow", "signal", "w", "s"], "--request-id"),
        (["workflow", "signal", "w", "s"], "--run-id"),
        (["workflow", "update", "w", "u"], "--update-id"),
        (["workflow", "terminate", "w"], "--request-id"),
        (["workflow", "describe", "w"], "--run-id"),
        (["workflow", "history", "w"], "--run-id"),
    ],
)
def test_an_empty_id_option_is_refused_not_taken_as_left_out(
    args: list[str], option: str, tmp_path: Path
) -> None:
    """`--run-id "$RUN"` with RUN unset must not act on the current run, nor
    `--update-id ""` send an update under a fresh id its retry cannot find."""
    config = ["--config", str(tmp_path / "absent.toml")]
    result = CliRunner().invoke(cli, [*config, *args, option, "", "-o", "json"])
    assert result.exit_code == 2, result.output
    assert option in json.loads(result.stdout)["error"]["message"], result.stdout


def test_an_empty_key_value_table_printed_into_a_pipe_is_short_and_says_none(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A table of nothing is its title and ``(none)``, not 2000 columns of blanks."""
    monkeypatch.delenv("COLUMNS", raising=False)
    emit({}, "table", lambda d: kv_table(d, title="Search attributes"))
    out = capsys.readouterr().out
    assert "Search attributes" in out and "(none)" in out, out
    assert max(len(line) for line in out.splitlines()) <= 80, out


def test_name_value_pairs_take_json_and_keep_what_is_not_json_as_typed() -> None:
    """One parser for --search-attribute of workflows and schedules alike: NaN
    and infinities are not JSON, so they stay the text typed (as ``inf`` does),
    and a Double attribute refuses them all with one message."""
    got = name_value_pairs(
        ["A=NaN", "B=1e999", "C=inf", "D=-Infinity", "E=1.5", "F=7", "G=ops", " H =true"],
        "--search-attribute",
    )
    assert got == {
        "A": "NaN",
        "B": "1e999",
        "C": "inf",
        "D": "-Infinity",
        "E": 1.5,
        "F": 7,
        "G": "ops",
        "H": True,
    }
    with pytest.raises(CliInputError, match="is not NAME=VALUE"):
        name_value_pairs(["=x"], "--schedule-search-attribute")


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (
            [
                "workflow",
                "start",
                "-t",
                "T",
                "-q",
                "q",
                "--id",
                "w",
                "--memo",
                "{}",
                "--memo",
                "{}",
            ],
            "--memo",
        ),
        (["workflow", "start", "-t", "T", "-t", "U", "-q", "q", "--id", "w"], "--type"),
        (["workflow", "start", "-t", "T", "-q", "q", "--id=w", "--id=v"], "--id"),
        (["workflow", "list", "--limit", "2", "--limit", "3"], "--limit"),
        (["-n", "default", "-n", "other", "workflow", "list"], "--namespace"),
        (["--region", "a", "--region", "b", "workflow", "list"], "--region"),
        (["workflow", "pause", "w", "--reason", "a", "--reason", "b"], "--reason"),
        (
            [
                "schedule",
                "create",
                "s",
                "--cron",
                "@daily",
                "--timezone",
                "UTC",
                "--timezone",
                "UTC",
            ],
            "--timezone",
        ),
        (
            ["schedule", "create", "s", "--cron", "@daily", "--input", "[1]", "--input", "[2]"],
            "--input",
        ),
    ],
)
def test_an_option_of_one_value_given_twice_is_a_usage_error(
    args: list[str], option: str, tmp_path: Path
) -> None:
    """Regression: click kept the last of a repeated option and dropped the
    rest without a word (`--memo A --memo B` started a run with memo B alone)."""
    config = ["--config", str(tmp_path / "absent.toml")]
    result = CliRunner().invoke(cli, [*config, *args, "-o", "json"])
    assert result.exit_code == 2, result.output
    message = json.loads(result.stdout)["error"]["message"]
    assert option in message, message
    assert "more than once" in message or "one JSON list" in message, message


@pytest.mark.parametrize(
    "args",
    [
        ["workflow", "start", "-t", "T", "-q", "q", "--id", "w", "--input", "1", "--input", "2"],
        ["workflow", "list", "-o", "table", "--limit", "2"],  # and -o json at the end
        ["-n", "default", "namespace", "list", "--region", "a"],  # a command's own --region
        # a value that looks like an option is the value
        ["workflow", "pause", "w", "--reason", "--request-id", "--request-id", "r-1"],
    ],
)
def test_repeatable_options_and_output_may_be_given_again(args: list[str], tmp_path: Path) -> None:
    config = ["--config", str(tmp_path / "absent.toml")]
    result = CliRunner().invoke(cli, [*config, *args, "-o", "json"])
    assert result.exit_code == 1, result.output  # past the parser: the config is absent
    assert "no Baton config" in json.loads(result.stdout)["error"]["message"]
