"""The fixed list filters (the SDK's ``status=``, the API's ``status``) take
the status names a query takes, Temporal's among them."""

from __future__ import annotations

import asyncio
import os
import sys

import pytest

from tests.conftest import Region
from tests.helpers import baton_json
from worker import Client
from worker.errors import InvalidArgumentError

pytestmark = pytest.mark.integration


async def test_a_status_filter_takes_the_names_a_query_takes(
    client: Client, region: Region
) -> None:
    await client.start_workflow("T", id="on", task_queue="filters")
    await client.start_workflow("T", id="off", task_queue="filters")
    await client.get_workflow_handle("off").terminate("done")
    for status, expected in [
        ("running", ["on"]),
        ("Running", ["on"]),  # Temporal's name, as `ExecutionStatus = 'Running'` takes it
        ("RUNNING", ["on"]),
        ("Terminated", ["off"]),
        ("TimedOut", []),
        ("timed-out", []),
        ("ContinuedAsNew", []),
    ]:
        got = [e.workflow_id async for e in client.list_workflows(status=status)]
        assert got == expected, status
    for bad in ("", "closed", "Runnin"):
        with pytest.raises(InvalidArgumentError, match="unknown status"):
            [e async for e in client.list_workflows(status=bad)]
    # Temporal's enum numbers and names, and a time as Unix nanoseconds
    assert await client.count_workflows("ExecutionStatus = 5") == 1
    assert await client.count_workflows("ExecutionStatus IN (1, 'Terminated')") == 2
    assert (
        await client.count_workflows("ExecutionStatus = 'WORKFLOW_EXECUTION_STATUS_RUNNING'") == 1
    )
    assert await client.count_workflows("StartTime > 0 AND CloseTime > 1") == 1
    code, out, err = await baton_json(
        region.config_path, "workflow", "list", "--status", "Terminated"
    )
    assert code == 0 and [r["workflow_id"] for r in out] == ["off"], (out, err)


async def test_system_workflows_are_listed_and_counted_when_asked_for(
    client: Client, region: Region
) -> None:
    """As the API's include_system: the SDK and the CLI ask for it too."""
    await client.start_workflow("T", id="mine", task_queue="filters")
    await client.start_batch("WorkflowId = 'none'", "terminate", reason="r", job_id="job")
    assert [e.workflow_id async for e in client.list_workflows()] == ["mine"]
    listed = {e.workflow_id async for e in client.list_workflows(include_system=True)}
    assert listed == {"mine", "batch/job"}
    assert await client.count_workflows() == 1
    assert await client.count_workflows(include_system=True) == 2
    grouped = await client.count_workflows(group_by="WorkflowType", include_system=True)
    assert {g.value for g in grouped.groups} == {"T", "baton.batch"}
    code, out, err = await baton_json(region.config_path, "workflow", "list", "--include-system")
    assert code == 0 and {r["workflow_id"] for r in out} == {"mine", "batch/job"}, (out, err)
    code, out, err = await baton_json(region.config_path, "workflow", "count", "--include-system")
    assert code == 0 and out["count"] == 2, (out, err)


async def test_a_text_match_takes_any_of_its_words(client: Client) -> None:
    """As Temporal's stores match a Text: its SQL ones join the words with |,
    Elasticsearch's match query ORs them."""
    await client.add_search_attribute("Notes", "Text")
    notes = ["late delivery", "first order shipped", "order late", "nothing here"]
    for i, text in enumerate(notes):
        await client.start_workflow(
            "T", id=f"t-{i}", task_queue="filters", search_attributes={"Notes": text}
        )

    async def ids(query: str) -> list[str]:
        return sorted([e.workflow_id async for e in client.list_workflows(query)])

    assert await ids("Notes = 'late'") == ["t-0", "t-2"]
    assert await ids("Notes = 'late delivery'") == ["t-0", "t-2"]
    assert await ids("Notes = 'Shipped  DELIVERY'") == ["t-0", "t-1"]
    assert await ids("Notes != 'late delivery'") == ["t-1", "t-3"]
    assert await ids("Notes = 'late !!'") == ["t-0", "t-2"]
    assert await client.count_workflows("Notes = 'order nope'") == 2


