"""A blank request or update id is a caller's bug, refused by the SDK, the CLI and
the HTTP API alike: taken for "not given", a retry under a fresh id would act twice."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from tests.apps.workflows import Counter
from tests.conftest import Region
from tests.helpers import baton_json
from worker import Client
from worker.errors import InvalidArgumentError

pytestmark = pytest.mark.integration
QUEUE = "blank-ids"


async def _kinds(client: Client, workflow_id: str) -> list[str]:
    return [e["event_type"] for e in await client.get_workflow_handle(workflow_id).history()]


async def _refused(call: Callable[[], Awaitable[Any]], argument: str) -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        await call()
    message = str(caught.value)
    assert argument in message and "non-empty" in message and "leave" in message, message
    assert caught.value.details["argument"] == argument


@pytest.mark.parametrize("blank", ["", "  "])
async def test_the_sdk_refuses_a_blank_id_before_sending_anything(
    client: Client, blank: str
) -> None:
    h = await client.start_workflow(Counter, id="blank-ids", task_queue=QUEUE)
    before = await _kinds(client, "blank-ids")

    await _refused(
        lambda: client.start_workflow(
            Counter, id="blank-start", task_queue=QUEUE, request_id=blank
        ),
        "request_id",
    )
    await _refused(
        lambda: client.signal_with_start_workflow(
            Counter, id="blank-sws", task_queue=QUEUE, signal="finish", request_id=blank
        ),
        "request_id",
    )
    await _refused(lambda: h.signal("finish", request_id=blank), "request_id")
    await _refused(lambda: h.update("add", 1, update_id=blank, timeout=1), "update_id")
    await _refused(lambda: h.pause("look", request_id=blank), "request_id")
    await _refused(lambda: h.unpause("go", request_id=blank), "request_id")
    await _refused(lambda: h.pause_activity("a", request_id=blank), "request_id")
    await _refused(
        lambda: h.reset(reason="r", to="first-workflow-task", request_id=blank), "request_id"
    )
    await _refused(lambda: h.update_versioning(None, request_id=blank), "request_id")
    await _refused(lambda: h.cancel("stop", request_id=blank), "request_id")
    # a blank run id read as "not given" gave the handle's run's events
    await _refused(lambda: h.history(run_id=blank), "run_id")
    await _refused(lambda: h.terminate("stop", request_id=blank), "request_id")
    definition = await client.schedule_definition(
        workflow=Counter, task_queue=QUEUE, cron="0 0 1 1 *"
    )
    await _refused(
        lambda: client.create_schedule("blank-sched", definition, request_id=blank), "request_id"
    )
    await _refused(
        lambda: client.start_batch(
            "WorkflowId = 'blank-ids'", "terminate", reason="r", request_id=blank
        ),
        "request_id",
    )
    await _refused(lambda: client.create_namespace("blank-ns", request_id=blank), "request_id")

    # nothing was stored
    assert await _kinds(client, "blank-ids") == before
    assert [r.id async for r in client.list_workflows("")] == ["blank-ids"]
    assert await client.list_schedules() == []
    assert await client.list_batches() == []
    assert "blank-ns" not in [n["name"] for n in await client.list_namespaces()]


async def test_the_http_api_refuses_a_blank_id_and_stores_nothing(
    client: Client, region: Region
) -> None:
    await client.start_workflow(Counter, id="blank-http", task_queue=QUEUE)
    before = await _kinds(client, "blank-http")
    wf = "/api/v1/namespaces/default/workflows"
    posts = [
        (
            wf,
            {
                "workflow_id": "blank-http-2",
                "workflow_type": "Counter",
                "task_queue": QUEUE,
                "request_id": "",
            },
        ),
        (f"{wf}/blank-http/signal", {"signal_name": "finish", "request_id": ""}),
        (f"{wf}/blank-http/update", {"name": "add", "update_id": "", "timeout_s": 1}),
        (f"{wf}/blank-http/cancel", {"request_id": ""}),
        (f"{wf}/blank-http/terminate", {"request_id": ""}),
        (f"{wf}/blank-http/pause", {"reason": "r", "request_id": ""}),
    ]
    async with httpx.AsyncClient(base_url=region.url, timeout=10) as http:
        for path, body in posts:
            r = await http.post(path, json=body)
            assert r.status_code == 400, (path, r.status_code, r.text)
            error = r.json()["error"]
            assert error["code"] == "INVALID_ARGUMENT", (path, error)
            assert error["details"]["problems"][0]["field"] in ("request_id", "update_id"), error
    assert await _kinds(client, "blank-http") == before
    assert [r.id async for r in client.list_workflows("")] == ["blank-http"]


@pytest.mark.parametrize(
    "args",
    [
        ("workflow", "pause", "blank-cli", "--reason", "r", "--request-id", ""),
        ("workflow", "unpause", "blank-cli", "--request-id", ""),
        ("activity", "pause", "blank-cli", "a", "--request-id", ""),
        ("workflow", "reset", "blank-cli", "--reason", "r", "--request-id", ""),
        (
            "batch",
            "start",
            "--query",
            "WorkflowId = 'x'",
            "--op",
            "terminate",
            "--reason",
            "r",
            "--job-id",
            "",
        ),
    ],
)
async def test_every_cli_id_option_refuses_a_blank_id(
    region: Region, args: tuple[str, ...]
) -> None:
    code, out, err = await baton_json(region.config_path, *args)
    assert code == 2, (out, err)
    assert "is empty: give an id, or leave the option out" in out["error"]["message"], out


_NO_RUN = ("--run-id", "")
_START = ("workflow", "start", "-t", "Counter", "-q", QUEUE, "--id", "blank-start")


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (("workflow", "start", "-t", "", "-q", QUEUE, "--id", "x"), "'--type' / '-t'"),
        (("workflow", "start", "-t", "Counter", "-q", " ", "--id", "x"), "'--task-queue' / '-q'"),
        (("workflow", "start", "-t", "Counter", "-q", QUEUE, "--id", ""), "'--id'"),
        (
            ("workflow", "signal-with-start", *_START[2:], "--signal", ""),
            "'--signal'",
        ),
        (("workflow", "signal", "", "finish"), "'WORKFLOW_ID'"),
        (("workflow", "signal", "blank-cli", ""), "'NAME'"),
        (("workflow", "query", "blank-cli", ""), "'NAME'"),
        (("workflow", "describe", ""), "'WORKFLOW_ID'"),
        (("activity", "pause", "blank-cli", ""), "'ACTIVITY_ID'"),
        (("activity", "reset", "", "1"), "'WORKFLOW_ID'"),
        (
            (
                "workflow",
                "reset",
                "blank-cli",
                "--reason",
                "r",
                "--to",
                "first-workflow-task",
                *_NO_RUN,
            ),
            "'--run-id'",
        ),
        (("namespace", "describe", ""), "'NAME'"),
        (("namespace", "create", " "), "'NAME'"),
        (("namespace", "add-region", "default", ""), "'REGION'"),
        (("batch", "describe", ""), "'JOB_ID'"),
        (("batch", "stop", " "), "'JOB_ID'"),
        (("batch", "start", "", "--op", "signal", "-q", "WorkflowId = 'x'"), "'[SIGNAL_NAME]'"),
        (("deployment", "describe", ""), "'DEPLOYMENT'"),
        (("deployment", "set-current", "", "1"), "'DEPLOYMENT'"),
        (("schedule", "describe", ""), "'SCHEDULE_ID'"),
        (
            ("schedule", "create", " ", "-t", "Counter", "-q", QUEUE, "--cron", "@daily"),
            "'SCHEDULE_ID'",
        ),
        (
            ("schedule", "update", "", "-t", "Counter", "-q", QUEUE, "--cron", "@daily"),
            "'SCHEDULE_ID'",
        ),
        (("schedule", "pause", "", "--note", "n"), "'SCHEDULE_ID'"),
        (("schedule", "unpause", ""), "'SCHEDULE_ID'"),
        (("schedule", "trigger", ""), "'SCHEDULE_ID'"),
        (
            (
                "schedule",
                "backfill",
                "",
                "--start",
                "2026-01-01T00:00:00Z",
                "--end",
                "2026-01-02T00:00:00Z",
            ),
            "'SCHEDULE_ID'",
        ),
        (("schedule", "delete", ""), "'SCHEDULE_ID'"),
        (
            ("schedule", "create", "s", "-t", "", "-q", QUEUE, "--cron", "@daily"),
            "'--workflow-type' / '-t'",
        ),
        (
            ("schedule", "update", "s", "-t", "Counter", "-q", " ", "--cron", "@daily"),
            "'--task-queue' / '-q'",
        ),
        (
            ("schedule", "create", "s", "-t", "Counter", "-q", QUEUE, "--timezone", ""),
            "'--timezone'",
        ),
    ],
)
async def test_a_cli_option_given_an_empty_value_is_a_usage_error_naming_it(
    client: Client, region: Region, args: tuple[str, ...], option: str
) -> None:
    """Regression: the server's "String should have at least 1 character"
    answered, a typed error that named neither the option nor what it takes."""
    await client.start_workflow(Counter, id="blank-cli", task_queue=QUEUE)
    before = await _kinds(client, "blank-cli")
    code, out, err = await baton_json(region.config_path, *args)
    assert code == 2, (out, err)
    message = out["error"]["message"]
    assert option in message and "is empty: give " in message, message
    assert "at least 1 character" not in message, message
    assert await _kinds(client, "blank-cli") == before
    assert [r.id async for r in client.list_workflows("")] == ["blank-cli"]


@pytest.mark.parametrize(
    ("namespace", "args", "option"),
    [
        ("", ("workflow", "list"), "'--namespace' / '-n'"),
        ("default", ("--region", "", "workflow", "list"), "'--region'"),
        (
            "default",
            ("namespace", "search-attribute", "add", "", "Blank", "--type", "Keyword"),
            "NAMESPACE",
        ),
        (
            "default",
            ("namespace", "search-attribute", "add", "--name", " ", "--type", "Int"),
            "NAME",
        ),
        ("default", ("namespace", "search-attribute", "remove", "", "Blank"), "NAMESPACE"),
        ("default", ("namespace", "search-attribute", "list", ""), "'[NAMESPACE]'"),
        ("default", ("namespace", "create", "blank-ns", "--regions", ""), "'--regions'"),
        ("default", ("namespace", "create", "blank-ns", "--active", ""), "'--active'"),
        ("default", ("namespace", "list", "--region", ""), "'--region'"),
        ("default", ("migrate", "up", "--region", ""), "'--region'"),
        ("default", ("failover", "", "--to", "region-a"), "'NAMESPACE'"),
        ("default", ("failover", "default", "--to", ""), "'--to'"),
        ("default", ("replication", "verify", ""), "'NAMESPACE'"),
        ("default", ("replication", "status", "--namespace", ""), "'--namespace'"),
        ("default", ("replication", "conflicts", "--region", ""), "'--region'"),
        ("default", ("replication", "dlq", "list", "--region", ""), "'--region'"),
        ("default", ("replication", "dlq", "purge", "--all", "--region", ""), "'--region'"),
        ("default", ("schedule", "describe", ""), "'SCHEDULE_ID'"),
        ("default", ("schedule", "delete", " "), "'SCHEDULE_ID'"),
        ("default", ("workflow", "pause", "blank-ns-cli", "--reason", ""), "'--reason'"),
        (
            "default",
            ("workflow", "reset", "blank-ns-cli", "--to", "first-workflow-task", "--reason", ""),
            "'--reason'",
        ),
        (
            "default",
            ("batch", "start", "-q", "WorkflowId = 'x'", "--op", "terminate", "--reason", ""),
            "'--reason'",
        ),
    ],
)
async def test_a_blank_namespace_region_schedule_or_reason_is_a_usage_error(
    client: Client, region: Region, namespace: str, args: tuple[str, ...], option: str
) -> None:
    """Regression: a blank namespace, region or schedule id (an unset shell
    variable) was taken as left out, so the command acted on the -n namespace
    or on every region (`search-attribute add "" X` registered X in `default`,
    `migrate up --region ""` migrated every region), or was sent on and
    refused as no name with exit 1; a blank required --reason was recorded."""
    await client.start_workflow(Counter, id="blank-ns-cli", task_queue=QUEUE)
    before = await _kinds(client, "blank-ns-cli")
    attributes = await client.list_search_attributes()
    code, out, err = await baton_json(region.config_path, *args, namespace=namespace)
    assert code == 2, (out, err)
    message = out["error"]["message"]
    assert out["error"]["code"] == "USAGE_ERROR" and option in message, message
    assert "is empty: give " in message, message
    assert await _kinds(client, "blank-ns-cli") == before
    assert await client.list_search_attributes() == attributes
    assert "blank-ns" not in [n["name"] for n in await client.list_namespaces()]
