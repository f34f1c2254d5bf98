"""The list-filter language (Temporal's syntax), parsed by lark into parameterized SQL.

The grammar is an LALR grammar; the tree it yields is walked by
:class:`_Compiler`, which knows only the attributes of the allow-list
(system attributes and the namespace's registered ones). Every value becomes a
``$n`` parameter and every column reference is a fixed string of
:mod:`store.visibility.attributes`, so no query text ever reaches SQL.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import lark
from lark import Token

from store.errors import InvalidArgument, InvalidQuery
from store.visibility.attributes import (
    NAME_RE,
    PAUSED_SQL,
    PAUSED_STATUS,
    SYSTEM_ATTRIBUTES,
    AttributeType,
    datetime_of_nanos,
    keyword_value,
    normalize_value,
    parse_datetime,
    query_status,
)
from store.visibility.durations import query_duration
from worker.wire import MAX_QUERY_CHARS

Tree = lark.Tree[Token]

#: The operator a NOT turns a comparison's into.
_NEGATED_OP = {"=": "!=", "!=": "=", "<>": "=", "<": ">=", "<=": ">", ">": "<=", ">=": "<"}
#: The predicate a NOT turns each other predicate into.
_OPPOSITE = {
    "in_": "not_in",
    "not_in": "in_",
    "between": "not_between",
    "not_between": "between",
    "starts_with": "not_starts_with",
    "not_starts_with": "starts_with",
    "is_null": "is_not_null",
    "is_not_null": "is_null",
}

GRAMMAR = r"""
?start: query
query: expr? order_by?

?expr: or_expr
?or_expr: and_expr (_OR and_expr)*
?and_expr: not_expr (_AND not_expr)*
?not_expr: _NOT not_expr -> not_
         | atom
?atom: "(" expr ")"
     | predicate

predicate: name OP value                                -> compare
         | name _IN "(" value ("," value)* ")"           -> in_
         | name _NOT _IN "(" value ("," value)* ")"      -> not_in
         | name _BETWEEN value _AND value                -> between
         | name _NOT _BETWEEN value _AND value           -> not_between
         | name _STARTS_WITH value                       -> starts_with
         | name _NOT _STARTS_WITH value                  -> not_starts_with
         | name _IS _NULL                                -> is_null
         | name _IS _NOT _NULL                           -> is_not_null

order_by: _ORDER _BY order_item ("," order_item)*
order_item: name DIRECTION?

name: NAME | BACKQUOTED
?value: STRING | NUMBER | TRUE | FALSE

OP: "<=" | ">=" | "!=" | "<>" | "=" | "<" | ">"
DIRECTION.2: /(?i:asc|desc)\b/
_OR.2: /(?i:or)\b/
_AND.2: /(?i:and)\b/
_NOT.2: /(?i:not)\b/
_IN.2: /(?i:in)\b/
_BETWEEN.2: /(?i:between)\b/
_STARTS_WITH.2: /(?i:starts_with)\b/
_IS.2: /(?i:is)\b/
_NULL.2: /(?i:null)\b/
_ORDER.2: /(?i:order)\b/
_BY.2: /(?i:by)\b/
TRUE.2: /(?i:true)\b/
FALSE.2: /(?i:false)\b/
// a keyword is never a name (`backquote` a name that is one)
NAME: _NOT_KEYWORD /[A-Za-z_][A-Za-z0-9_]*/
_NOT_KEYWORD: /(?!(?i:and|or|not|in|between|is|null|order|by|asc|desc|starts_with|true|false)\b)/
BACKQUOTED: /`[A-Za-z_][A-Za-z0-9_]*`/
STRING: /'(?:[^'\\]|\\.|'')*'/ | /"(?:[^"\\]|\\.|"")*"/
NUMBER: /-?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?/

