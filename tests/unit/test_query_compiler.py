"""The list-filter compiler alone: values become parameters, names come from the allow-list."""

from __future__ import annotations

import pytest

from store.errors import InvalidQuery
from store.visibility.grouping import group_by_sql
from store.visibility.listing import count_sql
from store.visibility.query import compile_query, split_order

REGISTERED = {"CustomerId": "Keyword", "Amount": "Int", "Tags": "KeywordList"}


@pytest.mark.parametrize(
    "value",
    [
        "x'; DROP TABLE executions; --",
        "a\\' OR 1=1",
        "$$ OR 1=1 $$",
        "e.namespace",
        "') OR ('1'='1",
    ],
)
def test_values_never_reach_the_sql_text(value: str) -> None:
    quoted = "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    for query in (
        f"WorkflowType = {quoted}",
        f"CustomerId = {quoted}",
        f"WorkflowId IN ({quoted})",
    ):
        compiled = compile_query(query, REGISTERED)
        assert value not in compiled.where
        assert "DROP" not in compiled.where and "OR 1=1" not in compiled.where
        flat = str(compiled.params)
        assert "DROP" in flat or "1=1" in flat or value in flat or value.replace("\\'", "'") in flat


def test_a_registry_name_that_is_not_a_plain_name_never_reaches_sql() -> None:
    # a query token can never carry a quote; group_by is the one raw name, and a
    # registry entry written around the checks is refused, not quoted into SQL
    with pytest.raises(InvalidQuery):
        group_by_sql("x'y", {"x'y": "Keyword"})


def test_parameters_are_numbered_from_the_first_given() -> None:
    compiled = compile_query("WorkflowType = 'a' AND Amount > 3", REGISTERED, first_param=2)
    assert "$2" in compiled.where and "$3" in compiled.where and "$1" not in compiled.where
    assert compiled.params == ["a", 3]


def test_keywords_are_case_insensitive_and_names_are_not() -> None:
    assert compile_query("WorkflowType = 'a' and not Amount > 1 Order By StartTime asc", REGISTERED)
    with pytest.raises(InvalidQuery) as err:
        compile_query("workflowtype = 'a'", REGISTERED)
    assert err.value.details == {"position": 0, "token": "workflowtype"}


def test_a_keyword_can_be_a_name_when_backquoted() -> None:
    compiled = compile_query("`Order` = 'x'", {"Order": "Keyword"})
    assert compiled.params == [{"Order": "x"}]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("WorkflowId = 'a'", ("WorkflowId = 'a'", "")),
        ("ORDER BY StartTime", ("", "ORDER BY StartTime")),
        (
            "WorkflowId = 'x order by' order  by `WorkflowId` DESC",
            ("WorkflowId = 'x order by' ", "order  by `WorkflowId` DESC"),
        ),
    ],
)
def test_split_order_cuts_before_order_by(text: str, expected: tuple[str, str]) -> None:
    assert split_order(text, {}) == expected


def test_conditions_nested_past_the_limit_are_refused_not_a_crash() -> None:
    """The compiler recurses per level: a thousand NOTs (4,016 characters, under
    the length limit) ran out of Python's stack, a 500 for the caller."""
    assert compile_query("NOT " * 500 + "WorkflowId = 'x'", {}).params == ["x"]
    for text in ("NOT " * 1000 + "WorkflowId = 'x'", "(NOT " * 600 + "Paused = true" + ")" * 600):
        with pytest.raises(InvalidQuery, match="nest more than 500 deep"):
            compile_query(text, {})


@pytest.mark.parametrize(
    "spelling", ["TimedOut", "timed_out", "timed-out", "TIMED_OUT", "Timed-Out"]
)
def test_a_status_reads_as_temporal_list_describe_and_the_cli_write_it(spelling: str) -> None:
    """``--status timed-out`` (the CLI's spelling) compiles to the filter it is
    shorthand for; the same text in ``--query`` was refused."""
    assert compile_query(f"ExecutionStatus = '{spelling}'", REGISTERED).params == ["timed_out"]


@pytest.mark.parametrize("value", ["''", "' '", "'!?'", "'--'"])
def test_a_text_match_without_a_word_is_refused(value: str) -> None:
    """It would match no run (and != every run), as PostgreSQL reads an empty query."""
    for op in ("=", "!="):
        with pytest.raises(InvalidQuery, match="holds no word"):
            compile_query(f"Notes {op} {value}", {"Notes": "Text"})
    compile_query("Notes = 'a-b'", {"Notes": "Text"})
    compile_query("Notes = 'ü'", {"Notes": "Text"})


