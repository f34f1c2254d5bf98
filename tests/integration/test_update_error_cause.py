"""A failed or rejected update carries its failure as ``cause``, as Temporal's
``WorkflowUpdateFailedError.cause`` does (the ``ApplicationError`` the handler
or validator raised), beside ``__cause__``; every ``BatonError`` reads its
``__cause__`` so."""

from __future__ import annotations

import pytest

from worker import (
    ApplicationError,
    Client,
    QueryFailedError,
    UpdateFailedError,
    UpdateRejectedError,
    Worker,
    workflow,
)

pytestmark = pytest.mark.integration
QUEUE = "update-error-cause"


@workflow.defn
class Ledger:
    def __init__(self) -> None:
        self.total = 0

    @workflow.run
    async def run(self) -> None:
        await workflow.wait_condition(lambda: False)

    @workflow.update
    def add(self, amount: int) -> int:
        if amount > 100:
            raise ApplicationError("too much", amount, type="Limit")
        self.total += amount
        return self.total

    @add.validator
    def _check(self, amount: int) -> None:
        if amount < 0:
            raise ValueError("negative amount")

    @workflow.query
    def broken(self) -> int:
        raise ApplicationError("cannot say", type="Broken")


async def test_update_and_query_errors_read_their_cause(client: Client) -> None:
    async with Worker(client, task_queue=QUEUE, workflows=[Ledger]):
        h = await client.start_workflow(Ledger, id="ledger", task_queue=QUEUE)
        with pytest.raises(UpdateFailedError) as failed:
            await h.execute_update(Ledger.add, 500)
        with pytest.raises(UpdateRejectedError) as rejected:
            await h.execute_update(Ledger.add, -1)
        with pytest.raises(QueryFailedError) as query:
            await h.query(Ledger.broken)

        cause = failed.value.cause
        assert isinstance(cause, ApplicationError)
        assert cause is failed.value.__cause__
        assert (cause.type, cause.message, cause.details) == ("Limit", "too much", (500,))
        cause = rejected.value.cause
        assert isinstance(cause, ApplicationError)
        assert (cause.type, cause.message) == ("ValueError", "negative amount")
        # a query's failure wraps the handler's (its message names the type)
        assert query.value.cause is query.value.__cause__
        assert isinstance(query.value.cause, ApplicationError)
        assert query.value.cause.message == "ApplicationError: cannot say"
        assert await h.execute_update(Ledger.add, 5) == 5
        await h.terminate("done")