%import common.WS
%ignore WS
"""

_PARSER = lark.Lark(GRAMMAR, parser="lalr", maybe_placeholders=False)

MAX_IN_VALUES = 1000
#: How deep conditions may nest in each other.
MAX_NESTING = 500

_GROUP_BY_ANYWHERE = re.compile(r"(?i)\bgroup\s+by\b")


@dataclass(frozen=True)
class Order:
    sql: str
    attribute: str
    descending: bool
    nullable: bool
    type: AttributeType
    #: Where the query names the attribute (an explicit ORDER BY), for errors.
    position: int = field(default=0, compare=False)
    #: Runs without the attribute come last in either direction (a custom
    #: attribute, as Temporal's Elasticsearch store sorts missing values),
    #: not first when descending (a system one: running runs' CloseTime).
    nulls_last: bool = False


@dataclass
class CompiledQuery:
    """A query's WHERE clause and ORDER BY, with its parameters from ``$first``."""

    where: str
    params: list[Any]
    order: Order


def _unquote(token: lark.Token) -> str:
    text = str(token)
    quote = text[0]
    body = text[1:-1]
    out: list[str] = []
    i = 0
    while i < len(body):
        ch = body[i]
        if ch == "\\" and i + 1 < len(body):
            nxt = body[i + 1]
            out.append({"n": "\n", "t": "\t", "r": "\r"}.get(nxt, nxt))
            i += 2
            continue
        if ch == quote and i + 1 < len(body) and body[i + 1] == quote:
            out.append(quote)
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def _first_token(node: Any) -> Any:
    """The first token of a subtree, found without recursion (it may be deep)."""
    while isinstance(node, lark.Tree) and node.children:
        node = node.children[0]
    return node


def _position(token: Any) -> int:
    return int(getattr(token, "start_pos", 0) or 0)


def _error(message: str, token: Any) -> InvalidQuery:
    pos = _position(token)
    return InvalidQuery(
        f"invalid query at position {pos}: {message}", position=pos, token=str(token)
    )


def parse_duration(text: str, token: Any) -> timedelta:
    """A duration as Temporal's queries take one (:func:`query_duration`)."""
    value = query_duration(text)
    if value is None:
        raise _error(
            f"{text!r} is not a duration: use a Go-style one ('90s', '1h30m', '250ms'), "
            "'hh:mm:ss' or an integer of nanoseconds",
            token,
        )
    return value


