"""What a server's real answers look like in the CLI's tables: a query
answering [] and a signal batch's operation."""

from __future__ import annotations

import asyncio
import sys

import pytest

from tests.apps.visibility import Waiter
from tests.conftest import Region
from worker import Client, Worker

pytestmark = pytest.mark.integration
QUEUE = "cli-tables"


async def baton_table(region: Region, *args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        *("-m", "ops.cli", "--config", str(region.config_path), *args),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    return int(proc.returncode or 0), out.decode(), err.decode()


def cell(text: str, key: str) -> str:
    line = next(x for x in text.splitlines() if f" {key} " in x)
    return line.split("│")[2].strip()


async def test_an_empty_answer_and_a_batch_operation_read_in_the_table(
    client: Client, region: Region
) -> None:
    async with Worker(client, task_queue=QUEUE, workflows=[Waiter]):
        await client.start_workflow(Waiter, id="tables-1", task_queue=QUEUE)
        code, out, err = await baton_table(region, "workflow", "query", "tables-1", "noted")
        assert code == 0 and cell(out, "result") == "[]", (out, err)
        code, out, err = await baton_table(
            region,
            *("batch", "start", "--query", "WorkflowId = 'tables-1'", "--op", "signal", "note"),
            *("--input", '"stop"', "--reason", "done", "--job-id", "tables-job"),
        )
        assert code == 0, (out, err)
        assert await client.get_workflow_handle("tables-1").result(timeout=20) == ["stop"]
    code, out, err = await baton_table(region, "batch", "describe", "tables-job")
    assert code == 0 and cell(out, "operation") == 'signal note with input ["stop"]', (out, err)
    assert "base64" not in out and "json/plain" not in out, out
