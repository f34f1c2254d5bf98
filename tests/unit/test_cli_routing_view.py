"""What `baton deployment set-current|set-ramping|describe` print as a table:
routing read as `deployment list` reads it."""

from __future__ import annotations

from typing import Any

from rich.console import Console

from ops.cli_versioning import _list_view, _routing_view


def rendered(d: dict[str, Any]) -> str:
    console = Console(record=True, width=200)
    console.print(_routing_view(d))
    return console.export_text()


def row(text: str, key: str) -> str:
    line = next(x for x in text.splitlines() if f" {key} " in x)
    return line.split("│")[2].strip()


def routing(**kw: Any) -> dict[str, Any]:
    return {"deployment": "pay", "revision": 3, **kw}


def test_no_current_build_is_unversioned_workers() -> None:
    text = rendered(routing(current=None, ramping=None, ramping_percent=0.0))
    assert row(text, "current") == "(unversioned)"
    # no ramp: no share shown as if one ramped
    assert row(text, "ramping") == "-" and row(text, "ramping_percent") == "-"


def test_a_ramp_to_unversioned_workers_says_so() -> None:
    text = rendered(routing(current="41", ramping=None, ramping_percent=20.0))
    assert row(text, "current") == "41"
    assert row(text, "ramping") == "(unversioned)" and row(text, "ramping_percent") == "20.0"


def test_a_ramp_to_a_build_and_one_held_at_zero() -> None:
    text = rendered(routing(current="41", ramping="42", ramping_percent=0.0))
    assert row(text, "ramping") == "42" and row(text, "ramping_percent") == "0.0"


def listed(*rows: dict[str, Any]) -> list[str]:
    console = Console(record=True, width=200)
    console.print(_list_view(list(rows)))
    line = next(x for x in console.export_text().splitlines() if " pay " in x)
    return [c.strip() for c in line.split("│")[1:-1]]


def test_deployment_list_shows_no_ramp_as_a_dash() -> None:
    cells = listed({**routing(current="41", ramping=None, ramping_percent=0.0), "versions": 1})
    assert cells == ["pay", "41", "-", "-", "3", "1"]


def test_deployment_list_shows_a_ramp_to_unversioned_workers() -> None:
    cells = listed({**routing(current=None, ramping=None, ramping_percent=20.0), "versions": 2})
    assert cells == ["pay", "(unversioned)", "(unversioned)", "20.0", "3", "2"]
