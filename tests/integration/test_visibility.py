"""Search attributes, the list-filter language, list and count on real PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from tests.apps.visibility import Tagged, TagsFromASet, record
from tests.conftest import Region
from tests.helpers import baton_json, eventually
from worker import Client, Worker
from worker.errors import InvalidArgumentError, InvalidQueryError

pytestmark = pytest.mark.integration
QUEUE = "visibility"

ATTRIBUTES = {
    "CustomerId": "Keyword",
    "Stage": "Keyword",
    "Amount": "Int",
    "Score": "Double",
    "Vip": "Bool",
    "DueAt": "Datetime",
    "Tags": "KeywordList",
    "Notes": "Text",
}


async def register(client: Client) -> None:
    for name, kind in ATTRIBUTES.items():
        await client.add_search_attribute(name, kind)


async def ids(client: Client, query: str) -> list[str]:
    return [e.workflow_id async for e in client.list_workflows(query, page_size=3)]


async def test_registry_add_list_remove_and_typed_refusals(client: Client) -> None:
    assert (await client.add_search_attribute("CustomerId", "Keyword"))["changed"] is True
    assert (await client.add_search_attribute("CustomerId", "keyword"))["changed"] is False
    listed = {a["name"]: a for a in await client.list_search_attributes()}
    assert listed["CustomerId"] == {"name": "CustomerId", "type": "Keyword", "kind": "custom"}
    assert listed["WorkflowType"]["kind"] == "system"
    for name, kind in [
        ("CustomerId", "Int"),  # another type for a registered name
        ("WorkflowType", "Keyword"),  # a system name
        ("and", "Keyword"),  # a query keyword
        ("1abc", "Keyword"),
        ("x" * 65, "Keyword"),
        ("Fine", "Decimal"),  # no such type
    ]:
        with pytest.raises(InvalidArgumentError):
            await client.add_search_attribute(name, kind)
    after = {a["name"] for a in await client.list_search_attributes()}
    assert after == set(listed)  # nothing stored by a refusal

    await client.start_workflow(
        "T", id="r-1", task_queue=QUEUE, search_attributes={"CustomerId": "a"}
    )
    assert await ids(client, "CustomerId = 'a'") == ["r-1"]
    assert (await client.remove_search_attribute("CustomerId"))["changed"] is True
    # again, and a name never registered: the same keys as a removal, nothing changed
    # (the answer left out the type, so `-o json` keys depended on the outcome)
    assert await client.remove_search_attribute("CustomerId") == {
        "name": "CustomerId",
        "type": "Keyword",
        "changed": False,
    }
    assert await client.remove_search_attribute("NeverThere") == {
        "name": "NeverThere",
        "type": None,
        "changed": False,
    }
    with pytest.raises(InvalidQueryError) as err:
        await ids(client, "CustomerId = 'a'")
    assert "unknown search attribute 'CustomerId'" in err.value.message
    with pytest.raises(InvalidArgumentError):  # removed as Keyword: it cannot come back as Int
        await client.add_search_attribute("CustomerId", "Int")
    assert (await client.add_search_attribute("CustomerId", "Keyword"))["changed"] is True
    assert await ids(client, "CustomerId = 'a'") == ["r-1"]  # the run kept its value


async def test_removing_a_name_that_cannot_be_one_is_refused_and_changes_nothing(
    client: Client,
) -> None:
    """A name with "/", "?" or "#" reached another route (or a cut-off name)."""
    await client.add_search_attribute("CustomerId", "Keyword")
    before = await client.list_search_attributes()
    for name in ("Customer/Id", "CustomerId?x=1", "CustomerId#x", "Customer Id", "..", "."):
        with pytest.raises(InvalidArgumentError) as err:
            await client.remove_search_attribute(name)
        assert "is not a search attribute name" in err.value.message, name
    assert await client.list_search_attributes() == before
    assert (await client.remove_search_attribute("CustomerId"))["changed"] is True


async def test_bad_start_attributes_store_nothing(client: Client, region: Region) -> None:
    await register(client)
    bad: list[dict[str, Any]] = [
        {"Unknown": "x"},
        {"Amount": "42"},
        {"Amount": 1.5},
        {"Amount": 2**63},
        {"Vip": "yes"},
        {"Score": "NaN"},
        {"DueAt": "2026-11-30T12:00:00"},  # no offset
        {"DueAt": datetime(2026, 11, 30, 12)},  # noqa: DTZ001 (no zone, on purpose)
        {"DueAt": "yesterday"},
        {"Tags": "not-a-list"},
        {"Tags": [1, 2]},
        {"CustomerId": "x" * 3000},
        {"WorkflowType": "forged"},
        {f"A{i}": "x" for i in range(60)},
    ]
    for attrs in bad:
        with pytest.raises(InvalidArgumentError):
            await client.start_workflow("T", id="bad-1", task_queue=QUEUE, search_attributes=attrs)
    conn = await asyncpg.connect(region.dsn)
    try:
        assert await conn.fetchval("SELECT count(*) FROM executions") == 0
        assert await conn.fetchval("SELECT count(*) FROM history_events") == 0
    finally:
        await conn.close()


async def test_workflow_upserts_attributes_and_replays_them(client: Client) -> None:
    await register(client)
    async with Worker(client, task_queue=QUEUE, workflows=[Tagged], activities=[record]):
        h = await client.start_workflow(Tagged, "c-7", id="tagged-1", task_queue=QUEUE)

        async def charged() -> bool:
            q = "CustomerId = 'c-7' AND Stage = 'charged' AND Amount >= 42"
            return await ids(client, q) == ["tagged-1"]

        await eventually(charged, timeout=20, what="the upserted attributes listed")
    # a fresh worker (nothing cached) replays the upserts before it takes the signal
    async with Worker(
        client, task_queue=QUEUE, workflows=[Tagged], activities=[record], max_cached_workflows=0
    ):
        await h.signal("done")
        result = await h.result(timeout=20)
    assert result == {"CustomerId": "c-7", "Stage": "charged", "Amount": 42}
    events = await h.history()
    upserts = [e for e in events if e["event_type"] == "UpsertWorkflowSearchAttributes"]
    assert [e["attributes"]["search_attributes"] for e in upserts] == [
        {"CustomerId": "c-7", "Stage": "started"},
        {"Stage": "charged", "Amount": 42},
    ]
    assert not [e for e in events if e["event_type"] == "WorkflowTaskFailed"]
    (run,) = [e async for e in client.list_workflows("WorkflowId = 'tagged-1'")]
    assert run.search_attributes == {"CustomerId": "c-7", "Stage": "charged", "Amount": 42}
    assert run.status == "completed"


async def _seed(client: Client) -> None:
    await register(client)
    base = datetime(2026, 11, 1, tzinfo=UTC)
    rows: list[tuple[str, str, dict[str, Any]]] = [
        (
            "pay-1",
            "Payment",
            {
                "CustomerId": "alice",
                "Amount": 10,
                "Score": 0.5,
                "Vip": True,
                "DueAt": base.isoformat(),
                "Tags": ["eu", "card"],
                "Notes": "first order shipped",
            },
        ),
        (
            "pay-2",
            "Payment",
            {
                "CustomerId": "bob",
                "Amount": 20,
                "Score": 1.5,
                "Vip": False,
                "DueAt": (base + timedelta(days=1)).isoformat(),
                "Tags": ["us"],
            },
        ),
        (
            "pay-3",
            "Payment",
            {"CustomerId": "o'brien", "Amount": 30, "DueAt": "2026-11-03T02:00:00+02:00"},
        ),
        (
            "ship-1",
            "Shipping",
            {"CustomerId": "alice", "Amount": 40, "Tags": ["eu"], "Notes": "late delivery"},
        ),
        ("ship_2", "Shipping", {"CustomerId": 'say "hi"', "Stage": "x%y"}),
        ("refund-1", "Refund", {}),
    ]
    for wid, wtype, attrs in rows:
        await client.start_workflow(wtype, id=wid, task_queue=QUEUE, search_attributes=attrs)
    await client.get_workflow_handle("refund-1").terminate("test")


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        # each comparison operator
        ("Amount = 20", {"pay-2"}),
        ("Amount != 20", {"pay-1", "pay-3", "ship-1"}),
        ("Amount <> 20", {"pay-1", "pay-3", "ship-1"}),
        ("Amount > 20", {"pay-3", "ship-1"}),
        ("Amount >= 20", {"pay-2", "pay-3", "ship-1"}),
        ("Amount < 20", {"pay-1"}),
        ("Amount <= 20", {"pay-1", "pay-2"}),
        ("Score > 1.0", {"pay-2"}),
        ("Vip = true", {"pay-1"}),
        ("Vip = FALSE", {"pay-2"}),
        ("WorkflowType IN ('Refund', 'Shipping')", {"ship-1", "ship_2", "refund-1"}),
        ("WorkflowType NOT IN ('Payment')", {"ship-1", "ship_2", "refund-1"}),
        ("Amount BETWEEN 15 AND 35", {"pay-2", "pay-3"}),
        ("Amount NOT BETWEEN 15 AND 35", {"pay-1", "ship-1"}),
        ("WorkflowId STARTS_WITH 'pay-'", {"pay-1", "pay-2", "pay-3"}),
        ("WorkflowId STARTS_WITH 'ship_'", {"ship_2"}),  # _ is literal, not a wildcard
        ("Stage STARTS_WITH 'x%'", {"ship_2"}),  # % too
        ("Amount IS NULL", {"ship_2", "refund-1"}),
        ("Amount IS NOT NULL", {"pay-1", "pay-2", "pay-3", "ship-1"}),
        ("CloseTime IS NOT NULL", {"refund-1"}),
        ("ExecutionStatus = 'Terminated'", {"refund-1"}),
        ("ExecutionStatus = 'running' AND WorkflowType = 'Refund'", set()),
        ("HistoryLength > 2", {"refund-1"}),
        # ExecutionDuration as Temporal reads it: integers are nanoseconds
        ("ExecutionDuration > 1000", {"refund-1"}),
        ("ExecutionDuration BETWEEN 0 AND 60000000000", {"refund-1"}),
        ("ExecutionDuration < '00:01:00'", {"refund-1"}),
        ("ExecutionDuration > '01:00:00'", set()),
        ("ExecutionDuration < '1m30s'", {"refund-1"}),
        ("Tags = 'eu'", {"pay-1", "ship-1"}),
        ("Tags != 'eu'", {"pay-2", "pay-3", "ship_2", "refund-1"}),
        ("Tags IN ('us', 'card')", {"pay-1", "pay-2"}),  # any of them in the list
        ("Tags NOT IN ('us', 'card')", {"pay-3", "ship-1", "ship_2", "refund-1"}),
        ("Notes = 'shipped'", {"pay-1"}),
        # boolean operators, precedence, parentheses
        ("CustomerId = 'alice' AND WorkflowType = 'Payment'", {"pay-1"}),
        ("CustomerId = 'bob' OR WorkflowType = 'Refund'", {"pay-2", "refund-1"}),
        ("NOT WorkflowType = 'Payment'", {"ship-1", "ship_2", "refund-1"}),
        # AND binds tighter than OR
        (
            "WorkflowType = 'Refund' OR WorkflowType = 'Payment' AND Amount > 15",
            {"refund-1", "pay-2", "pay-3"},
        ),
        (
            "(WorkflowType = 'Refund' OR WorkflowType = 'Payment') AND Amount > 15",
            {"pay-2", "pay-3"},
        ),
        ("NOT (Amount > 15 OR Amount IS NULL)", {"pay-1"}),
        ("WorkflowType = 'Payment' and Amount = 10", {"pay-1"}),  # keywords are not
        # quoting and escaping
        ("CustomerId = 'o\\'brien'", {"pay-3"}),
        ("CustomerId = 'o''brien'", {"pay-3"}),
        ('CustomerId = "o\'brien"', {"pay-3"}),
        ("CustomerId = 'say \"hi\"'", {"ship_2"}),
        ('CustomerId = "say \\"hi\\""', {"ship_2"}),
        ("`CustomerId` = 'bob'", {"pay-2"}),
        # RFC 3339 datetimes, any offset
        ("DueAt = '2026-11-01T00:00:00Z'", {"pay-1"}),
        ("DueAt = '2026-11-01T01:00:00+01:00'", {"pay-1"}),
        ("DueAt > '2026-11-01T00:00:00Z'", {"pay-2", "pay-3"}),
        ("DueAt BETWEEN '2026-11-02T00:00:00Z' AND '2026-11-03T00:00:00.000Z'", {"pay-2", "pay-3"}),
        (
            "StartTime > '2000-01-01T00:00:00Z' AND StartTime < '2100-01-01T00:00:00-05:00'",
            {"pay-1", "pay-2", "pay-3", "ship-1", "ship_2", "refund-1"},
        ),
    ],
)
async def test_each_operator_on_real_rows(client: Client, query: str, expected: set[str]) -> None:
    await _seed(client)
    assert set(await ids(client, query)) == expected
    assert (await client.count_workflows(query))["count"] == len(expected)


async def test_order_by_and_group_by(client: Client) -> None:
    await _seed(client)
    assert await ids(client, "Amount IS NOT NULL ORDER BY Amount ASC") == [
        "pay-1",
        "pay-2",
        "pay-3",
        "ship-1",
    ]
    assert await ids(client, "Amount IS NOT NULL ORDER BY Amount DESC") == [
        "ship-1",
        "pay-3",
        "pay-2",
        "pay-1",
    ]
    # a run without a custom attribute sorts last either way (as Temporal's
    # Elasticsearch store puts missing values), across pages of three
    assert (await ids(client, "ORDER BY Amount"))[-2:] in (
        ["refund-1", "ship_2"],
        ["ship_2", "refund-1"],
    )
    assert await ids(client, "ORDER BY Amount DESC") == [
        "ship-1",
        "pay-3",
        "pay-2",
        "pay-1",
        "ship_2",
        "refund-1",
    ]
    assert set((await ids(client, "ORDER BY CloseTime DESC"))[:5]) == {
        "pay-1",
        "pay-2",
        "pay-3",
        "ship-1",
        "ship_2",
    }
    counted = await client.count_workflows("", group_by="WorkflowType")
    assert counted["count"] == 6
    assert {g["value"]: g["count"] for g in counted["groups"]} == {
        "Payment": 3,
        "Shipping": 2,
        "Refund": 1,
    }
    by_status = await client.count_workflows(
        "WorkflowType != 'Shipping'", group_by="ExecutionStatus"
    )
    # as Temporal groups them: the spelling a query compares with
    assert {g["value"]: g["count"] for g in by_status["groups"]} == {"Running": 3, "Terminated": 1}
    by_amount = await client.count_workflows("Amount IS NOT NULL", group_by="Amount")
    values = [g["value"] for g in by_amount["groups"]]
    assert sorted(values) == [10, 20, 30, 40]  # numbers, as an Int attribute holds them
    assert all(type(v) is int for v in values), values
    with pytest.raises(InvalidQueryError):
        await client.count_workflows("", group_by="Notes")


async def test_a_set_upserted_as_a_keyword_list_reads_the_same_in_every_worker(
    client: Client,
) -> None:
    """A set iterates in an order of its own process: the SDK sorts it, so the run,
    its replay in another worker and the list all read one order."""
    await client.add_search_attribute("Tags", "KeywordList")
    tags = [f"tag-{i}" for i in range(20)]
    async with Worker(client, task_queue=QUEUE, workflows=[TagsFromASet]):
        seen = await client.execute_workflow(TagsFromASet, tags, id="set-tags", task_queue=QUEUE)
    assert seen == sorted(tags)
    stored = (await client.get_workflow_handle("set-tags").describe())["execution"]
    assert stored["search_attributes"]["Tags"] == sorted(tags)


async def test_a_count_query_groups_by_its_own_group_by_clause(
    client: Client, region: Region
) -> None:
    """Temporal's syntax: ``... GROUP BY ATTR`` at the end of a count's query."""
    await _seed(client)
    expected = {"Running": 3, "Terminated": 1}
    for query in (
        "WorkflowType != 'Shipping' GROUP BY ExecutionStatus",
        "WorkflowType != 'Shipping' group by `ExecutionStatus`",
    ):
        counted = await client.count_workflows(query)
        assert counted.count == 4
        assert {g.value: g.count for g in counted.groups} == expected
    # the same attribute twice is the same count; two different ones are refused
    same = await client.count_workflows("GROUP BY WorkflowType", group_by="WorkflowType")
    assert {g.value: g.count for g in same.groups} == {"Payment": 3, "Shipping": 2, "Refund": 1}
    with pytest.raises(InvalidQueryError):
        await client.count_workflows("GROUP BY WorkflowType", group_by="ExecutionStatus")
    with pytest.raises(InvalidQueryError):
        await client.count_workflows("GROUP BY Notes")  # not an attribute to group by
    # a list cannot group: the error says where GROUP BY belongs
    with pytest.raises(InvalidQueryError) as err:
        await ids(client, "WorkflowType = 'Payment' GROUP BY ExecutionStatus")
    assert "GROUP BY groups a count" in err.value.message
    code, out, err_text = await baton_json(
        region.config_path, "workflow", "count", "--query", "GROUP BY WorkflowType"
    )
    assert code == 0, err_text
    assert {g["value"]: g["count"] for g in out["groups"]} == {
        "Payment": 3,
        "Shipping": 2,
        "Refund": 1,
    }


async def test_a_grouped_count_past_its_group_limit_still_counts_every_run(
    client: Client,
) -> None:
    """The largest 1,000 groups are listed; the count is of every run, not of those."""
    await client.add_search_attribute("CustomerId", "Keyword")
    sem = asyncio.Semaphore(20)

    async def start(i: int) -> None:
        async with sem:
            await client.start_workflow(
                "Many", id=f"many-{i}", task_queue=QUEUE, search_attributes={"CustomerId": f"c{i}"}
            )

    await asyncio.gather(*(start(i) for i in range(1003)))
    await client.start_workflow(
        "Many", id="many-twin", task_queue=QUEUE, search_attributes={"CustomerId": "c7"}
    )
    counted = await client.count_workflows("WorkflowType = 'Many'", group_by="CustomerId")
    assert counted.count == 1004 == (await client.count_workflows("WorkflowType = 'Many'")).count
    assert len(counted.groups) == 1000
    assert counted.groups[0].value == "c7" and counted.groups[0].count == 2
    empty = await client.count_workflows("WorkflowType = 'None'", group_by="CustomerId")
    assert (empty.count, empty.groups) == (0, [])


async def test_page_tokens_are_stable_while_runs_start(client: Client) -> None:
    for i in range(25):
        await client.start_workflow("Paged", id=f"page-{i:02d}", task_queue=QUEUE)
    seen: list[str] = []
    token = None
    pages = 0
    while True:
        res = await client.call(
            "GET",
            "/api/v1/namespaces/default/workflows",
            params={"query": "WorkflowType = 'Paged'", "page_size": 7, "page_token": token},
        )
        seen += [e["workflow_id"] for e in res["executions"]]
        pages += 1
        # runs that start meanwhile are newer: they never shift a later page
        await client.start_workflow("Paged", id=f"late-{pages}", task_queue=QUEUE)
        token = res["next_page_token"]
        if not token:
            break
    assert seen == [f"page-{i:02d}" for i in reversed(range(25))]
    with pytest.raises(InvalidArgumentError) as err:
        await client.call(
            "GET",
            "/api/v1/namespaces/default/workflows",
            params={"query": "WorkflowType = 'Other'", "page_token": res_token(seen)},
        )
    assert "page_token" in err.value.message


def res_token(_: list[str]) -> str:
    import base64

    return base64.urlsafe_b64encode(
        b'["0000000000000000", null, "x", "00000000-0000-0000-0000-000000000000"]'
    ).decode()


MALFORMED = [
    ("WorkflowType =", 14),
    ("= 'x'", 0),
    ("WorkflowType 'x'", 13),
    ("WorkflowType == 'x'", 14),
    ("WorkflowType = 'x' AND", 22),
    ("WorkflowType = 'x' OR OR WorkflowId = 'y'", 22),
    ("(WorkflowType = 'x'", 19),
    ("WorkflowType = 'x')", 18),
    ("WorkflowType = 'unterminated", 15),
    ("WorkflowType IN ()", 17),
    ("WorkflowType IN ('a',)", 21),
    ("WorkflowType IN 'a'", 16),
    ("Amount BETWEEN 1", 16),
    ("Amount BETWEEN AND 2", 15),
    ("WorkflowType IS 'x'", 16),
    ("WorkflowType IS NOT", 19),
    ("WorkflowType STARTS_WITH", 24),
    ("ORDER BY", 8),
    ("WorkflowType = 'x' ORDER", 24),
    ("WorkflowType = 'x' ORDER BY StartTime SIDEWAYS", 38),
    ("WorkflowType = 'x' ; DROP TABLE executions", 19),
    ("WorkflowType = 'x' -- comment", 19),
    ("WorkflowType = 'x' /* c */", 19),
    ("WorkflowType = @x", 15),
    ("Nope = 'x'", 0),
    ("WorkflowType = 'x' AND workflowtype = 'x'", 23),  # names are case-sensitive
    ("WorkflowType = 1", 15),
    ("Amount = 'ten'", 9),
    ("Amount = 1.5", 9),
    ("StartTime > 'yesterday'", 12),
    ("StartTime > '2026-11-30T12:00:00'", 12),
    ("ExecutionStatus = 'Sleeping'", 18),
    ("RunId = 'not-a-uuid'", 8),
    ("Vip > true", 4),
    ("Tags > 'x'", 5),
    ("Notes IN ('a')", 0),
    ("Amount STARTS_WITH 'x'", 0),
    ("ORDER BY Notes", 9),
    ("ORDER BY Amount, StartTime", 17),
    ("ExecutionDuration > 'forever'", 20),
    ("ExecutionDuration > '99999999999999h'", 20),
    ("StartTime > '0001-01-01T00:00:00+05:00'", 12),
]


async def test_malformed_queries_get_invalid_query_with_position(client: Client) -> None:
    await register(client)
    assert len(MALFORMED) >= 30
    for query, position in MALFORMED:
        with pytest.raises(InvalidQueryError) as err:
            await ids(client, query)
        assert err.value.code == "INVALID_QUERY"
        assert err.value.details["position"] == position, (query, err.value.message)
        assert f"position {position}" in err.value.message


INJECTIONS = [
    "WorkflowType = 'x' OR '1'='1'",
    "WorkflowType = 'x'' OR ''1''=''1'",
    "WorkflowType = 'x\\' OR 1=1 --'",
    "WorkflowType = 'x'; DELETE FROM executions; --'",
    "WorkflowType = 'x' UNION SELECT * FROM namespaces",
    "WorkflowType = '''; DROP TABLE executions; --'",
    "WorkflowType = 'x' /* */ OR 1=1",
    "WorkflowType = '\u02bc OR 1=1 --'",  # modifier letter apostrophe
    "WorkflowType = '\uff07 OR 1=1'",  # fullwidth apostrophe
    "WorkflowType = 'x\u2019; DROP TABLE executions'",
    "WorkflowType = 'x' OR pg_sleep(5) IS NULL",
    "WorkflowType = $1",
    "`WorkflowType; DROP TABLE executions` = 'x'",
    "CustomerId = 'x') OR (1=1",
    "WorkflowType = E'\\x27 OR 1=1'",
    "WorkflowType = 'x' ORDER BY (SELECT 1)",
    "WorkflowType = 'x' ORDER BY StartTime; DROP TABLE executions",
    "search_attributes->>'CustomerId' = 'x'",
    "WorkflowId = 'x' OR e.namespace <> 'default'",
    "WorkflowType = 'x\x00'",
]


async def test_injection_attempts_change_nothing(client: Client, region: Region) -> None:
    await _seed(client)

    async def fingerprint() -> dict[str, str]:
        conn = await asyncpg.connect(region.dsn)
        try:
            tables = await conn.fetch(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1"
            )
            out = {}
            for t in tables:
                name = t["tablename"]
                out[name] = await conn.fetchval(
                    f"SELECT md5(coalesce(string_agg(x::text, '|' ORDER BY x::text), '')) "
                    f'FROM "{name}" x'
                )
            return out
        finally:
            await conn.close()

    before = await fingerprint()
    for query in INJECTIONS:
        try:
            got = await ids(client, query)
        except (InvalidQueryError, InvalidArgumentError):
            continue
        assert got == [], query  # if it parses, it is a value compared as data
    assert await fingerprint() == before


async def test_cli_list_count_and_search_attributes(client: Client, region: Region) -> None:
    await _seed(client)

    async def baton(*args: str) -> Any:
        return await baton_json(region.config_path, *args)

    code, listed, _ = await baton("workflow", "list", "--query", "CustomerId = 'alice'")
    assert code == 0 and {e["workflow_id"] for e in listed} == {"pay-1", "ship-1"}
    code, counted, _ = await baton("workflow", "count", "--group-by", "WorkflowType")
    assert code == 0 and counted["count"] == 6
    code, added, _ = await baton(
        "namespace", "search-attribute", "add", "default", "Region", "--type", "Keyword"
    )
    assert code == 0 and added["changed"] is True
    code, attrs, _ = await baton("namespace", "search-attribute", "list", "default")
    assert code == 0 and {"name": "Region", "type": "Keyword", "kind": "custom"} in attrs
    code, _, err = await baton(
        "workflow",
        "start",
        "--type",
        "Cli",
        "--task-queue",
        QUEUE,
        "--id",
        "cli-1",
        "--search-attribute",
        "CustomerId=zed",
        "--search-attribute",
        "Amount=7",
    )
    assert code == 0, err
    code, listed, _ = await baton(
        "workflow", "list", "--query", "CustomerId = 'zed' AND Amount = 7"
    )
    assert code == 0 and [e["workflow_id"] for e in listed] == ["cli-1"]
    code, failed, err = await baton("workflow", "list", "--query", "Amount = ")
    assert code != 0 and "Traceback" not in err
    assert failed["error"]["code"] == "INVALID_QUERY"


async def test_an_upsert_of_an_unregistered_attribute_fails_the_task_and_stores_nothing(
    client: Client,
) -> None:
    from tests.apps.visibility import UpsertsUnregistered

    async with Worker(
        client, task_queue=QUEUE, workflows=[UpsertsUnregistered], activities=[record]
    ):
        h = await client.start_workflow(UpsertsUnregistered, id="late", task_queue=QUEUE)

        async def failed_task() -> list[dict[str, Any]]:
            return [e for e in await h.history() if e["event_type"] == "WorkflowTaskFailed"]

        failures = await eventually(failed_task, timeout=20, what="the upsert's task failed")
        assert "LateAttr" in str(failures[0]["attributes"])
        kinds = [e["event_type"] for e in await h.history()]
        assert "UpsertWorkflowSearchAttributes" not in kinds
        assert "ActivityTaskScheduled" not in kinds  # nothing of that task was stored
        # registering it lets the retried task through
        await client.add_search_attribute("LateAttr", "Keyword")
        assert await h.result(timeout=30) == "done"
    assert await ids(client, "LateAttr = 'v'") == ["late"]


async def test_list_limit_counts_runs_from_zero(client: Client) -> None:
    for n in range(3):
        await client.start_workflow("Listed", id=f"limited-{n}", task_queue="limited")

    async def listed(limit: int) -> int:
        query = "TaskQueue = 'limited'"
        return len([e async for e in client.list_workflows(query, page_size=2, limit=limit)])

    assert [await listed(n) for n in (0, 1, 2, 3, 4)] == [0, 1, 2, 3, 3]
    with pytest.raises(InvalidArgumentError, match="limit"):
        await listed(-1)
