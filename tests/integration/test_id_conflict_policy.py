"""``id_conflict_policy``, as Temporal's: a start beside a running run of its
id fails (the default), answers with that run (``use_existing``: "start it
unless it runs"), or terminates it and starts anew (``terminate_existing``)."""

from __future__ import annotations

import pytest

from tests.conftest import Region
from tests.helpers import baton_json
from worker import Client, Worker, WorkflowIdConflictPolicy, workflow
from worker.errors import InvalidArgumentError, WorkflowAlreadyStartedError

pytestmark = pytest.mark.integration
QUEUE = "id-conflict"


@workflow.defn
class Session:
    def __init__(self) -> None:
        self.events: list[str] = []

    @workflow.run
    async def run(self, user: str) -> list[str]:
        await workflow.wait_condition(lambda: "logout" in self.events)
        return [user, *self.events]

    @workflow.signal
    def event(self, name: str) -> None:
        self.events.append(name)


async def test_a_start_beside_a_running_run_follows_its_conflict_policy(
    client: Client, region: Region
) -> None:
    async with Worker(client, task_queue=QUEUE, workflows=[Session]):
        first = await client.start_workflow(Session, "ann", id="session", task_queue=QUEUE)
        with pytest.raises(WorkflowAlreadyStartedError):
            await client.start_workflow(Session, "ann", id="session", task_queue=QUEUE)

        same = await client.start_workflow(
            Session,
            "bob",  # not used: the running run's input stands
            id="session",
            task_queue=QUEUE,
            id_conflict_policy=WorkflowIdConflictPolicy.USE_EXISTING,
        )
        assert same.run_id == first.run_id
        await same.signal("event", "login")
        code, out, _ = await baton_json(
            region.config_path,
            *("workflow", "start", "--type", "Session", "--task-queue", QUEUE),
            *("--id", "session", "--input", '"cli"', "--id-conflict-policy", "use-existing"),
        )
        assert (code, out["run_id"], out["started"]) == (0, first.run_id, False)
        await same.signal("event", "logout")
        assert await first.result(timeout=20) == ["ann", "login", "logout"]

        # closed: use_existing starts a run as any start does
        again = await client.start_workflow(
            Session,
            "cid",
            id="session",
            task_queue=QUEUE,
            id_conflict_policy="use_existing",  # type: ignore[arg-type]
        )
        assert again.run_id != first.run_id

        replaced = await client.start_workflow(
            Session,
            "dee",
            id="session",
            task_queue=QUEUE,
            id_conflict_policy=WorkflowIdConflictPolicy.TERMINATE_EXISTING,
        )
        assert replaced.run_id != again.run_id
        described = await client.get_workflow_handle("session", run_id=again.run_id).describe()
        assert described["execution"]["status"] == "terminated"
        await replaced.signal("event", "logout")
        assert await replaced.result(timeout=20) == ["dee", "logout"]

        with pytest.raises(InvalidArgumentError, match="id_conflict_policy"):
            await client.start_workflow(
                Session,
                "eve",
                id="session",
                task_queue=QUEUE,
                id_conflict_policy="sometimes",  # type: ignore[arg-type]
            )
        with pytest.raises(InvalidArgumentError, match="id_conflict_policy is for starts only"):
            await client.call(
                "POST",
                "/api/v1/namespaces/default/signal-with-start",
                {
                    "workflow_id": "session",
                    "workflow_type": "Session",
                    "task_queue": QUEUE,
                    "signal_name": "event",
                    "id_conflict_policy": "use_existing",
                },
            )
