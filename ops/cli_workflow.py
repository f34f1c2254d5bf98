"""``baton workflow start|signal-with-start|describe|history|result|list``.

The commands that act on a run (signal, query, update, cancel, terminate)
are in :mod:`ops.cli_workflow_actions`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import click
from rich.console import Group, RenderableType
from rich.text import Text

from ops.cli_base import (
    BatonGroup,
    CliInputError,
    CliState,
    Seconds,
    Timestamp,
    enum_choice,
    given,
    name_value_pairs,
    not_empty,
    pass_state,
    spelled,
    strict_json,
    wire_max,
)
from ops.cli_start_retry import cron_of, retry_options, retry_policy_of
from ops.cli_values import run_id_value
from ops.cli_workflow_view import describe_view
from ops.output import attr_summary, emit, kv_table, table, when, with_values
from worker._handle_control import new_request_id
from worker._payloads import decode_wire
from worker.client import Client
from worker.wire import (
    StartWorkflowRequest,
    WorkflowIdConflictPolicy,
    WorkflowIdReusePolicy,
    WorkflowStatus,
)

__all__ = ["input_option", "json_values", "register_workflow", "run_id_option"]


# --------------------------------------------------------------------------- helpers


def json_values(values: Sequence[str], what: str = "--input") -> list[Any]:
    out = []
    for i, raw in enumerate(values, 1):
        try:
            out.append(strict_json(raw))
        except ValueError as exc:
            raise CliInputError(
                f"{what} #{i} is not valid JSON ({exc}): {raw!r}; quote strings as '\"text\"'"
            ) from exc
    return out


# --------------------------------------------------------------------------- workflow


@click.group(cls=BatonGroup)
def workflow() -> None:
    """Start workflows and act on them."""


input_option = click.option(
    "--input",
    "-i",
    "inputs",
    multiple=True,
    help="One argument as JSON (repeat for several): --input '\"text\"' --input 42.",
)
run_id_option = click.option(
    "--run-id", default=None, callback=run_id_value, help="A specific run (default: latest)."
)


def _start_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """The options of a start (``start`` and ``signal-with-start``)."""
    options = [
        click.option(
            "--type",
            "-t",
            "workflow_type",
            required=True,
            callback=given("a workflow type name"),
            help="Workflow type name.",
        ),
        click.option(
            "--task-queue",
            "-q",
            required=True,
            callback=given("the task queue its workers poll"),
            help="Task queue workers poll.",
        ),
        click.option(
            "--id",
            "workflow_id",
            required=True,
            callback=given("a workflow id"),
            help="Workflow id.",
        ),
        input_option,
        click.option(
            "--request-id",
            default=None,
            callback=not_empty,
            help="Idempotency key: a retried start with the same key never starts twice.",
        ),
        click.option(
            "--id-reuse-policy",
            **enum_choice(WorkflowIdReusePolicy, "an id reuse policy"),
            default=spelled(WorkflowIdReusePolicy.ALLOW_DUPLICATE),
            show_default=True,
            help="What a start does when closed runs of the id exist (underscores or "
            "hyphens, any case).",
        ),
        click.option(
            "--search-attribute",
            "search_attributes",
            multiple=True,
            metavar="NAME=JSON",
            help="A custom search attribute, e.g. CustomerId='\"c-7\"' or Amount=42 (repeatable).",
        ),
        click.option(
            "--memo",
            default=None,
            metavar="JSON",
            help='The run\'s memo, a JSON object: --memo \'{"owner": "ops"}\'.',
        ),
        click.option(
            "--run-timeout",
            type=Seconds(max=wire_max(StartWorkflowRequest, "run_timeout_s")),
            default=None,
            help="Seconds the run may take before it times out (default: none).",
        ),
        click.option(
            "--execution-timeout",
            type=Seconds(max=wire_max(StartWorkflowRequest, "execution_timeout_s")),
            default=None,
            help="Seconds the whole workflow may take, across continue-as-new, retries and "
            "resets, before the run open then times out (default: none).",
        ),
        click.option(
            "--task-timeout",
            type=Seconds(max=wire_max(StartWorkflowRequest, "task_timeout_s")),
            default=10.0,
            show_default=True,
            help="Seconds a worker may hold one workflow task.",
        ),
        click.option(
            "--start-delay",
            type=Seconds(max=wire_max(StartWorkflowRequest, "start_delay_s")),
            default=None,
            help="Seconds (or a span like 10m) the run waits before its code first runs.",
        ),
        click.option(
            "--cron",
            "cron_schedule",
            default=None,
            metavar="CRON",
            help="A cron schedule ('*/5 * * * *', @hourly, '@every 10m'): the workflow runs at "
            "each of its times, every run starting the next (Temporal's cron workflow).",
        ),
        click.option(
            "--versioning-behavior",
            type=click.Choice(["pinned", "auto-upgrade"]),
            default=None,
            help="Worker versioning: the run's behaviour in place of its workflow type's.",
        ),
    ]
    fn = retry_options(fn)
    for option in reversed(options):
        fn = option(fn)
    return fn


def _start_kwargs(o: dict[str, Any]) -> dict[str, Any]:
    """start_workflow's keyword arguments from the start options (checked here)."""
    memo = None
    if o["memo"] is not None:
        (memo,) = json_values([o["memo"]], "--memo")
        if not isinstance(memo, dict):
            raise CliInputError(f"--memo must be a JSON object, not {o['memo']!r}")
    return {
        "id": o["workflow_id"],
        "task_queue": o["task_queue"],
        # drawn here when not given, so the answer can name it (a retry with it
        # starts nothing more)
        "request_id": o["request_id"] or new_request_id(),
        "id_reuse_policy": o["id_reuse_policy"],
        "search_attributes": name_value_pairs(o["search_attributes"], "--search-attribute"),
        "memo": memo,
        "run_timeout": o["run_timeout"],
        "execution_timeout": o["execution_timeout"],
        "task_timeout": o["task_timeout"],
        "versioning_behavior": o["versioning_behavior"],
        "retry_policy": retry_policy_of(o),
        "cron_schedule": cron_of(o["cron_schedule"]),
        "start_delay": o["start_delay"],
    }


