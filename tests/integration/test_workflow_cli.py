"""`baton workflow signal|query|update|result` through the CLI (a subprocess, JSON output)."""

from __future__ import annotations

import asyncio
import sys
import time
from typing import Any

import pytest

from tests.apps.workflows import Chain, Counter, step
from tests.conftest import Region
from tests.helpers import baton_json
from worker import Client, Worker
from worker.errors import TaskNotFoundError

pytestmark = pytest.mark.integration
QUEUE = "workflow-cli"


async def baton(region: Region, *args: str) -> tuple[int, Any, str]:
    return await baton_json(region.config_path, *args)


async def baton_text(region: Region, *args: str) -> tuple[int, str, str]:
    """``baton ARGS --output table``: (exit code, stdout, stderr)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        *("-m", "ops.cli", "--config", str(region.config_path), *args, "--output", "table"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    return int(proc.returncode or 0), out.decode(), err.decode()


async def test_signal_query_and_update_from_the_cli(client: Client, region: Region) -> None:
    async with Worker(client, task_queue=QUEUE, workflows=[Counter]):
        started = await client.start_workflow(Counter, id="cli-counter", task_queue=QUEUE)

        code, out, err = await baton(
            region, "workflow", "update", "cli-counter", "add", "--input", "2"
        )
        assert code == 0, err
        assert out["result"] == 2
        # the answer names the run that took the update, as signal's does
        assert (out["workflow_id"], out["run_id"]) == ("cli-counter", started.run_id), out
        made = out["update_id"]
        assert isinstance(made, str) and made, "the answer does not name the update it sent"

        args = ("workflow", "update", "cli-counter", "add", "--input", "5", "--update-id", "u-1")
        code, out, err = await baton(region, *args)
        assert code == 0 and (out["update_id"], out["result"]) == ("u-1", 7), err
        code, out, err = await baton(region, *args)  # the same id: the same update, not another
        assert code == 0 and (out["update_id"], out["result"]) == ("u-1", 7), err
        assert out["run_id"] == started.run_id, out

        code, out, err = await baton(region, "workflow", "query", "cli-counter", "current")
        assert code == 0 and out["result"] == 7, err

        code, out, err = await baton(
            region, "workflow", "update", "cli-counter", "add", "--input", "-1"
        )
        assert code == 1 and out["error"]["code"] == "UPDATE_REJECTED", err

        code, _, err = await baton(region, "workflow", "signal", "cli-counter", "finish")
        assert code == 0, err
        code, out, err = await baton(region, "workflow", "result", "cli-counter")
        assert code == 0 and out["result"] == 7, err


async def test_start_options_and_signal_with_start_from_the_cli(
    client: Client, region: Region
) -> None:
    code, out, err = await baton(
        region,
        "workflow",
        "start",
        *("-t", "Counter", "-q", QUEUE, "--id", "cli-opts"),
        *("--memo", '{"owner": "ops", "tier": 2}', "--run-timeout", "600"),
        *("--task-timeout", "5"),
    )
    assert code == 0, err
    # the answer names the request id drawn, to retry the start with
    drawn = out["request_id"]
    assert isinstance(drawn, str) and drawn, out
    code, again, err = await baton(
        region,
        "workflow",
        "start",
        *("-t", "Counter", "-q", QUEUE, "--id", "cli-opts"),
        *("--request-id", drawn),
    )
    assert code == 0 and not again["started"] and again["run_id"] == out["run_id"], (again, err)
    h = client.get_workflow_handle("cli-opts")
    assert (await h.describe())["execution"]["memo"] == {"owner": "ops", "tier": 2}
    started = (await h.history())[0]["attributes"]
    assert (started["run_timeout_s"], started["task_timeout_s"]) == (600, 5)

    sws = ("workflow", "signal-with-start", "-t", "Counter", "-q", QUEUE, "--id", "cli-sws")
    code, out, err = await baton(region, *sws, "--signal", "finish", "--memo", '{"by": "cli"}')
    assert code == 0 and out["signal"] == "finish", err
    assert isinstance(out["request_id"], str) and out["request_id"], out
    # the answer says whether it started a run or signalled the running one
    assert out["started"] is True, out
    first_run = out["run_id"]
    code, out, err = await baton(region, *sws, "--signal", "noop")
    assert code == 0 and out["started"] is False and out["run_id"] == first_run, (out, err)
    code, text, err = await baton_text(region, *sws, "--signal", "noop")
    assert code == 0 and f"nothing started: signalled run {first_run}" in text, (text, err)
    async with Worker(client, task_queue=QUEUE, workflows=[Counter]):
        sh = client.get_workflow_handle("cli-sws")
        assert await sh.result(timeout=20) == 0  # started, and the signal ended it
        assert (await sh.describe())["execution"]["memo"] == {"by": "cli"}
        # the run closed: a rejected duplicate is refused, and nothing is stored
        code, out, err = await baton(
            region, *sws, "--signal", "finish", "--id-reuse-policy", "reject_duplicate"
        )
        assert code == 1 and out["error"]["code"] == "WORKFLOW_ALREADY_STARTED", err
        for bad in (("--memo", "[1]"), ("--run-timeout", "0"), ("--signal-input", "{x")):
            code, out, err = await baton(region, *sws, "--signal", "finish", *bad)
            assert code != 0, (bad, out, err)
        assert len([r async for r in client.list_workflows("WorkflowId = 'cli-sws'")]) == 1
        await h.signal("finish")
        assert await h.result(timeout=20) == 0


async def test_signal_cancel_and_terminate_take_a_run_and_a_request_id(
    client: Client, region: Region
) -> None:
    first = await client.start_workflow(Counter, id="cli-runs", task_queue=QUEUE)
    await first.terminate("make room")
    second = await client.start_workflow(Counter, id="cli-runs", task_queue=QUEUE)
    # the first run is closed: a signal named to it is refused, not sent to the new run
    code, out, err = await baton(
        region, "workflow", "signal", "cli-runs", "finish", "--run-id", first.run_id
    )
    assert code == 1 and out["error"]["code"] == "WORKFLOW_NOT_RUNNING", err
    for _ in range(2):  # one request id: one signal, however often it is sent
        code, out, err = await baton(
            region, "workflow", "signal", "cli-runs", "finish", "--request-id", "sig-1"
        )
        assert code == 0, err
        # the answer names the run the server signaled, as pause and reset do
        assert (out["workflow_id"], out["run_id"]) == ("cli-runs", second.run_id), out
    # pause and unpause take a run as the others do: a closed one refuses
    pause = ("workflow", "pause", "cli-runs", "--reason", "look")
    code, out, err = await baton(region, *pause, "--run-id", first.run_id)
    assert code == 1 and out["error"]["code"] == "WORKFLOW_NOT_RUNNING", (out, err)
    for verb in (pause, ("workflow", "unpause", "cli-runs")):
        code, out, err = await baton(region, *verb, "--run-id", second.run_id)
        assert code == 0 and out["run_id"] == second.run_id and out["changed"], (out, err)
    # and so does update-versioning, with a request id
    override = ("workflow", "update-versioning", "cli-runs", "--unset")
    code, out, err = await baton(region, *override, "--run-id", first.run_id)
    assert code == 1 and out["error"]["code"] == "WORKFLOW_NOT_RUNNING", (out, err)
    code, out, err = await baton(
        region, *override, "--run-id", second.run_id, "--request-id", "override-1"
    )
    assert code == 0 and out["run_id"] == second.run_id, (out, err)
    for verb in ("cancel", "terminate"):
        code, out, err = await baton(
            region, "workflow", verb, "cli-runs", "--reason", "done", "--request-id", f"{verb}-1"
        )
        assert code == 0, err
        assert (out["workflow_id"], out["run_id"]) == ("cli-runs", second.run_id), out
    # a run id that is not one is refused before anything is sent, saying
    # what to pass: a usage error (exit 2), as every value the CLI refuses
    for verb in (("terminate",), ("signal", "finish"), ("describe",), ("history",)):
        code, out, err = await baton(region, "workflow", *verb, "cli-runs", "--run-id", "nope")
        assert code == 2 and out["error"]["code"] == "INVALID_ARGUMENT", (verb, out, err)
        assert "leave it out for the workflow's current run" in out["error"]["message"], out
    # a workflow or run not there is refused saying where to look
    for args in (("signal", "no-such", "finish"), ("describe", "no-such")):
        code, out, err = await baton(region, "workflow", *args)
        assert code == 1 and out["error"]["code"] == "WORKFLOW_NOT_FOUND", (args, out, err)
        assert "`baton workflow list` shows" in out["error"]["message"], out
    # the line output names the run too
    code, text, err = await baton_text(
        region, "workflow", "cancel", "cli-runs", "--request-id", "cancel-1"
    )
    assert code == 0 and second.run_id in text, (text, err)
    kinds = [e["event_type"] for e in await client.get_workflow_handle("cli-runs").history()]
    assert kinds.count("WorkflowExecutionSignaled") == 1
    assert kinds.count("WorkflowExecutionCancelRequested") == 1
    assert kinds[-1] == "WorkflowExecutionTerminated"


async def test_a_start_retried_with_its_request_id_says_that_nothing_started(
    client: Client, region: Region
) -> None:
    start = ("workflow", "start", "-t", "Counter", "-q", QUEUE, "--id", "cli-retried")
    code, first, err = await baton(region, *start, "--request-id", "req-1")
    assert code == 0 and first["started"] is True, err
    # the operator's first attempt timed out on their side; they run it again
    code, again, err = await baton(region, *start, "--request-id", "req-1")
    assert code == 0, err
    assert (again["started"], again["run_id"]) == (False, first["run_id"])
    await client.get_workflow_handle("cli-retried").terminate("done")
    code, out, err = await baton(region, *start)  # a new request: a new run
    assert code == 0 and out["started"] is True and out["run_id"] != first["run_id"], err
    await client.get_workflow_handle("cli-retried").terminate("done")


async def test_query_and_update_take_a_run(client: Client, region: Region) -> None:
    async with Worker(client, task_queue=QUEUE, workflows=[Counter]):
        first = await client.start_workflow(Counter, id="cli-run-q", task_queue=QUEUE)
        assert await first.update("add", 3) == 3
        await first.terminate("make room")
        second = await client.start_workflow(Counter, id="cli-run-q", task_queue=QUEUE)
        assert await second.update("add", 1) == 1
        # a closed run still answers a query named to it; the latest run answers by default
        code, out, err = await baton(
            region, "workflow", "query", "cli-run-q", "current", "--run-id", first.run_id
        )
        assert code == 0 and out["result"] == 3, err
        code, out, err = await baton(region, "workflow", "query", "cli-run-q", "current")
        assert code == 0 and out["result"] == 1, err
        # an update named to the closed run is refused, not sent to the new one
        args = ("workflow", "update", "cli-run-q", "add", "--input", "5")
        code, out, err = await baton(region, *args, "--run-id", first.run_id)
        assert code == 1 and out["error"]["code"] == "WORKFLOW_NOT_RUNNING", err
        code, out, err = await baton(region, *args, "--run-id", second.run_id)
        assert code == 0 and out["result"] == 6, err
        await second.terminate("done")


async def test_query_and_update_give_up_after_their_timeout(client: Client, region: Region) -> None:
    # no worker polls the queue: neither is ever answered
    h = await client.start_workflow(Counter, id="cli-timeout", task_queue=QUEUE)
    for verb, name, code_name in (
        ("query", "current", "QUERY_TIMED_OUT"),
        ("update", "add", "UPDATE_TIMED_OUT"),
    ):
        args = ("workflow", verb, "cli-timeout", name, "--timeout", "1")
        began = time.monotonic()
        code, out, err = await baton(region, *args)
        took = time.monotonic() - began
        assert code == 1 and out["error"]["code"] == code_name, (out, err)
        # the server waited the second asked, not the default 10 s (query) or 30 s (update)
        assert "within 1.0s" in out["error"]["message"], out
        assert took < 25, took
        code, stdout, stderr = await baton_plain(region, *args)
        assert code == 1 and not stdout and f"error [{code_name}]" in stderr, (stdout, stderr)
        # a timeout of 0 is a usage error, before anything is sent
        code, out, err = await baton(
            region, "workflow", verb, "cli-timeout", name, "--timeout", "0"
        )
        assert code == 2 and out["error"]["code"] == "USAGE_ERROR", (out, err)
    code, out, err = await baton(region, "workflow", "result", "cli-timeout", "--timeout", "1")
    assert code == 1 and out["error"]["code"] == "TIMEOUT", (out, err)
    assert "after 1 s" in out["error"]["message"] and "--timeout" in out["error"]["message"], out
    await h.terminate("done")


async def baton_plain(region: Region, *args: str) -> tuple[int, str, str]:
    """``baton ARGS`` with its table output: (exit code, stdout, stderr)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        *("-m", "ops.cli", "--config", str(region.config_path), *args),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    return int(proc.returncode or 0), out.decode(), err.decode()


