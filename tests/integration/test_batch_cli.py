"""`baton batch` and `baton workflow reset` through the CLI (a subprocess, JSON output)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from tests.apps.visibility import Waiter
from tests.conftest import Region
from tests.helpers import baton_json, eventually
from worker import Client

pytestmark = pytest.mark.integration
QUEUE = "batch-cli"


async def baton(region: Region, *args: str) -> tuple[int, Any, str]:
    return await baton_json(region.config_path, *args)


async def test_batch_commands_start_wait_list_describe_stop(client: Client, region: Region) -> None:
    for i in range(12):
        await client.start_workflow(Waiter, id=f"c-{i}", task_queue=QUEUE)
    code, job, err = await baton(
        region,
        "batch",
        "start",
        "--query",
        "WorkflowType = 'Waiter'",
        "--op",
        "terminate",
        "--reason",
        "cli",
        "--rps",
        "100",
        "--job-id",
        "cli-1",
    )
    assert code == 0, err
    assert (job["job_id"], job["state"], job["done"], job["failed"]) == (
        "cli-1",
        "completed",
        12,
        0,
    )
    assert job["started"] is True
    again = ("--query", "WorkflowType = 'Waiter'", "--op", "terminate", "--reason", "cli")
    code, same, err = await baton(region, "batch", "start", *again, "--job-id", "cli-1")
    # the same job again: waited for, it says this start started nothing
    assert code == 0 and same["started"] is False and same["done"] == 12, err
    code, jobs, _ = await baton(region, "batch", "list")
    assert code == 0 and [j["job_id"] for j in jobs] == ["cli-1"]
    code, described, _ = await baton(region, "batch", "describe", "cli-1")
    assert code == 0 and described["done"] == 12 and described["query"] == "WorkflowType = 'Waiter'"
    # list's JSON carries the operation as describe's does, not its one line
    assert jobs[0]["operation"] == described["operation"] == {"kind": "terminate", "params": {}}
    code, stopped, _ = await baton(region, "batch", "stop", "cli-1")
    assert code == 0 and stopped["stop_requested"] is False  # it has ended
    assert stopped["state"] == "completed"  # as describe and list say
    code, failed, err = await baton(region, "batch", "describe", "nope")
    assert code != 0 and failed["error"]["code"] == "BATCH_NOT_FOUND" and "Traceback" not in err
    for bad in ("cli-1/x", "cli-1?x", "cli-1#x", ".."):  # no job has it: never another path
        for verb in ("describe", "stop"):
            code, failed, err = await baton(region, "batch", verb, bad)
            # refused by the CLI before sending: a usage error (exit 2)
            assert code == 2 and failed["error"]["code"] == "INVALID_ARGUMENT", (verb, bad, err)
            assert "is not a batch job id" in failed["error"]["message"]
    for extra in (["--wait"], ["--no-wait"]):  # another job under a used id
        code, failed, err = await baton(
            region,
            "batch",
            "start",
            "--query",
            "WorkflowType = 'Other'",
            "--op",
            "terminate",
            "--reason",
            "cli",
            "--job-id",
            "cli-1",
            *extra,
        )
        assert code == 1 and failed["error"]["code"] == "BATCH_ALREADY_EXISTS", err
        assert "baton batch describe cli-1" in failed["error"]["message"]
    code, failed, _ = await baton(
        region, "batch", "start", "--query", "Nope = 1", "--op", "terminate", "--reason", "x"
    )
    assert code != 0 and failed["error"]["code"] == "INVALID_QUERY"
    code, failed, _ = await baton(
        region, "batch", "start", "--query", "", "--op", "signal", "--reason", "x"
    )
    assert code != 0 and "--signal" in json.dumps(failed)


async def test_workflow_reset_command(client: Client, region: Region) -> None:
    h = await client.start_workflow(Waiter, id="to-reset", task_queue=QUEUE)
    code, failed, _ = await baton(
        region, "workflow", "reset", "to-reset", "--to", "first-workflow-task", "--reason", "x"
    )
    # no workflow task has finished yet: refused, nothing changed
    assert code != 0 and failed["error"]["code"] == "INVALID_ARGUMENT"
    assert (await h.describe())["execution"]["status"] == "running"
    # a run id that is not one is a bad argument the CLI refuses itself: a
    # usage error (exit 2), where the server's refusal made it exit 1
    for verb in (["reset", "--to", "first-workflow-task", "--reason", "x"], ["describe"]):
        code, failed, err = await baton(region, "workflow", *verb, "to-reset", "--run-id", "bogus")
        assert code == 2 and failed["error"]["code"] == "INVALID_ARGUMENT", (verb, failed, err)
        assert "not a UUID" in failed["error"]["message"]
    from worker import Worker

    async with Worker(client, task_queue=QUEUE, workflows=[Waiter]):

        async def task_done() -> bool:
            kinds = [e["event_type"] for e in await h.history()]
            return "WorkflowTaskCompleted" in kinds

        from tests.helpers import eventually

        await eventually(task_done, timeout=20, what="the first workflow task done")
        await h.signal("note", "before")
        reset_cmd = ("workflow", "reset", "to-reset", "--to", "first-workflow-task")
        reset_cmd += ("--reason", "from the CLI", "--request-id", "cli-reset-1")
        code, reset, err = await baton(region, *reset_cmd)
        assert code == 0, err
        assert reset["run_id"] != h.run_id
        # the run the server reset, though none was named
        assert reset["reset_from_run_id"] == h.run_id and reset["reset"] is True
        # the same request again (a retry, naming the point by its short name,
        # which the SDK and the server take too): the same reset, reported the same way
        retry_cmd = tuple("first" if a == "first-workflow-task" else a for a in reset_cmd)
        code, again, err = await baton(region, *retry_cmd)
        assert code == 0, err
        assert again == {**reset, "reset": False}
        await h.signal("note", "stop")
        # the signal after the point came along once; the result follows to the new run
        assert await h.result(timeout=20) == ["before", "stop"]


async def test_signal_batch_and_search_attributes_in_the_short_forms(
    client: Client, region: Region
) -> None:
    from worker import Worker

    code, added, err = await baton(
        region, "namespace", "search-attribute", "add", "Team", "--type", "keyword"
    )
    assert code == 0 and added == {
        "namespace": "default",
        "name": "Team",
        "type": "Keyword",
        "changed": True,
    }, err
    async with Worker(client, task_queue=QUEUE, workflows=[Waiter]):
        for i in range(3):
            await client.start_workflow(
                Waiter, id=f"sig-{i}", task_queue=QUEUE, search_attributes={"Team": "blue"}
            )
        code, job, err = await baton(
            region,
            "batch",
            "start",
            "--query",
            "Team = 'blue'",
            "--op",
            "signal",
            "note",
            "--input",
            '"stop"',
            "--reason",
            "wrap up",
        )
        assert code == 0 and (job["state"], job["done"]) == ("completed", 3), err
        for i in range(3):
            assert await client.get_workflow_handle(f"sig-{i}").result(timeout=20) == ["stop"]
    code, listed, _ = await baton(region, "namespace", "search-attribute", "list")
    assert code == 0 and {"name": "Team", "type": "Keyword", "kind": "custom"} in listed
    code, removed, _ = await baton(
        region, "namespace", "search-attribute", "remove", "--name", "Team"
    )
    assert code == 0 and removed["changed"] is True


async def test_a_waiting_start_exits_1_when_the_job_is_stopped(
    client: Client, region: Region
) -> None:
    # 20 runs at 0.5 a second: a walk of 40 s, which the stop interrupts
    # even on a machine so busy that each `baton` takes seconds to start
    for i in range(20):
        await client.start_workflow(Waiter, id=f"slow-{i}", task_queue=QUEUE)
    waiting = asyncio.create_task(
        baton(
            region,
            "batch",
            "start",
            "--query",
            "WorkflowType = 'Waiter' AND WorkflowId STARTS_WITH 'slow-'",
            "--op",
            "terminate",
            "--reason",
            "slow",
            "--rps",
            "0.5",
            "--job-id",
            "slow-job",
        )
    )

    async def running() -> bool:
        code, job, _ = await baton(region, "batch", "describe", "slow-job")
        return code == 0 and job["state"] == "running"

    await eventually(running, timeout=30, what="the job runs")
    code, _, err = await baton(region, "batch", "stop", "slow-job", "--reason", "enough")
    assert code == 0, err
    code, job, err = await asyncio.wait_for(waiting, 60)
    # the job did not finish its walk: a script that waited must be told
    assert code == 1 and job["state"] == "stopped", (code, job, err)
    assert "ended stopped" in err


@pytest.mark.parametrize(
    ("op_args", "stray"),
    [
        (["--op", "terminate", "--input", '"x"'], "--input"),
        (["--op", "cancel", "--signal", "approve"], "--signal"),
        (["--op", "signal", "approve", "--reapply", "none"], "--reapply"),
        (["--op", "reset", "--override", "pinned"], "--override"),
        (["--op", "unpause", "--to", "first-workflow-task"], "--reset-to"),
        # two names for the signal: neither is taken over the other
        (["--op", "signal", "approve", "--signal", "reject"], "--signal"),
    ],
)
async def test_an_option_of_another_operation_is_refused_and_starts_nothing(
    client: Client, region: Region, op_args: list[str], stray: str
) -> None:
    handle = await client.start_workflow(Waiter, id="stray-1", task_queue=QUEUE)
    code, out, err = await baton(
        region, "batch", "start", "--query", "WorkflowId = 'stray-1'", *op_args, "--reason", "r"
    )
    assert code == 2, (out, err)  # a usage error: nothing was sent
    assert out["error"]["code"] == "INVALID_ARGUMENT", out
    assert stray in out["error"]["message"], out
    code, jobs, err = await baton(region, "batch", "list")
    assert code == 0 and jobs == [], (jobs, err)
    assert (await handle.describe())["execution"]["status"] == "running"


async def test_a_waiting_start_in_json_mode_writes_only_its_document(
    client: Client, region: Region
) -> None:
    """The progress bar is for people: with --output json nothing but the
    job's document is written, on stdout, and stderr stays empty."""
    await client.start_workflow(Waiter, id="quiet-1", task_queue=QUEUE)
    code, job, err = await baton(
        region,
        *("batch", "start", "--query", "WorkflowId = 'quiet-1'", "--op", "terminate"),
        *("--reason", "quiet"),
    )
    assert code == 0, err
    assert job["state"] == "completed" and job["done"] == 1, job
    assert err == ""


