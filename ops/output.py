"""Rendering of CLI results: rich tables for people, one JSON document for scripts.

Every command builds a plain data value (dicts, lists, strings, numbers) and
hands it to :func:`emit` with a function that turns the same value into a rich
renderable. So ``--output json`` always carries at least what the table shows,
and scripts never parse tables.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import enum
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any, Literal

import click
import orjson
from rich.box import HEAVY_HEAD
from rich.cells import cell_len
from rich.console import Console, RenderableType
from rich.table import Table
from rich.text import Text

__all__ = [
    "OUTPUT_CHOICES",
    "PIPE_MAX_WIDTH",
    "OutputFormat",
    "attr_summary",
    "console",
    "emit",
    "err_console",
    "error_document",
    "kv_table",
    "payload_value",
    "print_error",
    "print_wide",
    "readable",
    "short",
    "table",
    "to_json",
    "to_jsonable",
    "when",
]

OutputFormat = Literal["table", "json"]
OUTPUT_CHOICES: tuple[str, ...] = ("table", "json")

#: Human output. rich resolves ``sys.stdout`` at each print, so click's test
#: runner (which swaps ``sys.stdout``) captures it too.
console = Console(soft_wrap=False)
#: Progress and diagnostics: kept off stdout so JSON output stays one document.
err_console = Console(stderr=True)
#: The widest a table is printed into a pipe (its cells are cut well before).
PIPE_MAX_WIDTH = 2000
#: A table of more rows is drawn plainly (no folding, no styles): rich lays
#: out about a thousand rows a second.
PLAIN_TABLE_ROWS = 1000


def to_jsonable(value: Any) -> Any:
    """``value`` with dataclasses, enums, paths, datetimes and bytes made JSON-friendly."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, enum.Enum):
        return to_jsonable(value.value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, bytes | bytearray):
        # Not text: show it losslessly rather than guess an encoding.
        return {"base64": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, Iterable):
        return [to_jsonable(v) for v in value]
    return str(value)


def when(value: str | None) -> str | None:
    """An ISO 8601 time shortened for tables: ``2024-05-01 12:00:03.123`` (UTC)."""
    if not value:
        return None
    try:
        ts = datetime.fromisoformat(value)
    except ValueError:
        return value
    if ts.utcoffset():
        ts = ts - ts.utcoffset()  # type: ignore[operator]
    return ts.strftime("%Y-%m-%d %H:%M:%S.") + f"{ts.microsecond // 1000:03d}"


def to_json(value: Any) -> str:
    """``value`` as indented JSON text (stable key order as given)."""
    return json.dumps(to_jsonable(value), indent=2, ensure_ascii=False)


def emit(data: Any, output: str, table_fn: Callable[[Any], RenderableType | None]) -> None:
    """Print a command's result.

    Args:
        data: The result as plain data; printed as is with ``--output json``.
        output: ``"table"`` or ``"json"``.
        table_fn: Builds the human rendering of ``data``; may return None when
            it printed by itself or there is nothing to show.
    """
    if output == "json":
        click.echo(to_json(data))
        return
    renderable = table_fn(data)
    if renderable is None:
        return
    if isinstance(renderable, Table) and renderable.row_count > PLAIN_TABLE_ROWS:
        _print_long_table(renderable)
        return
    print_wide(renderable)


def print_wide(renderable: RenderableType, to: Console | None = None) -> None:
    """Print ``renderable`` on ``to`` (:data:`console`): into a pipe or a file
    as wide as it needs, where a terminal's width folds it."""
    con = to or console
    if con.quiet:
        return
    if con.is_terminal:
        con.print(renderable)
        return
    # Into a pipe or a file (grep, awk, a log) rich would fold the table into
    # 80 columns, cutting run ids across lines: print it as wide as it needs.
    wide = con.options.update(max_width=PIPE_MAX_WIDTH)
    width = max(con.width, con.measure(renderable, options=wide).maximum)
    Console(soft_wrap=False, width=min(width, PIPE_MAX_WIDTH), file=con.file).print(renderable)


def _print_long_table(t: Table) -> None:
    """A table of many rows (a history of 50,000 events), drawn as rich draws
    one that nothing folds, without rich's layout: rich measured and wrapped
    every cell, which took half a minute where JSON took a few seconds."""
    columns = t.columns
    header = [str(c.header) for c in columns]
    rows = [
        [c.plain if isinstance(c, Text) else str(c) for c in cells]
        for cells in zip(*(col._cells for col in columns), strict=True)
    ]
    widths = [max([cell_len(h), *(cell_len(r[i]) for r in rows)]) for i, h in enumerate(header)]
    box = (t.box or HEAVY_HEAD).substitute(console.options)
    padded = [w + 2 for w in widths]

    def line(cells: Sequence[str], left: str, mid: str, right: str) -> str:
        inner = mid.join(
            f" {c}{' ' * (w - cell_len(c))} " for c, w in zip(cells, widths, strict=True)
        )
        return f"{left}{inner}{right}"

    out = [] if t.title is None else [t.title.plain if isinstance(t.title, Text) else str(t.title)]
    out.append(box.get_top(padded))
    out.append(line(header, box.head_left, box.head_vertical, box.head_right))
    out.append(box.get_row(padded, level="head"))
    out += [line(r, box.mid_left, box.mid_vertical, box.mid_right) for r in rows]
    out.append(box.get_bottom(padded))
    click.echo("\n".join(out))