async def test_not_starts_with_lists_the_runs_starts_with_leaves_out(client: Client) -> None:
    await client.add_search_attribute("Team", "Keyword")
    for wid, team in (("pay-1", "billing"), ("pay-2", None), ("ship-1", "bikes")):
        attrs = {"Team": team} if team else {}
        await client.start_workflow("T", id=wid, task_queue="filters", search_attributes=attrs)

    async def ids(query: str) -> list[str]:
        return sorted([e.workflow_id async for e in client.list_workflows(query)])

    assert await ids("WorkflowId NOT STARTS_WITH 'pay-'") == ["ship-1"]
    assert await ids("WorkflowId not starts_with 'ship'") == ["pay-1", "pay-2"]
    # a run without the attribute is not listed, as NOT IN leaves it out
    assert await ids("Team NOT STARTS_WITH 'bil'") == ["ship-1"]
    assert await client.count_workflows("WorkflowId NOT STARTS_WITH 'x'") == 3


async def test_a_count_grouped_in_its_query_names_the_column_as_group_by_does(
    client: Client, region: Region
) -> None:
    await client.start_workflow("T", id="g-1", task_queue="filters")
    proc = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "ops.cli", "--config", str(region.config_path)),
        *("workflow", "count", "--query", "WorkflowType = 'T' group by `TaskQueue`"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "COLUMNS": "120"},
    )
    out, err = await proc.communicate()
    assert proc.returncode == 0, err
    header = next(line for line in out.decode().splitlines() if "runs" in line)
    assert "TaskQueue" in header and "value" not in header, out.decode()


async def test_not_reads_as_the_negated_operator_for_runs_without_the_attribute(
    client: Client,
) -> None:
    """``NOT X = v`` lists what ``X != v`` lists (De Morgan over AND and OR), so
    a run without X is listed, or not, alike however the condition is written."""
    await client.add_search_attribute("Grp", "Keyword")
    await client.add_search_attribute("Size", "Int")
    await client.add_search_attribute("Labels", "KeywordList")
    runs = {
        "n-a": {"Grp": "a", "Size": 1, "Labels": ["x"]},
        "n-b": {"Grp": "b", "Size": 5, "Labels": ["y"]},
        "n-none": {},
    }
    for wid, attrs in runs.items():
        await client.start_workflow("T", id=wid, task_queue="filters", search_attributes=attrs)

    async def ids(query: str) -> list[str]:
        return sorted([e.workflow_id async for e in client.list_workflows(query)])

    pairs = [
        ("NOT Grp = 'a'", "Grp != 'a'", ["n-b"]),
        ("NOT Grp != 'a'", "Grp = 'a'", ["n-a"]),
        ("NOT Size < 5", "Size >= 5", ["n-b"]),
        ("NOT Grp IN ('a')", "Grp NOT IN ('a')", ["n-b"]),
        ("NOT Size BETWEEN 0 AND 2", "Size NOT BETWEEN 0 AND 2", ["n-b"]),
        ("NOT Grp STARTS_WITH 'a'", "Grp NOT STARTS_WITH 'a'", ["n-b"]),
        ("NOT Grp IS NULL", "Grp IS NOT NULL", ["n-a", "n-b"]),
        ("NOT (Grp = 'a' OR Size = 5)", "Grp != 'a' AND Size != 5", []),
        ("NOT (Grp = 'a' AND Size = 1)", "Grp != 'a' OR Size != 1", ["n-b"]),
        # a KeywordList without the value (or without the list) holds none of it
        ("NOT Labels = 'x'", "Labels != 'x'", ["n-b", "n-none"]),
        ("NOT NOT Grp = 'a'", "Grp = 'a'", ["n-a"]),
    ]
    for negated, explicit, expected in pairs:
        got = await ids(f"WorkflowId STARTS_WITH 'n-' AND {negated}")
        assert got == await ids(f"WorkflowId STARTS_WITH 'n-' AND ({explicit})"), negated
        assert got == expected, negated
        count = await client.count_workflows(f"WorkflowId STARTS_WITH 'n-' AND {negated}")
        assert count == len(expected), negated
