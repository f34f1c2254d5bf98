"""List and count runs by a query, with stable page tokens.

A page token is the sort key of the page's last run (its sort value, workflow
id and run id) with a digest of the query: the next page starts strictly after
that key, so runs that start or close meanwhile never shift a page, and a
token cannot be replayed against another query.
"""

from __future__ import annotations

import base64
import hashlib
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import asyncpg
import orjson

from store.context import Store
from store.errors import InvalidArgument, InvalidQuery
from store.namespaces import get_namespace
from store.sql import QUERIES as Q
from store.visibility.attributes import AttributeType, status_name, temporal_status
from store.visibility.grouping import group_by_position, group_by_sql, split_group_by
from store.visibility.query import Order, compile_query
from store.workflows import execution_info
from worker import wire
from worker.wire import MAX_QUERY_CHARS

MAX_PAGE_SIZE = 1000


def _digest(query: str) -> str:
    return hashlib.sha256(query.encode()).hexdigest()[:16]


def _encode_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def _int_value(value: Any) -> Any:
    return int(value) if isinstance(value, Decimal | int) else _encode_value(value)


def _decode_value(order: Order, value: Any) -> Any:
    if value is None:
        return None
    kind = order.type
    if kind == AttributeType.DATETIME:
        return datetime.fromisoformat(value)
    if kind == AttributeType.DURATION:
        return timedelta(seconds=float(value))
    if kind == AttributeType.INT:
        return Decimal(value) if order.attribute != "HistoryLength" else int(value)
    if kind == AttributeType.DOUBLE:
        return float(value)
    if kind == AttributeType.UUID:
        return uuid.UUID(value)
    if kind == AttributeType.BOOL:
        return bool(value)
    return str(value)


def make_page_token(query: str, sort_value: Any, row: asyncpg.Record) -> str:
    raw = orjson.dumps(
        [_digest(query), _encode_value(sort_value), row["workflow_id"], str(row["run_id"])]
    )
    return base64.urlsafe_b64encode(raw).decode()


def _parse_token(query: str, token: str, order: Order) -> tuple[Any, str, uuid.UUID]:
    try:
        digest, value, wid, rid = orjson.loads(base64.urlsafe_b64decode(token))
        if digest != _digest(query):
            raise InvalidArgument("page_token belongs to another query: list again from the start")
        return _decode_value(order, value), str(wid), uuid.UUID(str(rid))
    except InvalidArgument:
        raise
    except (ValueError, TypeError, orjson.JSONDecodeError, ArithmeticError):
        raise InvalidArgument("page_token is not one this server returned") from None


def _after(order: Order, params: list[Any], key: tuple[Any, str, uuid.UUID] | None) -> str:
    """The keyset condition "after the last row of the previous page"."""
    if key is None:
        return "true"
    value, wid, rid = key
    less = "<" if order.descending else ">"

    def p(v: Any) -> str:
        params.append(v)
        return f"${len(params)}"

    s = order.sql
    if not order.nullable:
        v, w, r = p(value), p(wid), p(rid)
        return f"(({s}, e.workflow_id, e.run_id) {less} ({v}, {w}::text, {r}::uuid))"
    tie = f"((e.workflow_id, e.run_id) {less} ({p(wid)}::text, {p(rid)}::uuid))"
    # NULL sorts as the largest value (first when descending, last when
    # ascending), or last in either direction (Order.nulls_last)
    nulls_first = order.descending and not order.nulls_last
    if value is None:
        rest = f" OR {s} IS NOT NULL" if nulls_first else ""
        return f"(({s} IS NULL AND {tie}){rest})"
    v = p(value)
    cmp = f"(({s} {less} {v}) OR ({s} = {v} AND {tie}))"
    if nulls_first:
        return f"({s} IS NOT NULL AND {cmp})"
    return f"({s} IS NULL OR {cmp})"


def _order_sql(order: Order) -> str:
    direction = "DESC" if order.descending else "ASC"
    nulls = " NULLS LAST" if order.nulls_last else ""
    return f"{order.sql} {direction}{nulls}, e.workflow_id {direction}, e.run_id {direction}"


