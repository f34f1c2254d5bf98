"""What `baton schedule update` prints as a table: what changed, or that nothing did."""

from __future__ import annotations

import io
from typing import Any

from rich.console import Console

from ops.cli_schedules import _update_view


def rows(d: dict[str, Any]) -> dict[str, str]:
    console = Console(width=200, record=True, file=io.StringIO())
    console.print(_update_view(d))
    cells = [x.split("│") for x in console.export_text().splitlines() if x.count("│") == 3]
    return {c[1].strip(): c[2].strip() for c in cells}


def test_an_update_to_the_same_definition_says_it_changed_nothing() -> None:
    """Regression: it said `updated: yes` with an empty `changed` cell."""
    shown = rows({"schedule_id": "s", "updated": True, "created": False, "changed": []})
    assert shown["changed"] == "nothing (it was so already)"


def test_an_update_names_the_fields_it_changed() -> None:
    d = {"schedule_id": "s", "updated": True, "created": False, "changed": ["spec.cron", "x.y"]}
    assert rows(d)["changed"] == "spec.cron, x.y"


def test_an_update_that_created_the_schedule_compares_nothing() -> None:
    shown = rows({"schedule_id": "s", "updated": False, "created": True, "changed": []})
    assert shown["created"] == "yes" and "changed" not in shown