async def test_the_id_reuse_policy_takes_hyphens_and_names_its_values(
    client: Client, region: Region
) -> None:
    start = ("workflow", "start", "-t", "Counter", "-q", QUEUE, "--id", "cli-reuse")
    code, first, err = await baton(region, *start)
    assert code == 0, err
    # the running run is ended by the start that says so, however it is spelled
    code, second, err = await baton(region, *start, "--id-reuse-policy", "terminate-if-running")
    assert code == 0 and second["run_id"] != first["run_id"], err
    await client.get_workflow_handle("cli-reuse").terminate("closed")
    for spelling in ("reject-duplicate", "reject_duplicate", "REJECT-DUPLICATE", "RejectDuplicate"):
        code, out, err = await baton(region, *start, "--id-reuse-policy", spelling)
        assert code == 1 and out["error"]["code"] == "WORKFLOW_ALREADY_STARTED", (spelling, err)
    code, out, err = await baton(region, *start, "--id-reuse-policy", "reject")
    assert code == 2 and out["error"]["code"] == "USAGE_ERROR", err
    message = out["error"]["message"]
    for value in ("allow-duplicate", "allow-duplicate-failed-only", "reject-duplicate"):
        assert value in message, message
    runs = [r async for r in client.list_workflows("WorkflowId = 'cli-reuse'")]
    assert len(runs) == 2, "a refused start started a run"