def error_document(
    code: str, message: str, details: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The JSON document an error is reported as with ``--output json``: its
    ``details`` (what the server's error gave, as the HTTP API's) when there are any."""
    error: dict[str, Any] = {"code": code, "message": message}
    if details:
        error["details"] = to_jsonable(details)
    return {"error": error}


def print_error(
    code: str, message: str, output: str, details: dict[str, Any] | None = None
) -> None:
    """Report an error: JSON on stdout with ``--output json``, else one line on stderr."""
    if output == "json":
        click.echo(to_json(error_document(code, message, details)))
        return
    # Plain click.echo, not rich: messages may contain [brackets] rich would eat.
    click.echo(f"error [{code}]: {message}", err=True)


def short(value: Any, width: int = 80) -> str:
    """A one-line rendering of ``value`` cut to ``width`` characters."""
    text = value if isinstance(value, str) else json.dumps(to_jsonable(value), ensure_ascii=False)
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def table(
    columns: Sequence[str],
    rows: Iterable[Sequence[Any]],
    *,
    title: str | None = None,
    no_wrap: Sequence[str] = (),
) -> Table:
    """A rich table with ``columns`` and ``rows`` (cells rendered with :func:`cell`).

    Args:
        columns: Column headers.
        rows: One sequence of values per row.
        title: Shown above the table.
        no_wrap: Columns kept on one line (ids, types); the others fold.
    """
    t = Table(title=plain(title), title_justify="left", header_style="bold")
    for c in columns:
        t.add_column(c, overflow="fold", no_wrap=c in no_wrap)
    for row in rows:
        t.add_row(*(cell(v) for v in row))
    return t


def kv_table(items: Mapping[str, Any], *, title: str | None = None) -> Table:
    """A two-column key/value table; ``(none)`` under the title when ``items`` is empty."""
    t = Table(title=plain(title), title_justify="left", show_header=False)
    if not items:
        # A headerless table with no cells measures as wide as it may be (2000
        # columns into a pipe): say there is nothing instead, as wide as the title.
        t.min_width = len(title or "")
        t.add_column("none", style="dim")
        t.add_row("(none)")
        return t
    t.add_column("key", style="bold")
    t.add_column("value", overflow="fold")
    for k, v in items.items():
        t.add_row(Text(str(k)), cell(v))
    return t


def plain(title: str | None) -> Text | None:
    """A title as Text: it names a workflow, a schedule or a memo key, any of
    which may hold brackets rich would read as markup (``[/]`` raised)."""
    return None if title is None else Text(title)


def cell(value: Any) -> Text:
    """One table cell; Text (not markup) so brackets in values print literally."""
    if value is None:
        return Text("-", style="dim")
    if isinstance(value, bool):
        return Text("yes" if value else "no", style="green" if value else "red")
    if isinstance(value, list | tuple) and not value:
        # a value that is an empty list (a query's answer) is not an empty cell
        return Text("[]")
    if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
        return Text(", ".join(value))
    if isinstance(value, dict | list | tuple):
        return Text(short(value, 200))
    return Text(str(value))


def payload_value(p: dict[str, Any]) -> Any:
    """A payload as readable data for summaries (never fails)."""
    enc = p.get("metadata", {}).get("encoding", "json/plain")
    try:
        raw = base64.b64decode(p.get("data", ""))
    except ValueError:
        return "<payload>"
    if enc == "binary/null":
        return None
    if enc == "json/plain":
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            return "<payload>"
    # Encrypted or otherwise encoded: the CLI holds no codec, so do not guess.
    return f"<{enc} payload, {len(raw)} bytes>"


def readable(value: Any) -> Any:
    if isinstance(value, dict):
        if "data" in value and "metadata" in value and isinstance(value["data"], str):
            return payload_value(value)
        return {k: readable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [readable(v) for v in value]
    return value


def attr_summary(attrs: dict[str, Any], width: int = 90) -> str:
    parts = []
    for k, v in attrs.items():
        # Ids that are in every start add noise, not information, to a one-line summary.
        if v in (None, "", [], {}) or k in ("identity", "request_id", "first_run_id"):
            continue
        parts.append(f"{k}={short(readable(v), 40)}")
    return short(", ".join(parts), width)


def with_values(data: Any, *, skip: Iterable[str] = ("search_attributes",)) -> Any:
    """``data`` with each ``json/plain`` (or ``binary/null``) payload in it
    given its decoded ``value`` beside its ``metadata`` and base64 ``data``,
    which stay as they are, so a script reading them (or the replayer reading
    a history) reads what it did. In place; keys in ``skip`` are left alone
    (their values are no payloads)."""
    skipped = set(skip)
    stack = [data]
    while stack:
        x = stack.pop()
        if isinstance(x, list):
            stack.extend(x)
        elif isinstance(x, dict):
            meta, raw = x.get("metadata"), x.get("data")
            if isinstance(meta, dict) and isinstance(raw, str):
                if meta.get("encoding") == "binary/null":
                    x["value"] = None
                elif meta.get("encoding") == "json/plain":
                    # not base64 or not JSON after all: shown as stored, no value
                    with contextlib.suppress(ValueError):
                        x["value"] = orjson.loads(base64.b64decode(raw, validate=True))
                continue
            stack.extend(v for k, v in x.items() if k not in skipped)
    return data