async def registered_attributes(conn: asyncpg.Connection, namespace: str) -> dict[str, str]:
    """The namespace's queryable custom attributes, name to type."""
    ns = await get_namespace(conn, namespace)
    return ns.active_search_attributes()


def list_sql(
    namespace: str,
    query: str,
    registered: dict[str, str],
    *,
    page_size: int = 100,
    page_token: str | None = None,
    include_system: bool = False,
    max_chars: int = MAX_QUERY_CHARS,
) -> tuple[str, list[Any], Order]:
    """The statement and parameters of one list page (EXPLAIN runs exactly this)."""
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        raise InvalidArgument(f"page_size must be between 1 and {MAX_PAGE_SIZE}")
    compiled = compile_query(query, registered, first_param=2, max_chars=max_chars)
    params: list[Any] = [namespace, *compiled.params]
    key = _parse_token(query, page_token, compiled.order) if page_token else None
    after = _after(compiled.order, params, key)
    sql = Q["list_by_query"].format(
        sort=compiled.order.sql,
        where=_visible(compiled.where, include_system),
        after=after,
        order=_order_sql(compiled.order),
        limit=int(page_size) + 1,
    )
    return sql, params, compiled.order


def count_sql(
    namespace: str,
    query: str,
    registered: dict[str, str],
    group_by: str | None = None,
    include_system: bool = False,
) -> tuple[str, list[Any]]:
    """The statement and parameters of a count (grouped when ``group_by`` is given)."""
    # an attribute the query's own GROUP BY names is refused at its position
    position = group_by_position(query)
    query, group_by = count_grouping(query, group_by)
    compiled = compile_query(query, registered, first_param=2)
    params: list[Any] = [namespace, *compiled.params]
    where = _visible(compiled.where, include_system)
    if group_by is None:
        return Q["count_by_query"].format(where=where), params
    group, _ = group_by_sql(group_by, registered, position=position)
    return Q["count_by_query_grouped"].format(where=where, group=group), params


def count_grouping(query: str, group_by: str | None) -> tuple[str, str | None]:
    """A count's filter and the attribute it groups by: the ``group_by``
    parameter or the query's own ``GROUP BY`` (Temporal's syntax), not two
    different ones."""
    text, in_query = split_group_by(query)
    if in_query is not None and group_by is not None and in_query != group_by:
        position = group_by_position(query)
        raise InvalidQuery(
            f"invalid query at position {position}: the query groups by {in_query} "
            f"and group_by asks for {group_by}: give one of them",
            position=position,
            token=in_query,
        )
    return text, group_by or in_query


def _visible(where: str, include_system: bool) -> str:
    # System workflows (batch jobs, schedules: types "baton.*") are listed
    # only when asked for, so a batch over "every running run" never acts on
    # the jobs themselves.
    return where if include_system else f"({where}) AND e.workflow_type NOT LIKE 'baton.%'"


async def list_runs(
    store: Store,
    namespace: str,
    query: str,
    *,
    page_size: int = 100,
    page_token: str | None = None,
    include_system: bool = False,
    max_chars: int = MAX_QUERY_CHARS,
) -> tuple[list[asyncpg.Record], str | None]:
    """One page of runs matching ``query`` and the token of the next page
    (``max_chars``: a query composed around a user's, see :func:`parse`)."""
    async with store.pool.acquire() as conn:
        registered = await registered_attributes(conn, namespace)
        sql, params, _ = list_sql(
            namespace,
            query,
            registered,
            page_size=page_size,
            page_token=page_token,
            include_system=include_system,
            max_chars=max_chars,
        )
        rows = await _fetch(conn, sql, params, query)
    more = len(rows) > page_size
    rows = rows[:page_size]
    next_token = None
    if more:
        last = rows[-1]
        next_token = make_page_token(query, last["_sort"], last)
    return rows, next_token