class _Compiler:
    def __init__(self, registered: dict[str, str], first_param: int):
        self.registered = registered
        self.params: list[Any] = []
        self.first = first_param

    # ------------------------------------------------------------------ helpers

    def param(self, value: Any, cast: str = "") -> str:
        self.params.append(value)
        return f"${self.first + len(self.params) - 1}{cast}"

    def attribute(self, tree: Tree) -> tuple[str, AttributeType, str, lark.Token, bool]:
        """(name, type, sql, token, nullable) of a name node."""
        token = tree.children[0]
        assert isinstance(token, lark.Token)
        name = str(token).strip("`")
        system = SYSTEM_ATTRIBUTES.get(name)
        if system is not None:
            return name, system.type, system.sql, token, system.nullable
        if name in self.registered:
            kind = AttributeType(self.registered[name])
            return name, kind, self._custom_sql(name, kind), token, True
        raise _error(
            f"unknown search attribute {name!r}; system attributes are "
            + ", ".join(SYSTEM_ATTRIBUTES)
            + (
                "; this namespace registers " + ", ".join(sorted(self.registered))
                if self.registered
                else "; this namespace registers no custom ones"
            ),
            token,
        )

    def _custom_sql(self, name: str, kind: AttributeType) -> str:
        # The key is the registry's own name (checked against NAME_RE when it
        # was registered), never the query's token: it is a literal so that
        # an expression index on it can serve the query.
        if not NAME_RE.match(name):  # a registry written some other way: never into SQL
            raise InvalidQuery(f"search attribute {name!r} has a name Baton cannot query")
        text = f"(e.search_attributes->>'{name}')"
        if kind == AttributeType.INT:
            return f"{text}::numeric"
        if kind == AttributeType.DOUBLE:
            return f"{text}::double precision"
        if kind == AttributeType.BOOL:
            return f"{text}::boolean"
        if kind == AttributeType.DATETIME:
            return f"({text}::timestamptz)"
        return text

    def literal(self, name: str, kind: AttributeType, token: Any, whole: bool = True) -> Any:
        """The Python value of a literal for an attribute of ``kind`` (``whole``:
        a value, not a STARTS_WITH prefix)."""
        if not isinstance(token, lark.Token):
            raise _error("expected a value", token)
        t = token.type
        text = _unquote(token) if t == "STRING" else str(token)
        try:
            if kind in (AttributeType.KEYWORD, AttributeType.TEXT, AttributeType.KEYWORD_LIST):
                if t != "STRING":
                    raise _error(f"{name} is {kind.value}: quote the value", token)
                return keyword_value(name, text) if whole else text
            if kind == AttributeType.UUID:
                try:
                    return uuid.UUID(text)
                except ValueError:
                    raise _error(f"{text!r} is not a run id (a UUID)", token) from None
            if kind == AttributeType.STATUS:
                return query_status(text)
            if kind == AttributeType.INT:
                if t != "NUMBER" or not re.fullmatch(r"-?\d+", text):
                    raise _error(f"{name} is Int: {text!r} is not an integer", token)
                return normalize_value(name, kind, int(text))
            if kind == AttributeType.DOUBLE:
                if t != "NUMBER":
                    raise _error(f"{name} is Double: {text!r} is not a number", token)
                return normalize_value(name, kind, float(text))
            if kind == AttributeType.BOOL:
                if t not in ("TRUE", "FALSE"):
                    raise _error(f"{name} is Bool: use true or false", token)
                return t == "TRUE"
            if kind == AttributeType.DATETIME:
                if t == "NUMBER" and re.fullmatch(r"-?\d+", text):
                    return datetime_of_nanos(int(text))  # as Temporal: Unix nanoseconds
                if t != "STRING":
                    raise _error(f"{name} is Datetime: quote an RFC 3339 value", token)
                return parse_datetime(text)
            if kind == AttributeType.DURATION:
                return parse_duration(text, token)
        except InvalidQuery:
            raise
        except InvalidArgument as exc:
            raise _error(exc.message, token) from None
        raise _error(f"{name} cannot be compared", token)

    # ------------------------------------------------------------------ nodes

    @staticmethod
    def _condition(tree: Any, depth: int) -> str:
        """The kind of condition node ``tree`` is, refused past the nesting limit."""
        if not isinstance(tree, lark.Tree):
            raise _error("expected a condition", tree)
        if depth > MAX_NESTING:
            # the walk recurses: past Python's stack it would be a 500, not a refusal
            raise _error(
                f"conditions nest more than {MAX_NESTING} deep (NOT, parentheses)",
                _first_token(tree),
            )
        return str(tree.data)

    def expr(self, tree: Any, depth: int = 0) -> str:
        kind = self._condition(tree, depth)
        if kind == "or_expr":
            return "(" + " OR ".join(self.expr(c, depth + 1) for c in tree.children) + ")"
        if kind == "and_expr":
            return "(" + " AND ".join(self.expr(c, depth + 1) for c in tree.children) + ")"
        if kind == "not_":
            return self._negated(tree.children[0], depth + 1)
        handler = getattr(self, f"_p_{kind}", None)
        if handler is None:  # pragma: no cover - the grammar has no other nodes
            raise _error(f"unsupported condition {kind}", tree)
        result: str = handler(*tree.children)
        return result

    def _negated(self, tree: Any, depth: int) -> str:
        """``NOT tree``, read as the negated operators read (``NOT X = v`` is
        ``X != v``, ``NOT X IN (...)`` is ``X NOT IN (...)``, De Morgan's laws
        over AND and OR), so a run without an attribute is listed, or not,
        alike however the condition is written."""
        kind = self._condition(tree, depth)
        if kind == "not_":
            return self.expr(tree.children[0], depth + 1)
        if kind in ("or_expr", "and_expr"):
            joiner = " AND " if kind == "or_expr" else " OR "
            return "(" + joiner.join(self._negated(c, depth + 1) for c in tree.children) + ")"
        if kind == "compare":
            name, op, value = tree.children
            assert isinstance(op, lark.Token) and isinstance(value, lark.Token)
            negated = lark.Token.new_borrow_pos("OP", _NEGATED_OP[str(op)], op)
            return self._p_compare(name, negated, value)
        opposite = _OPPOSITE.get(kind)
        if opposite is None:  # pragma: no cover - the grammar has no other nodes
            raise _error(f"unsupported condition {kind}", tree)
        result: str = getattr(self, f"_p_{opposite}")(*tree.children)
        return result

    def _p_compare(self, name: Tree, op: lark.Token, value: lark.Token) -> str:
        attr, kind, sql, _tok, _ = self.attribute(name)
        operator = "<>" if str(op) == "!=" else str(op)
        if kind == AttributeType.KEYWORD_LIST:
            if operator not in ("=", "<>"):
                raise _error(f"{attr} is KeywordList: only = and != apply", op)
            doc: dict[str, Any] = {attr: [self.literal(attr, kind, value)]}
            cond = f"e.search_attributes @> {self.param(doc, '::jsonb')}"
            return cond if operator == "=" else f"(NOT {cond})"
        if kind == AttributeType.TEXT:
            if operator not in ("=", "<>"):
                raise _error(f"{attr} is Text: only = and != apply (a word match)", op)
            text = self.literal(attr, kind, value)
            if not re.search(r"\w", text):
                # no word to match: PostgreSQL would match nothing (and != every
                # run) without a word; Temporal refuses it too
                raise _error(f"{attr} is Text: {text!r} holds no word to match", value)
            # any of the words, as Temporal matches Text (its SQL stores join the
            # words with |, Elasticsearch's match query ORs them)
            anyof = " || ".join(f"plainto_tsquery('simple', {self.param(w)})" for w in text.split())
            cond = f"(to_tsvector('simple', {sql}) @@ ({anyof}))"
            return cond if operator == "=" else f"(NOT coalesce({cond}, false))"
        if kind in (AttributeType.BOOL, AttributeType.STATUS, AttributeType.UUID) and (
            operator not in ("=", "<>")
        ):
            raise _error(f"{attr} is {kind.value}: only = and != apply", op)
        literal = self.literal(attr, kind, value)
        if kind == AttributeType.STATUS and literal == PAUSED_STATUS:
            return PAUSED_SQL if operator == "=" else f"(NOT {PAUSED_SQL})"
        if kind == AttributeType.KEYWORD and operator == "=" and attr not in SYSTEM_ATTRIBUTES:
            # containment uses the GIN index on search_attributes
            doc = {attr: literal}
            return f"e.search_attributes @> {self.param(doc, '::jsonb')}"
        return f"({sql} {operator} {self.param(literal)})"

    def _list(self, name: Tree, values: tuple[Any, ...]) -> tuple[str, str]:
        attr, kind, sql, tok, _ = self.attribute(name)
        if kind == AttributeType.TEXT:
            raise _error(f"IN does not apply to {kind.value} attribute {attr}", tok)
        if len(values) > MAX_IN_VALUES:
            raise _error(f"IN takes at most {MAX_IN_VALUES} values", tok)
        literals = [self.literal(attr, kind, v) for v in values]
        if kind == AttributeType.KEYWORD_LIST:
            # the list holds any of the values: one containment each (the GIN index)
            held = [
                f"e.search_attributes @> {self.param({attr: [v]}, '::jsonb')}" for v in literals
            ]
            return "(" + " OR ".join(held) + ")", ""
        if kind == AttributeType.STATUS and PAUSED_STATUS in literals:
            # Paused is no stored status: a paused run, or one of the others
            others = [v for v in literals if v != PAUSED_STATUS]
            held = [PAUSED_SQL] + ([f"({sql} = ANY({self.param(others)}))"] if others else [])
            return "(" + " OR ".join(held) + ")", ""
        return sql, self.param(literals)

    def _p_in_(self, name: Tree, *values: Any) -> str:
        sql, arr = self._list(name, values)
        return sql if not arr else f"({sql} = ANY({arr}))"

    def _p_not_in(self, name: Tree, *values: Any) -> str:
        sql, arr = self._list(name, values)
        # a KeywordList without any of them (or without the attribute), as != reads it
        return f"(NOT {sql})" if not arr else f"(NOT ({sql} = ANY({arr})))"

    def _range(self, name: Tree, low: Any, high: Any) -> str:
        attr, kind, sql, tok, _ = self.attribute(name)
        if kind in (
            AttributeType.TEXT,
            AttributeType.KEYWORD_LIST,
            AttributeType.BOOL,
            AttributeType.STATUS,
            AttributeType.UUID,
        ):
            raise _error(f"BETWEEN does not apply to {kind.value} attribute {attr}", tok)
        lo = self.param(self.literal(attr, kind, low))
        hi = self.param(self.literal(attr, kind, high))
        return f"({sql} BETWEEN {lo} AND {hi})"

    def _p_between(self, name: Tree, low: Any, high: Any) -> str:
        return self._range(name, low, high)

    def _p_not_between(self, name: Tree, low: Any, high: Any) -> str:
        return f"(NOT {self._range(name, low, high)})"

    def _p_starts_with(self, name: Tree, value: Any) -> str:
        attr, kind, sql, tok, _ = self.attribute(name)
        if kind != AttributeType.KEYWORD:
            raise _error(f"STARTS_WITH applies to Keyword attributes, not {attr}", tok)
        prefix = self.literal(attr, kind, value, whole=False)
        escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        return f"({sql} LIKE {self.param(escaped + '%')})"

    def _p_not_starts_with(self, name: Tree, value: Any) -> str:
        # as NOT IN reads it (and Temporal's NOT STARTS_WITH): a run without
        # the attribute is not listed
        return f"(NOT {self._p_starts_with(name, value)})"

    def _p_is_null(self, name: Tree) -> str:
        attr, kind, sql, _tok, nullable = self.attribute(name)
        if not nullable:
            return "false"
        if attr not in SYSTEM_ATTRIBUTES:
            key = self.param(attr, "::text")
            if kind == AttributeType.KEYWORD_LIST:
                # an empty list holds no value: as Temporal reads it, no value at all
                return (
                    f"(NOT (e.search_attributes ? {key}) "
                    f"OR e.search_attributes->{key} = '[]'::jsonb)"
                )
            return f"(NOT (e.search_attributes ? {key}))"
        return f"({sql} IS NULL)"

    def _p_is_not_null(self, name: Tree) -> str:
        attr, kind, sql, _tok, nullable = self.attribute(name)
        if not nullable:
            return "true"
        if attr not in SYSTEM_ATTRIBUTES:
            key = self.param(attr, "::text")
            if kind == AttributeType.KEYWORD_LIST:
                return (
                    f"(e.search_attributes ? {key} AND e.search_attributes->{key} <> '[]'::jsonb)"
                )
            return f"(e.search_attributes ? {key})"
        return f"({sql} IS NOT NULL)"

    def order(self, tree: Tree | None) -> Order:
        if tree is None:
            default = SYSTEM_ATTRIBUTES["StartTime"]
            return Order(default.sql, "StartTime", True, False, default.type)
        items: list[Any] = list(tree.children)
        if len(items) > 1:
            raise _error(
                "ORDER BY takes one attribute (ties are broken by workflow and run id)",
                items[1].children[0].children[0],
            )
        item = items[0]
        attr, kind, sql, tok, nullable = self.attribute(item.children[0])
        if kind in (AttributeType.TEXT, AttributeType.KEYWORD_LIST):
            raise _error(f"cannot ORDER BY {kind.value} attribute {attr}", tok)
        descending = len(item.children) > 1 and str(item.children[1]).lower() == "desc"
        custom = attr not in SYSTEM_ATTRIBUTES
        return Order(sql, attr, descending, nullable, kind, _position(tok), nulls_last=custom)


