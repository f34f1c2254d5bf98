"""A schedule list's query is held to a list's rules: one over 4,096 characters
is ``INVALID_QUERY`` naming the position (from the SDK before it is sent, and
from the API), and one within the limit is never refused for the filter the
server adds around it."""

from __future__ import annotations

import httpx
import pytest

from tests.apps.scheduled import Report
from tests.conftest import Region
from tests.integration.test_schedules import definition
from worker import Client
from worker.errors import InvalidQueryError
from worker.wire import MAX_QUERY_CHARS

pytestmark = pytest.mark.integration


def _query_of(length: int) -> str:
    """A valid query of exactly ``length`` characters matching schedule ``kept``."""
    head, tail = "WorkflowId IN ('schedule/kept', '", "')"
    return head + "x" * (length - len(head) - len(tail)) + tail


async def test_a_schedule_list_query_is_held_to_the_list_limit(
    client: Client, region: Region
) -> None:
    """Regression: a query the limit allows was refused once the server wrapped
    it in its own filter (the composed query passed 4,096 characters), and one
    over the limit was INVALID_ARGUMENT from the API, not INVALID_QUERY."""
    await client.create_schedule(
        "kept", await definition(client, Report, {}, cron="0 0 1 1 *"), paused=True
    )
    at_limit = _query_of(MAX_QUERY_CHARS)
    assert len(at_limit) == MAX_QUERY_CHARS
    assert [s["schedule_id"] for s in await client.list_schedules(at_limit)] == ["kept"]

    over = _query_of(MAX_QUERY_CHARS + 1)
    with pytest.raises(InvalidQueryError) as err:
        await client.list_schedules(over)
    assert err.value.details["position"] == MAX_QUERY_CHARS
    async with httpx.AsyncClient() as http:
        res = await http.get(
            f"{region.url}/api/v1/namespaces/default/schedules", params={"query": over}
        )
    assert res.status_code == 400
    error = res.json()["error"]
    assert error["code"] == "INVALID_QUERY", error
    assert error["details"]["position"] == MAX_QUERY_CHARS