def test_not_starts_with_is_a_predicate_as_in_temporal() -> None:
    compiled = compile_query("WorkflowId NOT STARTS_WITH 'a_b%'", REGISTERED)
    assert compiled.where == "(NOT (e.workflow_id LIKE $1))"
    assert compiled.params == ["a\\_b\\%%"]
    compiled = compile_query("CustomerId not starts_with 'x' AND Amount > 1", REGISTERED)
    assert compiled.params[0] == "x%"
    with pytest.raises(InvalidQuery, match="STARTS_WITH applies to Keyword"):
        compile_query("Amount NOT STARTS_WITH '1'", REGISTERED)


@pytest.mark.parametrize(
    ("value", "status"),
    [
        ("1", "running"),
        ("7", "timed_out"),
        ("'WORKFLOW_EXECUTION_STATUS_CONTINUED_AS_NEW'", "continued_as_new"),
        ("'workflow_execution_status_running'", "running"),
    ],
)
def test_a_status_takes_temporal_enum_numbers_and_names(value: str, status: str) -> None:
    assert compile_query(f"ExecutionStatus = {value}", {}).params == [status]


@pytest.mark.parametrize("value", ["0", "9", "'WORKFLOW_EXECUTION_STATUS_UNSPECIFIED'", "1.5"])
def test_a_status_that_is_none_is_refused(value: str) -> None:
    with pytest.raises(InvalidQuery, match="not an execution status"):
        compile_query(f"ExecutionStatus = {value}", {})


@pytest.mark.parametrize("value", ["'Paused'", "8", "'WORKFLOW_EXECUTION_STATUS_PAUSED'"])
def test_paused_as_temporal_writes_it_is_a_paused_running_run(value: str) -> None:
    # no stored status: Baton keeps a paused run running with its Paused flag
    compiled = compile_query(f"ExecutionStatus = {value}", {})
    assert compiled.where == "(e.status = 'running' AND e.paused)" and compiled.params == []
    negated = compile_query(f"ExecutionStatus != {value}", {})
    assert negated.where == "(NOT (e.status = 'running' AND e.paused))"
    listed = compile_query(f"ExecutionStatus IN ({value}, 'Completed')", {})
    assert "(e.status = 'running' AND e.paused) OR" in listed.where
    assert listed.params == [["completed"]]
    assert compile_query(f"ExecutionStatus NOT IN ({value})", {}).where.startswith("(NOT ")


def test_a_datetime_takes_unix_nanoseconds_as_temporal_does() -> None:
    from datetime import UTC, datetime

    compiled = compile_query("StartTime > 1767225600123456789", {})
    assert compiled.params == [datetime(2026, 1, 1, 0, 0, 0, 123456, tzinfo=UTC)]
    compiled = compile_query("Due BETWEEN 0 AND -1000", {"Due": "Datetime"})
    assert compiled.params == [
        datetime(1970, 1, 1, tzinfo=UTC),
        datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
    ]
    for bad in ("99999999999999999999999999", "1.5"):
        with pytest.raises(InvalidQuery):
            compile_query(f"StartTime > {bad}", {})


@pytest.mark.parametrize(
    ("query", "group_by", "token"),
    [
        ("ExecutionStatus = 'Running' GROUP BY Tags", None, "Tags"),  # not groupable
        ("ExecutionStatus = 'Running' GROUP BY Nope", None, "Nope"),  # not registered
        ("ExecutionStatus = 'Running' GROUP BY `Tags`", None, "`Tags`"),
        ("ExecutionStatus = 'Running' GROUP BY WorkflowType", "TaskQueue", "WorkflowType"),
    ],
)
def test_a_bad_group_by_in_the_query_is_refused_at_its_position(
    query: str, group_by: str | None, token: str
) -> None:
    # as every other bad query: the position of the attribute, not 0
    with pytest.raises(InvalidQuery) as err:
        count_sql("ns", query, REGISTERED, group_by)
    at = query.index(token)
    assert err.value.details["position"] == at
    assert err.value.message.startswith(f"invalid query at position {at}: ")
