"""``baton workflow pause`` and ``unpause``: stop a workflow, look, let it go on."""

from __future__ import annotations

from typing import Any

import click

from ops.cli_base import (
    BatonCommand,
    BatonGroup,
    CliInputError,
    CliState,
    given,
    pass_state,
    request_id_option,
)
from ops.cli_workflow import run_id_option
from ops.output import emit, kv_table
from worker.client import Client

__all__ = ["register_pause"]


def _view(d: dict[str, Any]) -> Any:
    pause = d.get("pause") or {}
    return kv_table(
        {
            "workflow id": d.get("workflow_id"),
            "run id": d.get("run_id"),
            "paused": d.get("paused"),
            "changed": d.get("changed"),
            "reason": pause.get("reason"),
            "by": pause.get("identity"),
            "since": pause.get("since"),
            **({"next task version": d["next_task_version"]} if d.get("next_task_version") else {}),
        },
        title="Pause",
    )


@click.command("pause", cls=BatonCommand)
@click.argument("workflow_id", callback=given("a workflow id"))
@click.option(
    "--reason",
    required=True,
    callback=given("why, recorded in the history and shown by describe"),
    help="Why: recorded in the history and shown by describe.",
)
@run_id_option
@request_id_option
@pass_state
def workflow_pause(
    st: CliState,
    workflow_id: str,
    reason: str,
    run_id: str | None,
    request_id: str | None,
    output: str,
) -> None:
    """Pause a workflow: nothing more is dispatched to it until unpause (signals,
    timers and results of running attempts are recorded and wait); --run-id
    pauses that run (a closed one refuses)."""

    async def go(c: Client) -> dict[str, Any]:
        h = c.get_workflow_handle(workflow_id, run_id=run_id)
        return await h.pause(reason, request_id=request_id)

    emit(st.run(go), output, _view)


@click.command("unpause", cls=BatonCommand)
@click.argument("workflow_id", callback=given("a workflow id"))
@click.option("--reason", default="", help="Recorded in the history.")
@click.option(
    "--to-current", is_flag=True, help="Pin it to its deployment's current build in the same step."
)
@click.option(
    "--build-id",
    default=None,
    callback=given("a build id of its deployment"),
    help="Pin it to this build of its deployment.",
)
@run_id_option
@request_id_option
@pass_state
def workflow_unpause(
    st: CliState,
    workflow_id: str,
    reason: str,
    to_current: bool,
    build_id: str | None,
    run_id: str | None,
    request_id: str | None,
    output: str,
) -> None:
    """Let a paused workflow go on; what waited is dispatched in order."""
    if to_current and build_id:
        raise CliInputError("give --to-current or --build-id, not both")

    async def go(c: Client) -> dict[str, Any]:
        return await c.get_workflow_handle(workflow_id, run_id=run_id).unpause(
            reason, to_current=to_current, build_id=build_id, request_id=request_id
        )

    emit(st.run(go), output, _view)


@click.group("activity", cls=BatonGroup)
def activity() -> None:
    """One activity of a workflow: pause its retries, unpause, reset to attempt 1."""


_RESET_OPTIONS = [
    click.option("--keep-paused", is_flag=True, help="Leave a paused activity paused."),
    click.option(
        "--reset-heartbeat-details", is_flag=True, help="Start without the last heartbeat details."
    ),
]


def _activity_command(action: str, help_text: str, options: list[Any]) -> None:
    """``baton activity ACTION WORKFLOW_ID ACTIVITY_ID`` with the action's own options."""

    def command(
        st: CliState,
        /,
        workflow_id: str,
        activity_id: str,
        reason: str,
        run_id: str | None,
        request_id: str | None,
        output: str,
        **extra: Any,
    ) -> None:
        async def go(c: Client) -> dict[str, Any]:
            h = c.get_workflow_handle(workflow_id, run_id=run_id)
            if action == "pause":
                return await h.pause_activity(activity_id, reason, request_id=request_id)
            if action == "unpause":
                return await h.unpause_activity(activity_id, reason, request_id=request_id)
            return await h.reset_activity(activity_id, reason, request_id=request_id, **extra)

        emit(st.run(go), output, lambda d: kv_table(d, title=f"Activity {action}"))

    decorated: Any = pass_state(command)
    for option in [*reversed(options)]:
        decorated = option(decorated)
    decorated = request_id_option(decorated)
    decorated = run_id_option(decorated)
    decorated = click.option("--reason", default="", help="Recorded in the workflow's history.")(
        decorated
    )
    decorated = click.argument("workflow_id", callback=given("a workflow id"))(
        click.argument(
            "activity_id", callback=given("an activity id (`baton workflow describe` shows them)")
        )(decorated)
    )
    activity.command(action, help=help_text)(decorated)


_activity_command(
    "pause",
    "Pause an activity of the workflow's current run (or of --run-id): no new attempt "
    "starts until unpause.",
    [],
)
_activity_command(
    "unpause", "Let a paused activity's next attempt start (--run-id: of that run).", []
)
_activity_command(
    "reset",
    "Start an activity again from attempt 1 (after a running attempt ends), keeping its "
    "heartbeat details, and unpause it (--run-id: of that run).",
    _RESET_OPTIONS,
)


def register_pause(cli: click.Group) -> None:
    cli.add_command(activity)
    workflow = cli.commands["workflow"]
    assert isinstance(workflow, click.Group)
    workflow.add_command(workflow_pause)
    workflow.add_command(workflow_unpause)