async def test_a_start_retried_with_its_request_id_starts_one_job(
    client: Client, region: Region
) -> None:
    """As the other commands that change something: a retried `batch start`
    (its answer lost, a timeout) names the request id it used and acts once."""
    await client.start_workflow(Waiter, id="retried-1", task_queue=QUEUE)
    start = ("batch", "start", "--query", "WorkflowId = 'retried-1'", "--op", "signal", "note")
    start += ("--input", '"once"', "--reason", "r", "--no-wait", "--request-id", "req-1")
    code, first, err = await baton(region, *start)
    assert code == 0 and first["started"] is True, (first, err)
    code, again, err = await baton(region, *start)
    assert code == 0, err
    assert (again["job_id"], again["started"]) == (first["job_id"], False)
    code, jobs, _ = await baton(region, "batch", "list")
    assert code == 0 and [j["job_id"] for j in jobs] == [first["job_id"]]

    async def done() -> dict[str, Any] | None:
        d = await client.describe_batch(first["job_id"])
        return d if d["state"] != "running" else None

    d = await eventually(done, timeout=60, what="the job ended")
    assert (d["state"], d["done"]) == ("completed", 1)
    events = await client.get_workflow_handle("retried-1").history()
    assert [e["event_type"] for e in events].count("WorkflowExecutionSignaled") == 1
    code, out, _ = await baton(region, *start[:-1], "")
    assert code == 2 and out["error"]["code"] == "USAGE_ERROR", out


@pytest.mark.parametrize("rps", ["nan", "NaN", "-nan"])
async def test_a_rate_of_nan_is_a_usage_error(client: Client, region: Region, rps: str) -> None:
    code, out, _ = await baton(
        region, "batch", "start", "--query", "", "--op", "terminate", "--reason", "r", "--rps", rps
    )
    assert code == 2 and out["error"]["code"] == "USAGE_ERROR", out
    assert "--rps" in out["error"]["message"], out
    code, jobs, _ = await baton(region, "batch", "list")
    assert code == 0 and jobs == []