def _started(res: dict[str, Any], given_request_id: str | None) -> bool:
    """Whether this command started the run it answers with.

    A request id the command drew itself is its own: one the server found
    was used by this command's own earlier attempt, whose answer was lost (a
    server killed after its commit) and which the client sent again.
    """
    return bool(res["started"] or (given_request_id is None and res.get("request_id_found")))


@workflow.command("start")
@_start_options
@click.option(
    "--id-conflict-policy",
    **enum_choice(WorkflowIdConflictPolicy, "an id conflict policy"),
    default=spelled(WorkflowIdConflictPolicy.FAIL),
    show_default=True,
    help="What a start does beside a running run of the id: fail, use-existing (answer "
    "with it) or terminate-existing.",
)
@pass_state
def workflow_start(st: CliState, /, output: str, **options: Any) -> None:
    """Start a workflow."""
    args = json_values(options["inputs"])
    kw = {**_start_kwargs(options), "id_conflict_policy": options["id_conflict_policy"]}
    workflow_type = options["workflow_type"]

    async def go(c: Client) -> dict[str, Any]:
        # _start: start_workflow's own call, with the answer's `started`, which
        # tells a retry that found the first start (same --request-id) from a start
        h, res = await c._start(workflow_type, args, **kw)
        return {
            "namespace": c.namespace,
            "workflow_id": h.id,
            "run_id": h.run_id,
            "workflow_type": workflow_type,
            "task_queue": kw["task_queue"],
            "request_id": kw["request_id"],
            "started": _started(res, options["request_id"]),
        }

    def render(d: dict[str, Any]) -> RenderableType:
        if d["started"]:
            return kv_table(d)
        note = Text(
            f"nothing started: request id {kw['request_id']} already started run {d['run_id']}"
            if kw["id_conflict_policy"] != WorkflowIdConflictPolicy.USE_EXISTING
            else f"nothing started: run {d['run_id']} answered (running, or started "
            f"by request id {kw['request_id']} before)"
        )
        return Group(kv_table(d), note)

    emit(st.run(go), output, render)


