"""Search attributes: the system ones the server keeps and the typed custom ones.

System attributes are columns (or expressions over columns) of the execution
row. Custom attributes are registered per namespace with a type and stored in
the row's ``search_attributes`` jsonb, each value in a canonical form:
Keyword and Text as strings, Int and Double as numbers, Bool as a boolean,
Datetime as an RFC 3339 string in UTC, KeywordList as an array of strings.
Everything here is pure: it checks and normalises values, it touches no
database.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

import orjson

from store.errors import InvalidArgument


class AttributeType(StrEnum):
    KEYWORD = "Keyword"
    TEXT = "Text"
    INT = "Int"
    DOUBLE = "Double"
    BOOL = "Bool"
    DATETIME = "Datetime"
    KEYWORD_LIST = "KeywordList"
    # system-only kinds
    DURATION = "Duration"
    STATUS = "Status"
    UUID = "Uuid"


CUSTOM_TYPES = (
    AttributeType.KEYWORD,
    AttributeType.TEXT,
    AttributeType.INT,
    AttributeType.DOUBLE,
    AttributeType.BOOL,
    AttributeType.DATETIME,
    AttributeType.KEYWORD_LIST,
)


@dataclass(frozen=True)
class SystemAttribute:
    name: str
    type: AttributeType
    #: SQL over the execution row ``e``: a fixed string, never built from input.
    sql: str
    #: Whether the value may be NULL (CloseTime of a running run).
    nullable: bool = False


#: The run's start time plus its first workflow task's backoff, read by primary key.
EXECUTION_TIME_SQL = (
    "(e.start_time + COALESCE((SELECT (h.attributes->>'first_workflow_task_backoff_s')"
    "::double precision FROM history_events h WHERE h.namespace = e.namespace "
    "AND h.workflow_id = e.workflow_id AND h.run_id = e.run_id AND h.event_id = 1 "
    # a reset's run: its started event is a copy of another run's, whose wait it had not
    "AND coalesce(h.attributes->>'original_run_id', e.run_id::text) = e.run_id::text), 0) "
    "* interval '1 second')"
)

SYSTEM_ATTRIBUTES: dict[str, SystemAttribute] = {
    a.name: a
    for a in (
        SystemAttribute("WorkflowId", AttributeType.KEYWORD, "e.workflow_id"),
        SystemAttribute("RunId", AttributeType.UUID, "e.run_id"),
        SystemAttribute("WorkflowType", AttributeType.KEYWORD, "e.workflow_type"),
        SystemAttribute("ExecutionStatus", AttributeType.STATUS, "e.status"),
        SystemAttribute("TaskQueue", AttributeType.KEYWORD, "e.task_queue"),
        SystemAttribute("StartTime", AttributeType.DATETIME, "e.start_time"),
        SystemAttribute("CloseTime", AttributeType.DATETIME, "e.close_time", nullable=True),
        # Temporal's: when the run's first workflow task could start, its start
        # time plus the backoff its WorkflowExecutionStarted event (always
        # event 1) records (a retried run waits out its retry policy's delay)
        SystemAttribute("ExecutionTime", AttributeType.DATETIME, EXECUTION_TIME_SQL),
        SystemAttribute(
            "ExecutionDuration",
            AttributeType.DURATION,
            "(e.close_time - e.start_time)",
            nullable=True,
        ),
        SystemAttribute("HistoryLength", AttributeType.INT, "(e.next_event_id - 1)"),
        SystemAttribute("Paused", AttributeType.BOOL, "e.paused"),
        SystemAttribute("BuildId", AttributeType.KEYWORD, "e.build_id", nullable=True),
        # worker versioning: the run's deployment and its effective behaviour
        # ("pinned" while a pin or a pinned override holds it)
        SystemAttribute("WorkerDeployment", AttributeType.KEYWORD, "e.deployment", nullable=True),
        SystemAttribute(
            "VersioningBehavior", AttributeType.KEYWORD, "e.versioning_behavior", nullable=True
        ),
    )
}

#: Attributes every namespace has without registering them, stored like custom
#: ones: the schedule that started a run and the nominal time it fired for.
PREDEFINED_ATTRIBUTES: dict[str, str] = {
    "ScheduledById": "Keyword",
    "ScheduledStartTime": "Datetime",
}

#: Temporal's status names and Baton's, both accepted in queries.
STATUS_NAMES: dict[str, str] = {
    "running": "running",
    "completed": "completed",
    "failed": "failed",
    "canceled": "canceled",
    "cancelled": "canceled",
    "terminated": "terminated",
    "continuedasnew": "continued_as_new",
    "continued_as_new": "continued_as_new",
    "timedout": "timed_out",
    "timed_out": "timed_out",
    # not a stored status: Temporal lists a paused run as Paused, where
    # Baton keeps it running with its Paused flag (see PAUSED_SQL)
    "paused": "paused",
}

#: What ``ExecutionStatus = 'Paused'`` reads: a running run that is paused.
PAUSED_STATUS = "paused"
PAUSED_SQL = "(e.status = 'running' AND e.paused)"

#: Temporal's WorkflowExecutionStatus enum numbers, which its queries take too.
STATUS_CODES: dict[str, str] = {
    "1": "running",
    "2": "completed",
    "3": "failed",
    "4": "canceled",
    "5": "terminated",
    "6": "continued_as_new",
    "7": "timed_out",
    "8": "paused",
}


def temporal_status(status: str) -> str:
    """A stored status as Temporal names it (``continued_as_new`` is
    ``ContinuedAsNew``), the spelling a query's ExecutionStatus takes."""
    return "".join(part.capitalize() for part in status.split("_"))


