"""A KeywordList set to the empty list holds no value: IS NULL finds it, as
Temporal reads an empty list (its upsert of [] removes the attribute)."""

from __future__ import annotations

import pytest

from worker import Client

pytestmark = pytest.mark.integration


async def ids(client: Client, query: str) -> set[str]:
    return {e.workflow_id async for e in client.list_workflows(query)}


async def test_an_empty_keyword_list_is_null(client: Client) -> None:
    await client.add_search_attribute("Tags", "KeywordList")
    for wid, attrs in (("none", {}), ("empty", {"Tags": []}), ("eu", {"Tags": ["eu"]})):
        await client.start_workflow(
            "Tagged", id=wid, task_queue="empty-list", search_attributes=attrs
        )
    assert await ids(client, "Tags IS NULL") == {"none", "empty"}
    assert await ids(client, "Tags IS NOT NULL") == {"eu"}
    assert await ids(client, "NOT Tags IS NULL") == {"eu"}
    assert (await client.count_workflows("Tags IS NULL"))["count"] == 2
    assert await ids(client, "Tags = 'eu' OR Tags IS NULL") == {"none", "empty", "eu"}