@workflow.command("signal-with-start")
@_start_options
@click.option(
    "--signal",
    "signal_name",
    required=True,
    callback=given("a signal name"),
    help="The signal to send.",
)
@click.option(
    "--signal-input",
    "signal_inputs",
    multiple=True,
    help="One signal argument as JSON (repeatable), as --input is for the run.",
)
@pass_state
def workflow_signal_with_start(st: CliState, /, output: str, **options: Any) -> None:
    """Signal a workflow's running run, or start one with the start options and
    signal it, in one step."""
    args = json_values(options["inputs"])
    signal_args = json_values(options["signal_inputs"], "--signal-input")
    kw = _start_kwargs(options)
    workflow_type, signal_name = options["workflow_type"], options["signal_name"]

    async def go(c: Client) -> dict[str, Any]:
        # signal_with_start_workflow's own call, with the answer's `started`:
        # whether it started a run or signalled the one running
        h, res = await c._start(
            workflow_type,
            args,
            **kw,
            route="/signal-with-start",
            extra={
                "signal_name": signal_name,
                "signal_input": await c.encode(list(signal_args)),
            },
        )
        return {
            "namespace": c.namespace,
            "workflow_id": h.id,
            "run_id": h.run_id,
            "workflow_type": workflow_type,
            "task_queue": kw["task_queue"],
            "request_id": kw["request_id"],
            "signal": signal_name,
            "started": _started(res, options["request_id"]),
        }

    def render(d: dict[str, Any]) -> RenderableType:
        if d["started"]:
            return kv_table(d)
        note = (
            f"nothing started: signalled run {d['run_id']}, which was running "
            f"(or which request id {d['request_id']} started before)"
        )
        return Group(kv_table(d), Text(note))

    emit(st.run(go), output, render)


@workflow.command("describe")
@click.argument("workflow_id", callback=given("a workflow id"))
@run_id_option
@pass_state
def workflow_describe(st: CliState, workflow_id: str, run_id: str | None, output: str) -> None:
    """Show a workflow's state, pending activities and timers."""

    async def go(c: Client) -> Any:
        d = await c.get_workflow_handle(workflow_id, run_id=run_id).describe()
        # activities' failures and heartbeat details, as a worker with the keys reads them
        # (and so are the run's failure and its workflow task's last failure)
        decoded = await decode_wire(
            {k: d.get(k) for k in ("pending_activities", "failure", "pending_workflow_task")},
            c.data_converter,
            keep_unreadable=True,
        )
        # each JSON payload's value beside it (the memo is values already)
        return with_values({**d, **decoded}, skip=("search_attributes", "memo"))

    emit(st.run(go), output, describe_view)


@workflow.command("history")
@click.argument("workflow_id", callback=given("a workflow id"))
@run_id_option
@pass_state
def workflow_history(st: CliState, workflow_id: str, run_id: str | None, output: str) -> None:
    """Show a run's event history."""

    async def go(c: Client) -> dict[str, Any]:
        h = c.get_workflow_handle(workflow_id)
        # the run shown is named in the output: without --run-id, the current
        # one, fixed first so every page is of the run named
        shown = run_id or (await h.describe())["execution"]["run_id"]
        events = await h.history(run_id=shown)
        # With $BATON_ENCRYPTION_KEYS its payloads and failure texts read as a worker sees them.
        # What the keys cannot open (an old key, another team's) stays encrypted.
        events = await decode_wire(events, c.data_converter, keep_unreadable=True)
        return {"workflow_id": workflow_id, "run_id": shown, "events": with_values(events)}

    data = st.run(go)
    emit(
        data,
        output,
        lambda d: table(
            ["id", "type", "time", "version", "attributes"],
            [
                [
                    e["event_id"],
                    e["event_type"],
                    when(e["event_time"]),
                    e["version"],
                    attr_summary(e.get("attributes") or {}),
                ]
                for e in d["events"]
            ],
            title=f"workflow {d['workflow_id']} run {d['run_id']}",
            no_wrap=["id", "type", "version"],
        ),
    )


@workflow.command("result")
@click.argument("workflow_id", callback=given("a workflow id"))
@run_id_option
@click.option("--timeout", type=Seconds(), default=None, help="Give up after S seconds.")
@pass_state
def workflow_result(
    st: CliState, workflow_id: str, run_id: str | None, timeout: float | None, output: str
) -> None:
    """Wait for a workflow's result (following continue-as-new)."""

    async def go(c: Client) -> dict[str, Any]:
        h = c.get_workflow_handle(workflow_id, run_id=run_id)
        try:
            value = await h.result(timeout=timeout)
        except TimeoutError:
            raise TimeoutError(
                f"workflow {workflow_id!r} is still running after {timeout:g} s: wait longer "
                f"with a larger --timeout, or see what it waits for with `baton workflow "
                f"describe {workflow_id}`"
            ) from None
        return {
            "workflow_id": workflow_id,
            # the run that completed, past any continue-as-new, as signal and
            # terminate name the run they acted on
            "run_id": h.result_run_id,
            "status": WorkflowStatus.COMPLETED.value,
            "result": value,
        }

    emit(st.run(go), output, kv_table)


