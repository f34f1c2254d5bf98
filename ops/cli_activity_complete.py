"""``baton activity complete`` and ``fail``: end a running activity attempt from
outside, as Temporal's CLI does for an activity completed asynchronously."""

from __future__ import annotations

from typing import Any

import click

from ops.cli_base import BatonCommand, CliState, given, pass_state
from ops.cli_workflow import json_values, run_id_option
from ops.output import emit, kv_table
from worker.client import Client
from worker.errors import ApplicationError

__all__ = ["register_activity_complete"]


def _ids(fn: Any) -> Any:
    fn = run_id_option(fn)
    return click.argument("workflow_id", callback=given("a workflow id"))(
        click.argument(
            "activity_id", callback=given("an activity id (`baton workflow describe` shows them)")
        )(fn)
    )


@click.command(
    "complete", cls=BatonCommand, help="Complete the running attempt of an activity with --result."
)
@_ids
@click.option("--result", "result", default="null", help="The result as JSON (default null).")
@pass_state
def activity_complete(
    st: CliState,
    workflow_id: str,
    activity_id: str,
    run_id: str | None,
    result: str,
    output: str,
) -> None:
    (value,) = json_values([result], "--result")

    async def go(c: Client) -> dict[str, Any]:
        handle = c.get_async_activity_handle(
            workflow_id=workflow_id, run_id=run_id, activity_id=activity_id
        )
        await handle.complete(value)
        return {"workflow_id": workflow_id, "activity_id": activity_id, "completed": True}

    emit(st.run(go), output, lambda d: kv_table(d, title="Activity complete"))


@click.command(
    "fail",
    cls=BatonCommand,
    help="Fail the running attempt of an activity (retried by its policy unless --non-retryable).",
)
@_ids
@click.option("--reason", required=True, callback=given("the failure's message"))
@click.option("--type", "error_type", default="ActivityFailedByOperator", show_default=True)
@click.option("--non-retryable", is_flag=True, help="End the activity: no further attempt.")
@pass_state
def activity_fail(
    st: CliState,
    workflow_id: str,
    activity_id: str,
    run_id: str | None,
    reason: str,
    error_type: str,
    non_retryable: bool,
    output: str,
) -> None:
    async def go(c: Client) -> dict[str, Any]:
        handle = c.get_async_activity_handle(
            workflow_id=workflow_id, run_id=run_id, activity_id=activity_id
        )
        await handle.fail(ApplicationError(reason, type=error_type, non_retryable=non_retryable))
        return {"workflow_id": workflow_id, "activity_id": activity_id, "failed": True}

    emit(st.run(go), output, lambda d: kv_table(d, title="Activity fail"))


def register_activity_complete(cli: click.Group) -> None:
    activity = cli.commands["activity"]
    assert isinstance(activity, click.Group)
    activity.add_command(activity_complete)
    activity.add_command(activity_fail)
