"""Paging by hand through the SDK, as Temporal's list iterator allows: a page
at a time, and a token to go on from in a later call."""

from __future__ import annotations

import pytest

from worker import Client
from worker.errors import InvalidArgumentError

pytestmark = pytest.mark.integration


async def test_a_list_goes_on_from_the_token_a_page_gave(client: Client) -> None:
    for i in range(7):
        await client.start_workflow("T", id=f"r-{i}", task_queue="pages")
    newest_first = [f"r-{i}" for i in reversed(range(7))]
    assert [e.workflow_id async for e in client.list_workflows(page_size=3)] == newest_first

    pages = client.list_workflows(page_size=3)
    await pages.fetch_next_page()
    assert pages.current_page is not None
    assert [e.workflow_id for e in pages.current_page] == newest_first[:3]
    token = pages.next_page_token
    assert token
    # a later call goes on where the page ended (the token as Temporal's bytes too)
    for given in (token, token.encode()):
        rest = client.list_workflows(page_size=3, next_page_token=given)
        assert [e.workflow_id async for e in rest] == newest_first[3:]
        assert rest.next_page_token is None
    await pages.fetch_next_page(page_size=10)
    assert [e.workflow_id for e in pages.current_page] == newest_first[3:]
    assert pages.next_page_token is None
    # limit counts from where the call starts
    limited = client.list_workflows(page_size=2, limit=3, next_page_token=token)
    assert [e.workflow_id async for e in limited] == newest_first[3:6]
    # a token belongs to its query
    with pytest.raises(InvalidArgumentError, match="another query"):
        [e async for e in client.list_workflows("WorkflowType = 'T'", next_page_token=token)]
