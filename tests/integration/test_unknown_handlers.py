"""A query or an update of a name the workflow has no handler for fails the
same way: a non-retryable failure of type ``UnknownQuery`` / ``UnknownUpdate``
naming the handlers the workflow has, with no worker stack to wade through
(as Temporal's are both "handler expected but not found" errors)."""

from __future__ import annotations

import pytest

from tests.conftest import Region
from tests.helpers import baton_json
from worker import (
    ApplicationError,
    Client,
    QueryFailedError,
    UpdateRejectedError,
    Worker,
    workflow,
)

pytestmark = pytest.mark.integration
QUEUE = "unknown-handlers"


@workflow.defn
class Counter:
    def __init__(self) -> None:
        self.n = 0

    @workflow.run
    async def run(self) -> None:
        await workflow.wait_condition(lambda: False)

    @workflow.query
    def count(self) -> int:
        return self.n

    @workflow.update
    def bump(self) -> int:
        self.n += 1
        return self.n


async def test_unknown_query_and_update_fail_alike(region: Region, client: Client) -> None:
    async with Worker(client, task_queue=QUEUE, workflows=[Counter]):
        h = await client.start_workflow(Counter, id="counter", task_queue=QUEUE)
        with pytest.raises(QueryFailedError) as q:
            await h.query("nope")
        with pytest.raises(UpdateRejectedError) as u:
            await h.update("nope")
        failures = {"query": q.value.details["failure"], "update": u.value.details["failure"]}
        assert failures["query"]["type"] == "UnknownQuery"
        assert failures["update"]["type"] == "UnknownUpdate"  # as it always was
        for kind, failure in failures.items():
            assert failure["non_retryable"] is True, kind
            assert failure["stack_trace"] == "", kind
            assert f"unknown {kind} 'nope' for workflow Counter" in failure["message"]
        assert "known queries: count" in failures["query"]["message"]
        assert "known updates: bump" in failures["update"]["message"]
        for err in (q.value, u.value):
            assert isinstance(err.__cause__, ApplicationError)
            assert err.__cause__.non_retryable
        assert q.value.__cause__.type == "UnknownQuery"  # type: ignore[union-attr]
        assert u.value.__cause__.type == "UnknownUpdate"  # type: ignore[union-attr]

        for kind, code in (("query", "QUERY_FAILED"), ("update", "UPDATE_REJECTED")):
            rc, doc, _ = await baton_json(region.config_path, "workflow", kind, h.id, "nope")
            assert rc == 1
            assert doc["error"]["code"] == code
            assert doc["error"]["details"]["failure"]["type"] == f"Unknown{kind.title()}"
        # the workflow is unharmed
        assert await h.update(Counter.bump) == 1
        assert await h.query(Counter.count) == 1
        await h.terminate("done")