_STATUS = enum_choice(WorkflowStatus, "a workflow status", "paused")


def _status_or_paused(
    ctx: click.Context, param: click.Parameter, value: str | None
) -> WorkflowStatus | str | None:
    """A status, or ``paused`` (running and paused, as Temporal lists a paused run)."""
    if value is not None and value.strip().lower() == "paused":
        return "paused"
    status: WorkflowStatus | None = _STATUS["callback"](ctx, param, value)
    return status


@workflow.command("list")
@click.option(
    "--status",
    metavar=_STATUS["metavar"],
    callback=_status_or_paused,
    default=None,
    help="Runs of this status (underscores or hyphens, any case); paused: running runs "
    "that are paused.",
)
@click.option("--type", "workflow_type", default=None, help="Workflow type name.")
@click.option("--task-queue", default=None)
@click.option(
    "--started-after", type=Timestamp(), default=None, help="ISO 8601 time (UTC if no offset)."
)
@click.option(
    "--started-before", type=Timestamp(), default=None, help="ISO 8601 time (UTC if no offset)."
)
@click.option("--prefix", default=None, help="Workflow id prefix.")
@click.option(
    "--query",
    "-q",
    default=None,
    help="List filter, e.g. \"WorkflowType = 'Payment' AND ExecutionStatus = 'Running'\".",
)
@click.option("--limit", type=click.IntRange(1), default=100, show_default=True)
@click.option(
    "--include-system", is_flag=True, help="List Baton's own workflows (batch jobs, schedules) too."
)
@pass_state
def workflow_list(
    st: CliState,
    query: str | None,
    status: WorkflowStatus | str | None,
    workflow_type: str | None,
    task_queue: str | None,
    started_after: datetime | None,
    started_before: datetime | None,
    prefix: str | None,
    limit: int,
    include_system: bool,
    output: str,
) -> None:
    """List workflow runs matching a query (newest first unless it says ORDER BY)."""
    shorthand = {
        "--status": status,
        "--type": workflow_type,
        "--task-queue": task_queue,
        "--started-after": started_after,
        "--started-before": started_before,
        "--prefix": prefix,
    }
    given = [name for name, value in shorthand.items() if value is not None]
    if query and given:
        # the server takes one filter or the other: refused here, naming the options
        raise CliInputError(
            f"give --query or {', '.join(given)}, not both: those options are shorthand for "
            "a query, so write them into it (e.g. \"... AND ExecutionStatus = 'Running'\")"
        )

    async def go(c: Client) -> list[dict[str, Any]]:
        # memos as values, as describe shows them (what the keys cannot open stays sealed)
        return [
            {**e.raw, "memo": await c.decode_memo(e.raw.get("memo"))}
            async for e in c.list_workflows(
                query or "",
                status=status.value if isinstance(status, WorkflowStatus) else status,
                workflow_type=workflow_type,
                task_queue=task_queue,
                started_after=started_after,
                started_before=started_before,
                workflow_id_prefix=prefix,
                # one more than shown tells whether the list was cut
                page_size=min(limit + 1, 1000),
                limit=limit + 1,
                include_system=include_system,
            )
        ]

    runs = st.run(go)
    if len(runs) > limit:
        runs = runs[:limit]
        click.echo(f"note: showing the first {limit} runs; more match: raise --limit", err=True)
    emit(
        runs,
        output,
        lambda d: (
            Text("no runs match")
            if not d
            else table(
                [
                    "workflow id",
                    "run id",
                    "type",
                    "task queue",
                    "status",
                    "started",
                    "closed",
                    "events",
                ],
                [
                    [
                        e["workflow_id"],
                        e["run_id"],
                        e["workflow_type"],
                        e["task_queue"],
                        e["status"] + (" (paused)" if e.get("paused") else ""),
                        when(e["start_time"]),
                        when(e.get("close_time")),
                        e["history_length"],
                    ]
                    for e in d
                ],
                no_wrap=["workflow id", "status"],
            )
        ),
    )


def register_workflow(cli: click.Group) -> None:
    """Add the ``workflow`` commands to the CLI group."""
    import ops.cli_workflow_execute  # noqa: F401  (adds ``workflow execute``)

    cli.add_command(workflow)