async def _fetch(
    conn: asyncpg.Connection, sql: str, params: list[Any], query: str
) -> list[asyncpg.Record]:
    try:
        return list(await conn.fetch(sql, *params))
    except (asyncpg.DataError, asyncpg.InvalidTextRepresentationError) as exc:
        raise InvalidQuery(
            f"query {query!r} compares a value the database cannot read: {exc}",
            position=0,
            token="",
        ) from exc


async def count_runs(
    store: Store,
    namespace: str,
    query: str,
    *,
    group_by: str | None = None,
    include_system: bool = False,
) -> dict[str, Any]:
    """The number of runs matching ``query``, optionally per value of ``group_by``."""
    text, grouped_by = count_grouping(query, group_by)
    async with store.pool.acquire() as conn:
        registered = await registered_attributes(conn, namespace)
        sql, params = count_sql(namespace, query, registered, group_by, include_system)
        rows = await _fetch(conn, sql, params, text)
    group_by = grouped_by
    if group_by is None:
        return {"count": rows[0]["n"], "groups": []}
    _, kind = group_by_sql(group_by, registered)
    # an Int attribute's values come back as numbers, not their text
    value_of: Callable[[Any], Any] = _int_value if kind == AttributeType.INT else _encode_value
    if kind == AttributeType.STATUS:
        # as Temporal groups them, in the spelling a query compares with (Running)
        value_of = temporal_status
    groups = [{"value": value_of(r["value"]), "count": r["n"]} for r in rows]
    return {"count": rows[0]["total"] if rows else 0, "groups": groups}


# --------------------------------------------------------------------------- the fixed filters


def _utc(value: datetime | None, name: str) -> datetime | None:
    """A bound as a UTC time, refused if it falls outside the years 1-9999 in UTC."""
    if value is None:
        return None
    try:
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    except (OverflowError, ValueError):
        raise InvalidArgument(
            f"{name} {value.isoformat()} is outside the range of times this server stores"
        ) from None


def quote(value: str) -> str:
    """``value`` as a quoted string literal of the list-filter language."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def filters_to_query(
    *,
    status: str | None = None,
    workflow_type: str | None = None,
    task_queue: str | None = None,
    started_after: datetime | None = None,
    started_before: datetime | None = None,
    workflow_id_prefix: str | None = None,
) -> str:
    """The fixed list filters as a query: they are sugar over the same path."""
    if status is not None:
        # the names a query's ExecutionStatus takes (Temporal's Running,
        # TimedOut; the CLI's timed-out), not only the ones list writes
        known = status_name(status)
        if known is None:
            raise InvalidArgument(
                f"unknown status {status!r}; use one of "
                + ", ".join(s.value for s in wire.WorkflowStatus)
                + " (or Temporal's names: Running, ..., ContinuedAsNew, TimedOut)"
            )
        status = known
    parts = []
    if status:
        parts.append(f"ExecutionStatus = {quote(status)}")
    if workflow_type:
        parts.append(f"WorkflowType = {quote(workflow_type)}")
    if task_queue:
        parts.append(f"TaskQueue = {quote(task_queue)}")
    after = _utc(started_after, "started_after")
    before = _utc(started_before, "started_before")
    if after:
        parts.append(f"StartTime >= {quote(after.isoformat())}")
    if before:
        parts.append(f"StartTime < {quote(before.isoformat())}")
    if workflow_id_prefix:
        parts.append(f"WorkflowId STARTS_WITH {quote(workflow_id_prefix)}")
    return " AND ".join(parts)


async def list_workflows(
    store: Store,
    namespace: str,
    *,
    query: str | None = None,
    page_size: int = 100,
    page_token: str | None = None,
    include_system: bool = False,
    **filters: Any,
) -> dict[str, Any]:
    """A page of runs matching ``query`` (or the fixed filters), with the next token."""
    sugar = filters_to_query(**filters)
    if query and sugar:
        raise InvalidArgument("give either query or the fixed filters (status, ...), not both")
    rows, token = await list_runs(
        store,
        namespace,
        query or sugar,
        page_size=page_size,
        page_token=page_token,
        include_system=include_system,
    )
    return {"executions": [execution_info(r) for r in rows], "next_page_token": token}
