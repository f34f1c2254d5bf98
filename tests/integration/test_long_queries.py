"""A list or count query too long for a URL gets the server's typed refusal,
where the HTTP layer refused it unread and the SDK raised an untyped INTERNAL."""

from __future__ import annotations

import pytest

from worker import Client
from worker.errors import InvalidQueryError, MalformedRequestError

pytestmark = pytest.mark.integration

#: Longer than the server's HTTP layer reads in a request line.
LONG = 70_000


def long_query() -> str:
    return "WorkflowId = '" + "x" * LONG + "'"


async def test_a_count_query_too_long_for_a_url_is_refused_as_a_query(client: Client) -> None:
    with pytest.raises(InvalidQueryError) as err:
        await client.count_workflows(long_query())
    assert f"the limit is {4096}" in err.value.message
    assert f"query is {LONG + 15} characters" in err.value.message


async def test_a_list_query_too_long_for_a_url_is_refused_as_a_query(client: Client) -> None:
    with pytest.raises(InvalidQueryError) as err:
        [run async for run in client.list_workflows(long_query())]
    assert "the limit is 4096" in err.value.message


async def test_a_request_the_http_layer_refuses_unread_is_a_typed_bad_request(
    client: Client,
) -> None:
    with pytest.raises(MalformedRequestError) as err:
        [run async for run in client.list_workflows(workflow_id_prefix="p" * LONG)]
    assert "refused the request unread (400" in err.value.message