def parse(text: str, *, max_chars: int = MAX_QUERY_CHARS) -> Tree:
    """The parse tree of ``text``, or InvalidQuery naming the position and token.

    ``max_chars`` is for a query the server composes around a user's (checked
    on its own first): the user's limit would cut it short.
    """
    try:
        return _parse(text, max_chars)
    except InvalidQuery as exc:
        group = _GROUP_BY_ANYWHERE.search(text)
        if group is None or str(exc.details.get("token", "")).lower() not in ("group", "by"):
            raise
        # GROUP BY is not in the grammar: only a count takes it, cut off first
        raise InvalidQuery(
            f"invalid query at position {group.start()}: GROUP BY groups a count, not a list, "
            "and goes at the end of its query with one attribute "
            "(`ExecutionStatus = 'Running' GROUP BY WorkflowType`)",
            position=group.start(),
            token=group.group(0),
        ) from exc


def _parse(text: str, max_chars: int = MAX_QUERY_CHARS) -> Tree:
    if len(text) > max_chars:
        raise InvalidQuery(
            f"query is {len(text)} characters; the limit is {max_chars}",
            position=max_chars,
            token="",
        )
    try:
        return _PARSER.parse(text)
    except lark.exceptions.UnexpectedCharacters as exc:
        pos = int(exc.pos_in_stream or 0)
        char = text[pos] if pos < len(text) else ""
        raise InvalidQuery(
            f"invalid query at position {pos}: unexpected character {char!r}",
            position=pos,
            token=char,
        ) from None
    except lark.exceptions.UnexpectedEOF:
        raise InvalidQuery(
            f"invalid query at position {len(text)}: the query ends too early",
            position=len(text),
            token="",
        ) from None
    except lark.exceptions.UnexpectedToken as exc:
        tok = exc.token
        pos = len(text) if tok.type == "$END" else _position(tok)
        shown = "end of query" if tok.type == "$END" else repr(str(tok))
        raise InvalidQuery(
            f"invalid query at position {pos}: unexpected {shown}",
            position=pos,
            token="" if tok.type == "$END" else str(tok),
        ) from None