async def test_history_names_the_run_it_shows(client: Client, region: Region) -> None:
    first = await client.start_workflow(Counter, id="cli-history", task_queue=QUEUE)
    await first.terminate("make room")
    second = await client.start_workflow(Counter, id="cli-history", task_queue=QUEUE)
    code, out, err = await baton(region, "workflow", "history", "cli-history")
    assert code == 0 and out["run_id"] == second.run_id, (out and out.get("run_id"), err)
    assert out["events"][0]["event_type"] == "WorkflowExecutionStarted"
    assert len(out["events"]) == len(await second.history())
    code, out, err = await baton(
        region, "workflow", "history", "cli-history", "--run-id", first.run_id
    )
    assert code == 0 and out["run_id"] == first.run_id, err
    assert out["events"][-1]["event_type"] == "WorkflowExecutionTerminated"
    code, stdout, stderr = await baton_plain(region, "workflow", "history", "cli-history")
    assert code == 0 and second.run_id in stdout, stderr
    await second.terminate("done")


async def test_list_takes_a_status_with_hyphens_and_says_when_nothing_matches(
    client: Client, region: Region
) -> None:
    h = await client.start_workflow(Counter, id="cli-status", task_queue=QUEUE)
    await h.terminate("done")
    for spelling in ("terminated", "Terminated", "TERMINATED"):
        code, out, err = await baton(region, "workflow", "list", "--status", spelling)
        assert code == 0 and [r["workflow_id"] for r in out] == ["cli-status"], (spelling, err)
    for spelling in ("timed-out", "timed_out", "continued-as-new"):
        code, out, err = await baton(region, "workflow", "list", "--status", spelling)
        assert (code, out) == (0, []), (spelling, out, err)
    code, stdout, stderr = await baton_plain(region, "workflow", "list", "--status", "timed-out")
    assert code == 0 and "no runs match" in stdout, (stdout, stderr)
    code, out, err = await baton(region, "workflow", "list", "--status", "done")
    assert code == 2 and out["error"]["code"] == "USAGE_ERROR", err
    assert "continued-as-new" in out["error"]["message"], out


