"""``baton workflow execute``: start a workflow and wait for its result in one
command, as Temporal's CLI ``workflow execute`` does (``start``'s options;
a run that fails exits non-zero with its failure, as ``result`` does)."""

from __future__ import annotations

from typing import Any

import click

from ops.cli_base import CliState, Seconds, pass_state
from ops.cli_workflow import _start_kwargs, _start_options, json_values, workflow
from ops.output import emit, kv_table
from worker.client import Client
from worker.wire import WorkflowStatus


@workflow.command("execute")
@_start_options
@click.option(
    "--timeout",
    type=Seconds(),
    default=None,
    help="Stop waiting after S seconds (the run goes on: `baton workflow result ID`).",
)
@pass_state
def workflow_execute(st: CliState, /, output: str, timeout: float | None, **options: Any) -> None:
    """Start a workflow and wait for its result (following continue-as-new and retries)."""
    args = json_values(options["inputs"])
    kw = _start_kwargs(options)
    workflow_type = options["workflow_type"]

    async def go(c: Client) -> dict[str, Any]:
        h, _ = await c._start(workflow_type, args, **kw)
        try:
            value = await h.result(timeout=timeout)
        except TimeoutError:
            raise TimeoutError(
                f"workflow {h.id!r} (run {h.run_id}) is still running after {timeout:g} s: "
                f"wait on with `baton workflow result {h.id}`, or see what it waits for with "
                f"`baton workflow describe {h.id}`"
            ) from None
        return {
            "namespace": c.namespace,
            "workflow_id": h.id,
            "run_id": h.run_id,
            # the run that completed, past any continue-as-new or retry
            "result_run_id": h.result_run_id,
            "workflow_type": workflow_type,
            "task_queue": kw["task_queue"],
            "request_id": kw["request_id"],
            "status": WorkflowStatus.COMPLETED.value,
            "result": value,
        }

    emit(st.run(go), output, kv_table)