def compile_query(
    text: str,
    registered: dict[str, str],
    *,
    first_param: int = 1,
    max_chars: int = MAX_QUERY_CHARS,
) -> CompiledQuery:
    """Translate a list-filter query into SQL over the execution row ``e``.

    Args:
        text: the query; empty means every run.
        registered: the namespace's custom attributes, name to type.
        first_param: the number of the first ``$n`` placeholder to use.
    """
    compiler = _Compiler(registered, first_param)
    if not text.strip():
        return CompiledQuery("true", [], compiler.order(None))
    tree = parse(text, max_chars=max_chars)
    where_tree: Any = None
    order_tree: Tree | None = None
    for child in tree.children:
        if isinstance(child, lark.Tree) and child.data == "order_by":
            order_tree = child
        else:
            where_tree = child
    where = "true" if where_tree is None else compiler.expr(where_tree)
    order = compiler.order(order_tree)
    return CompiledQuery(where, compiler.params, order)


def split_order(text: str, registered: dict[str, str]) -> tuple[str, str]:
    """``text`` checked and cut in two: its filter and its ``ORDER BY`` clause (or "").

    So a caller that narrows a query by a condition of its own (``... AND
    (filter)``) keeps the query's order outside the parentheses, where the
    grammar takes it.
    """
    order = compile_query(text, registered).order
    if order.position == 0:  # no ORDER BY: an explicit one comes after its keywords
        return text, ""
    keywords = re.search(r"(?i)\border\s+by\s*$", text[: order.position])
    assert keywords is not None  # the grammar put ORDER BY right before the name
    return text[: keywords.start()], text[keywords.start() :]