async def test_activity_pause_unpause_and_reset_take_a_run(client: Client, region: Region) -> None:
    """Regression: they took no --run-id and could act only on the current run."""
    first = await client.start_workflow(Counter, id="cli-act-runs", task_queue=QUEUE)
    await first.terminate("make room")
    await client.start_workflow(Counter, id="cli-act-runs", task_queue=QUEUE)
    before = len(await client.get_workflow_handle("cli-act-runs").history())
    for verb in ("pause", "unpause", "reset"):
        act = ("activity", verb, "cli-act-runs", "1")
        # the first run is closed: refused, not sent to the current run
        code, out, err = await baton(region, *act, "--run-id", first.run_id)
        assert code == 1 and out["error"]["code"] == "WORKFLOW_NOT_RUNNING", (verb, out, err)
        code, out, err = await baton(region, *act, "--run-id", "")
        assert code == 2 and "is empty: give an id" in out["error"]["message"], (verb, out)
    assert len(await client.get_workflow_handle("cli-act-runs").history()) == before


async def test_an_activity_the_run_does_not_have_is_not_found(
    client: Client, region: Region
) -> None:
    """Regression: pausing (unpausing, resetting) an activity id the run does not
    have answered INVALID_ARGUMENT, where Temporal answers not found."""
    handle = await client.start_workflow(Counter, id="cli-act-missing", task_queue=QUEUE)
    before = len(await handle.history())
    for verb in ("pause", "unpause", "reset"):
        code, out, err = await baton(region, "activity", verb, "cli-act-missing", "nope")
        assert code == 1 and out["error"]["code"] == "TASK_NOT_FOUND", (verb, out, err)
        assert "no pending activity 'nope'" in out["error"]["message"], out
        with pytest.raises(TaskNotFoundError):
            await getattr(handle, f"{verb}_activity")("nope", "why")
    assert len(await handle.history()) == before


