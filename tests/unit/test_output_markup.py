"""Tables print what they are given: a workflow id, a schedule id or a memo
key holding brackets is shown as it is, never read as rich markup."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from ops.output import kv_table, table

ODD = ["[/]", "x[bold]y", "[red]order-1[/red]", "a]b[c"]


def _rendered(renderable: object) -> str:
    console = Console(width=200, record=True, file=io.StringIO())
    console.print(renderable)
    # a title wider than its table folds: compare without the spacing
    return "".join(console.export_text().split())


@pytest.mark.parametrize("name", ODD)
def test_a_kv_table_titles_and_keys_print_literally(name: str) -> None:
    """Regression: `baton workflow describe '[/]'` ended in a MarkupError
    traceback (the title "workflow [/]"), and a memo key with brackets lost them."""
    text = _rendered(kv_table({f"memo.{name}": name}, title=f"workflow {name}"))
    assert f"workflow{name}" in text and f"memo.{name}" in text, text


@pytest.mark.parametrize("name", ODD)
def test_a_table_title_prints_literally(name: str) -> None:
    text = _rendered(table(["id"], [[name]], title=f"workflow {name} run r-1"))
    assert f"workflow{name}runr-1" in text, text