def status_name(text: str) -> str | None:
    """Baton's name of a status as a query or filter may write it: Temporal's
    (Running, TimedOut, its enum's WORKFLOW_EXECUTION_STATUS_RUNNING or number),
    Baton's (timed_out) or the CLI's (timed-out); None for no status."""
    key = text.strip().lower().replace("-", "_").removeprefix("workflow_execution_status_")
    return STATUS_CODES.get(key) or STATUS_NAMES.get(key)


def query_status(text: str) -> str:
    """The status a query's ExecutionStatus compares with: as Temporal (its
    names or enum numbers), list and describe (timed_out), or the CLI's
    --status (timed-out) write it; Paused reads as a paused running run."""
    status = status_name(text)
    if status is None:
        raise InvalidArgument(
            f"{text!r} is not an execution status; use one of Running, Completed, Failed, "
            "Canceled, Terminated, ContinuedAsNew, TimedOut, Paused (or as list and describe "
            "write them: running, ..., continued_as_new, timed_out)"
        )
    return status


#: VersioningBehavior's values as Baton stores them, keyed by the spellings a
#: query may use: Baton's (auto-upgrade), Temporal's (AutoUpgrade) or its
#: enum's (VERSIONING_BEHAVIOR_AUTO_UPGRADE).
VERSIONING_BEHAVIOR_NAMES: dict[str, str] = {"pinned": "pinned", "autoupgrade": "auto-upgrade"}


def keyword_value(name: str, text: Any) -> Any:
    """A literal compared with ``=``, ``!=`` or ``IN`` as the column holds it:
    VersioningBehavior's in any of its spellings, refused when it is none (it
    would match nothing); any other attribute's as it is."""
    if name != "VersioningBehavior" or not isinstance(text, str):
        return text
    key = re.sub(r"[-_\s]", "", text.lower()).removeprefix("versioningbehavior")
    value = VERSIONING_BEHAVIOR_NAMES.get(key)
    if value is None:
        raise InvalidArgument(
            f"{text!r} is not a versioning behavior; use pinned or auto-upgrade (or "
            "Temporal's Pinned, AutoUpgrade), or VersioningBehavior IS NULL for an "
            "unversioned run"
        )
    return value


