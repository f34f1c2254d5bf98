"""``baton workflow signal|query|update|cancel|terminate``: act on a workflow's run."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import click
from pydantic import BaseModel
from rich.text import Text

from ops.cli_base import (
    BatonCommand,
    CliState,
    Seconds,
    given,
    not_empty,
    pass_state,
    request_id_option,
    wire_max,
)
from ops.cli_workflow import input_option, json_values, run_id_option
from ops.output import emit, kv_table
from worker.client import WorkflowHandle
from worker.errors import InvalidArgumentError, PayloadDecryptionError, UnknownEncryptionKeyError
from worker.wire import QueryRequest, UpdateRequest

__all__ = ["register_workflow_actions"]


def _act(
    st: CliState,
    workflow_id: str,
    fn: Callable[[WorkflowHandle], Awaitable[Any]],
    run_id: str | None = None,
) -> Any:
    return st.run(lambda c: fn(c.get_workflow_handle(workflow_id, run_id=run_id)))


@click.command(cls=BatonCommand, name="signal")
@click.argument("workflow_id", callback=given("a workflow id"))
@click.argument("name", callback=given("the signal name the workflow defines"))
@input_option
@run_id_option
@request_id_option
@pass_state
def workflow_signal(
    st: CliState,
    workflow_id: str,
    name: str,
    inputs: tuple[str, ...],
    run_id: str | None,
    request_id: str | None,
    output: str,
) -> None:
    """Send signal NAME to a workflow."""
    args = json_values(inputs)
    acted = _act(st, workflow_id, lambda h: h.signal(name, *args, request_id=request_id), run_id)
    emit(
        {"workflow_id": workflow_id, "run_id": acted, "signal": name, "signaled": True},
        output,
        lambda d: Text(f"signaled {d['workflow_id']} (run {d['run_id']}) with {d['signal']}"),
    )


def _timeout_option(request: type[BaseModel], what: str) -> Callable[..., Any]:
    """``--timeout``: the request's ``timeout_s``, its default and bound the server's own."""
    most = wire_max(request, "timeout_s")
    return click.option(
        "--timeout",
        type=Seconds(max=most),
        default=request.model_fields["timeout_s"].default,
        show_default=True,
        help=f"Seconds to wait for {what} (at most {most:g}); then the command fails "
        f"with {request.__name__.removesuffix('Request').upper()}_TIMED_OUT.",
    )


@click.command(cls=BatonCommand, name="query")
@click.argument("workflow_id", callback=given("a workflow id"))
@click.argument("name", callback=given("the query name the workflow defines"))
@input_option
@run_id_option
@_timeout_option(QueryRequest, "a worker's answer")
@pass_state
def workflow_query(
    st: CliState,
    workflow_id: str,
    name: str,
    inputs: tuple[str, ...],
    run_id: str | None,
    timeout: float,
    output: str,
) -> None:
    """Ask a workflow's query handler NAME (needs a worker polling its task queue);
    --run-id asks that run, closed or not."""
    args = json_values(inputs)
    value = _act(st, workflow_id, lambda h: h.query(name, *args, timeout=timeout), run_id)
    emit({"workflow_id": workflow_id, "query": name, "result": value}, output, kv_table)


@click.command(cls=BatonCommand, name="update")
@click.argument("workflow_id", callback=given("a workflow id"))
@click.argument("name", callback=given("the update name the workflow defines"))
@input_option
@click.option(
    "--update-id",
    default=None,
    callback=not_empty,
    help="Idempotency key: the same id returns the same update's result (within a run).",
)
@run_id_option
@_timeout_option(UpdateRequest, "the update's result")
@pass_state
def workflow_update(
    st: CliState,
    workflow_id: str,
    name: str,
    inputs: tuple[str, ...],
    update_id: str | None,
    run_id: str | None,
    timeout: float,
    output: str,
) -> None:
    """Send update NAME to a workflow and wait for its result (an update that
    times out may still complete: send it again with its --update-id to wait on)."""
    args = json_values(inputs)
    # made here when not given, so the answer can name it (a retry with it is deduplicated)
    update_id = update_id or str(uuid.uuid4())

    async def send(h: WorkflowHandle) -> tuple[Any, dict[str, Any]]:
        # _update: update's own call, with the answer's run (the run that took it)
        raw, res = await h._update(
            name, args, update_id=update_id, timeout=timeout, type_hint=None, decode=False
        )
        try:
            return await h.client.decode_one(raw, None), res
        except (InvalidArgumentError, UnknownEncryptionKeyError, PayloadDecryptionError):
            # It completed: an error here would read as a failed update, sent
            # again. Shown as the payload it is; a note on stderr says why.
            return raw, res

    value, res = _act(st, workflow_id, send, run_id)
    emit(
        {
            "workflow_id": workflow_id,
            "run_id": res.get("run_id"),
            "update": name,
            "update_id": update_id,
            "result": value,
        },
        output,
        kv_table,
    )


def _ending_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """WORKFLOW_ID and the options of ``cancel`` and ``terminate``."""
    options = [
        click.argument("workflow_id", callback=given("a workflow id")),
        click.option("--reason", default="", help="Recorded in the history."),
        run_id_option,
        request_id_option,
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


@click.command(cls=BatonCommand, name="cancel")
@_ending_options
@pass_state
def workflow_cancel(st: CliState, /, workflow_id: str, output: str, **o: Any) -> None:
    """Request cancellation of a workflow (its code decides how to wind down)."""
    reason, request_id = o["reason"], o["request_id"]
    acted = _act(st, workflow_id, lambda h: h.cancel(reason, request_id=request_id), o["run_id"])
    emit(
        {"workflow_id": workflow_id, "run_id": acted, "cancel_requested": True, "reason": reason},
        output,
        lambda d: Text(f"cancellation requested for {d['workflow_id']} (run {d['run_id']})"),
    )


@click.command(cls=BatonCommand, name="terminate")
@_ending_options
@pass_state
def workflow_terminate(st: CliState, /, workflow_id: str, output: str, **o: Any) -> None:
    """Terminate a workflow at once (no workflow code runs)."""
    reason, request_id = o["reason"], o["request_id"]
    acted = _act(st, workflow_id, lambda h: h.terminate(reason, request_id=request_id), o["run_id"])
    emit(
        {"workflow_id": workflow_id, "run_id": acted, "terminated": True, "reason": reason},
        output,
        lambda d: Text(f"terminated {d['workflow_id']} (run {d['run_id']})"),
    )


def register_workflow_actions(cli: click.Group) -> None:
    """Add the commands that act on a run to the ``workflow`` group."""
    workflow = cli.commands["workflow"]
    assert isinstance(workflow, click.Group)
    for command in (
        workflow_signal,
        workflow_query,
        workflow_update,
        workflow_cancel,
        workflow_terminate,
    ):
        workflow.add_command(command)
