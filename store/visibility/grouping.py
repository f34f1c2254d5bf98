"""A count's grouping: Temporal's trailing ``GROUP BY attr`` and the SQL of the
attribute a count may be grouped by."""

from __future__ import annotations

import re

import lark

from store.visibility.attributes import AttributeType
from store.visibility.query import _Compiler, _error

#: A count query's trailing ``GROUP BY attr`` (Temporal's syntax for a grouped
#: count). A string literal cannot end the text unclosed, so the match is never
#: inside one.
_GROUP_BY_RE = re.compile(r"(?is)^(.*?)\s*\bgroup\s+by\s+(`?[A-Za-z_][A-Za-z0-9_]*`?)\s*$")


def split_group_by(text: str) -> tuple[str, str | None]:
    """A count query cut in two: its filter and the attribute of its trailing
    ``GROUP BY`` (None without one)."""
    m = _GROUP_BY_RE.match(text)
    if m is None:
        return text, None
    return m.group(1), m.group(2).strip("`")


def group_by_position(text: str) -> int:
    """Where a count query's trailing ``GROUP BY`` names its attribute (0 without one)."""
    m = _GROUP_BY_RE.match(text)
    return 0 if m is None else m.start(2)


def group_by_sql(
    name: str, registered: dict[str, str], *, position: int = 0
) -> tuple[str, AttributeType]:
    """The SQL of an attribute counts may be grouped by (a keyword-like one).

    ``position`` is where the query names it (its ``GROUP BY``), for errors.
    """
    compiler = _Compiler(registered, 1)
    token = lark.Token("NAME", name, start_pos=position)
    attr, kind, sql, _, _ = compiler.attribute(lark.Tree("name", [token]))
    allowed = (AttributeType.KEYWORD, AttributeType.STATUS, AttributeType.BOOL, AttributeType.INT)
    if kind not in allowed or attr in ("WorkflowId", "HistoryLength"):
        raise _error(
            f"cannot group by {attr}: group by ExecutionStatus, WorkflowType, TaskQueue, "
            "BuildId, Paused or a custom Keyword, Bool or Int attribute",
            token,
        )
    return sql, kind