def datetime_of_nanos(nanos: int) -> datetime:
    """A time given as Temporal's queries take one as a number: Unix nanoseconds."""
    try:
        return datetime.fromtimestamp(0, UTC) + timedelta(microseconds=nanos // 1000)
    except OverflowError:
        raise InvalidArgument(
            f"{nanos} nanoseconds since 1970 is outside the years 1-9999"
        ) from None


NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
RESERVED_WORDS = frozenset(
    {
        "and",
        "or",
        "not",
        "in",
        "between",
        "is",
        "null",
        "order",
        "by",
        "asc",
        "desc",
        "starts_with",
        "true",
        "false",
    }
)

#: Limits on custom attributes, per namespace and per run.
MAX_REGISTERED = 100
MAX_PER_RUN = 50
MAX_VALUE_BYTES = 2048
MAX_TOTAL_BYTES = 40 * 1024
MAX_LIST_ITEMS = 100
INT_MIN, INT_MAX = -(2**63), 2**63 - 1


def check_attribute_name(name: str) -> None:
    """A name a namespace may register: not a system name, not a query keyword."""
    if not NAME_RE.match(name):
        raise InvalidArgument(
            f"search attribute name {name!r} is not valid: use 1-64 letters, digits and "
            "underscores, starting with a letter or underscore"
        )
    if name in SYSTEM_ATTRIBUTES or name in PREDEFINED_ATTRIBUTES or name.lower() in RESERVED_WORDS:
        raise InvalidArgument(f"{name!r} is a system attribute or a query keyword; pick another")


def parse_type(value: str) -> AttributeType:
    for t in CUSTOM_TYPES:
        if t.value.lower() == str(value).lower():
            return t
    raise InvalidArgument(
        f"unknown search attribute type {value!r}; use one of "
        + ", ".join(t.value for t in CUSTOM_TYPES)
    )


def parse_datetime(value: str) -> datetime:
    """An RFC 3339 datetime; one without an offset is refused, not guessed."""
    text = value.strip()
    if text.endswith(("z", "Z")):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidArgument(
            f"{value!r} is not an RFC 3339 datetime (e.g. 2026-11-30T12:00:00Z)"
        ) from None
    if parsed.tzinfo is None:
        raise InvalidArgument(f"datetime {value!r} has no UTC offset; add Z or +HH:MM")
    try:
        return parsed.astimezone(UTC)
    except (OverflowError, ValueError):
        raise InvalidArgument(f"datetime {value!r} is outside the years 1-9999 in UTC") from None


#: Kinds whose values are JSON strings.
_STRING_KINDS = frozenset({AttributeType.KEYWORD, AttributeType.TEXT, AttributeType.DATETIME})


def normalize_value(name: str, kind: AttributeType, value: Any) -> Any:
    """The canonical stored form of one custom value, or InvalidArgument."""
    hint = ""
    if kind in _STRING_KINDS and isinstance(value, int | float):
        # `--search-attribute Cust=123` reads 123 as JSON, a number: say how to send text
        text = str(value).lower() if isinstance(value, bool) else orjson.dumps(value).decode()
        hint = (
            f': send it as a string, "{text}" (on the baton command line, quoted for the '
            f"shell: {name}='\"{text}\"')"
        )
    if kind == AttributeType.KEYWORD_LIST and isinstance(value, str):
        # `--search-attribute Tags=a` reads a bare word as a string: say how to send a list
        listed = orjson.dumps([value]).decode()
        hint = (
            f": send a list of strings, {listed} (on the baton command line, quoted for the "
            f"shell: {name}='{listed}')"
        )
    wrong = InvalidArgument(
        f"search attribute {name!r} is {kind.value}; {value!r} is not a {kind.value} value{hint}"
    )
    if kind in (AttributeType.KEYWORD, AttributeType.TEXT):
        if not isinstance(value, str):
            raise wrong
        return value
    if kind == AttributeType.INT:
        if isinstance(value, bool) or not isinstance(value, int):
            raise wrong
        if not INT_MIN <= value <= INT_MAX:
            raise InvalidArgument(f"search attribute {name!r}: {value} is out of the 64-bit range")
        return value
    if kind == AttributeType.DOUBLE:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise wrong
        if not math.isfinite(float(value)):
            raise InvalidArgument(f"search attribute {name!r}: {value!r} is not a finite number")
        return float(value)
    if kind == AttributeType.BOOL:
        if not isinstance(value, bool):
            raise wrong
        return value
    if kind == AttributeType.DATETIME:
        if not isinstance(value, str):
            raise wrong
        return parse_datetime(value).isoformat().replace("+00:00", "Z")
    if kind == AttributeType.KEYWORD_LIST:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise wrong
        if len(value) > MAX_LIST_ITEMS:
            raise InvalidArgument(
                f"search attribute {name!r} has {len(value)} items; at most {MAX_LIST_ITEMS}"
            )
        return list(value)
    raise wrong


def validate_upsert(
    registered: dict[str, str], current: dict[str, Any], changes: dict[str, Any]
) -> dict[str, Any]:
    """The run's attributes after ``changes`` (a None value or an empty list
    removes one, as Temporal's upsert of an empty list does).

    Raises InvalidArgument for an unregistered name, a wrong type, or a result
    over the limits; the caller stores nothing then.
    """
    if not isinstance(changes, dict):
        raise InvalidArgument("search_attributes must be an object of name to value")
    merged = dict(current)
    for name, value in changes.items():
        if name in SYSTEM_ATTRIBUTES:
            raise InvalidArgument(f"{name!r} is a system attribute: the server sets it")
        if name not in registered:
            raise InvalidArgument(
                f"search attribute {name!r} is not registered in this namespace; add it with "
                f"`baton namespace search-attribute add NS {name} --type TYPE`"
            )
        if value is None or value == []:
            merged.pop(name, None)
            continue
        normalized = normalize_value(name, AttributeType(registered[name]), value)
        size = len(orjson.dumps(normalized))
        if size > MAX_VALUE_BYTES:
            raise InvalidArgument(
                f"search attribute {name!r} is {size} bytes; a value may be {MAX_VALUE_BYTES}"
            )
        merged[name] = normalized
    if len(merged) > MAX_PER_RUN:
        raise InvalidArgument(f"a run may hold {MAX_PER_RUN} search attributes, not {len(merged)}")
    total = len(orjson.dumps(merged))
    if total > MAX_TOTAL_BYTES:
        raise InvalidArgument(
            f"search attributes of a run would be {total} bytes; the limit is {MAX_TOTAL_BYTES}"
        )
    return merged