async def test_a_json_error_carries_the_details_the_server_gave(
    client: Client, region: Region
) -> None:
    """Regression: with -o json an error was its code and message only, so a
    script could not read the run already running, the kind of request that
    used a request id, or the failure a workflow closed with."""
    start = ("workflow", "start", "-t", "Counter", "-q", QUEUE, "--id", "cli-details")
    code, first, err = await baton(region, *start)
    assert code == 0, err
    code, out, err = await baton(region, *start)
    assert code == 1 and out["error"]["code"] == "WORKFLOW_ALREADY_STARTED", (out, err)
    assert out["error"]["details"]["run_id"] == first["run_id"], out

    signal = ("workflow", "signal", "cli-details", "noop", "--request-id", "d-1")
    code, out, err = await baton(region, *signal)
    assert code == 0, err
    terminate = ("workflow", "terminate", "cli-details", "--request-id", "d-1")
    code, out, err = await baton(region, *terminate)
    assert code == 1 and out["error"]["code"] == "INVALID_ARGUMENT", (out, err)
    assert out["error"]["details"]["used_by"] == "signal", out

    code, out, err = await baton(
        region, "workflow", "terminate", "cli-details", "--reason", "enough"
    )
    assert code == 0, err
    code, out, err = await baton(region, "workflow", "result", "cli-details")
    assert code == 1 and out["error"]["code"] == "WORKFLOW_TERMINATED", (out, err)
    details = out["error"]["details"]
    assert details["status"] == "terminated" and "enough" in details["failure"]["message"], out
    code, described, err = await baton(region, "workflow", "describe", "cli-details")
    assert code == 0, err
    # the failure as describe (and the API) give it, every key there: it left
    # out those that were null (cause, timeout_type, activity, ...)
    assert details["failure"] == described["failure"], (details, described)

    code, out, err = await baton(region, "workflow", "describe", "cli-nothing")
    assert code == 1 and out["error"]["code"] == "WORKFLOW_NOT_FOUND", (out, err)
    assert set(out["error"]) == {"code", "message"}, out  # no details: none is given


async def test_a_result_names_the_run_that_completed(client: Client, region: Region) -> None:
    """Regression: `workflow result -o json` gave workflow_id, status and
    result, not which run of a continue-as-new chain they came from (signal,
    update, cancel and terminate name the run they acted on)."""
    async with Worker(client, task_queue=QUEUE, workflows=[Chain], activities=[step]):
        first = await client.start_workflow(Chain, 0, 2, id="cli-chain", task_queue=QUEUE)
        code, out, err = await baton(region, "workflow", "result", "cli-chain")
    assert code == 0, err
    last = (await client.get_workflow_handle("cli-chain").describe())["execution"]["run_id"]
    assert out["run_id"] == last != first.run_id, out
    assert (out["status"], out["result"]) == ("completed", "done after 2 continue-as-new runs")
