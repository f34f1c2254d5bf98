"""``workflow list --status`` names every value it takes when it refuses one,
``paused`` included (taken before the workflow statuses)."""

from __future__ import annotations

from click.testing import CliRunner

from ops.cli import cli


def test_an_unknown_status_names_paused_among_the_choices() -> None:
    result = CliRunner().invoke(cli, ["workflow", "list", "--status", "bogus"])
    assert result.exit_code == 2
    assert "use one of running, completed" in result.output
    assert "timed-out, paused." in result.output


def test_the_help_lists_paused() -> None:
    result = CliRunner().invoke(cli, ["workflow", "list", "--help"])
    assert "|timed-out|paused]" in result.output
