"""``baton workflow execute``: start and wait for the result in one command,
as Temporal's CLI ``workflow execute``; a failed run exits non-zero with its
failure, a wait past ``--timeout`` says how to wait on."""

from __future__ import annotations

import pytest

from tests.conftest import Region
from tests.helpers import baton_json
from worker import ApplicationError, Client, Worker, workflow

pytestmark = pytest.mark.integration
QUEUE = "cli-execute"


@workflow.defn
class Greet:
    @workflow.run
    async def run(self, name: str) -> str:
        if name == "nobody":
            raise ApplicationError("no one to greet", type="NoOne")
        if name == "later":
            await workflow.wait_condition(lambda: False)
        return f"hello {name}"


async def test_execute_starts_and_prints_the_result(region: Region, client: Client) -> None:
    base = ("workflow", "execute", "--type", "Greet", "--task-queue", QUEUE)
    async with Worker(client, task_queue=QUEUE, workflows=[Greet]):
        code, out, err = await baton_json(region.config_path, *base, "--id", "g1", "-i", '"ada"')
        assert code == 0, err
        assert out["result"] == "hello ada"
        assert out["status"] == "completed"
        assert out["workflow_id"] == "g1" and out["result_run_id"] == out["run_id"]
        code, out, err = await baton_json(region.config_path, *base, "--id", "g2", "-i", '"nobody"')
        assert code != 0
        assert "no one to greet" in str(out) + err
        code, out, err = await baton_json(
            region.config_path, *base, "--id", "g3", "-i", '"later"', "--timeout", "1"
        )
        assert code != 0
        assert "baton workflow result g3" in str(out) + err
    # the run goes on after the command gave up waiting
    assert (await client.get_workflow_handle("g3").describe())["execution"]["status"] == "running"
