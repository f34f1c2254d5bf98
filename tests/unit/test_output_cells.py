"""What one table cell shows for values that could read as nothing."""

from __future__ import annotations

import io

from rich.console import Console

from ops.output import cell, kv_table


def test_an_empty_list_is_shown_as_one() -> None:
    """Regression: `baton workflow query` of a handler answering [] (or an
    update answering []) printed an empty result cell, read as no answer."""
    console = Console(width=120, record=True, file=io.StringIO())
    console.print(kv_table({"query": "items", "result": []}))
    line = next(x for x in console.export_text().splitlines() if "result" in x)
    assert line.split("│")[2].strip() == "[]", line
    assert cell(()).plain == "[]"


def test_other_values_keep_their_cells() -> None:
    assert cell(None).plain == "-"
    assert cell(["a", "b"]).plain == "a, b"
    assert cell({}).plain == "{}"
    assert cell([1, 2]).plain == "[1, 2]"
    assert cell("").plain == ""
