"""``baton batch``: durable jobs that act on every workflow a query matches."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import click
from rich.console import Group, RenderableType
from rich.text import Text

from ops.cli_base import (
    BatonGroup,
    CliInputError,
    CliState,
    FiniteRange,
    given,
    not_empty,
    pass_state,
    request_id_option,
    strict_json,
)
from ops.cli_versioning import OVERRIDES, override_body
from ops.output import emit, err_console, kv_table, readable, short, table, when
from store.batch.operations import OPERATIONS
from worker.client import Client

__all__ = ["register_batch"]

OPS = ["terminate", "cancel", "signal", "reset", "update-versioning", "pause", "unpause"]
#: What a job id may be (as a start checks it): one path segment of the API.
_JOB_ID = re.compile(r"[A-Za-z0-9_.-]{1,64}")


def _job_id(job_id: str) -> str:
    """JOB_ID as given, refused before any request when no job can have it
    (a '/' or '?' would send the request to another path)."""
    if not _JOB_ID.fullmatch(job_id) or not job_id.strip("."):
        raise CliInputError(
            f"{job_id!r} is not a batch job id: an id has 1 to 64 letters, digits, '.', '_' "
            "and '-' (`baton batch list` shows the jobs)"
        )
    return job_id


@click.group(cls=BatonGroup)
def batch() -> None:
    """Batch jobs: terminate, cancel, signal or reset the workflows a query matches."""


def _view(d: dict[str, Any]) -> RenderableType:
    counts = {
        k: d.get(k)
        for k in (
            "job_id",
            "state",
            "query",
            "operation",
            "rps",
            "reason",
            "total",
            "done",
            "skipped",
            "failed",
            "pages",
            "stop_reason",
            "start_time",
            "close_time",
        )
    }
    counts["operation"] = _operation_line(d.get("operation"))
    if "started" in d:  # a waited start: did it start the job, or find it
        counts["started"] = d["started"]
    parts: list[RenderableType] = [kv_table(counts, title="Batch job")]
    if d.get("failures"):
        parts.append(
            table(
                ["workflow id", "run id", "code", "message"],
                [[f["workflow_id"], f["run_id"], f["code"], f["message"]] for f in d["failures"]],
                title="Failures (first 1000)",
            )
        )
    return Group(*parts)


def _operation_line(op: Any) -> Any:
    """The operation as `batch list` says it, with a signal's input decoded
    where the CLI can (JSON): the stored object, base64 and all, is for -o json."""
    if not isinstance(op, dict) or op.get("kind") not in OPERATIONS:
        return op
    params = op.get("params") or {}
    try:
        line = OPERATIONS[op["kind"]].describe(params)
    except (KeyError, TypeError):
        return op
    if params.get("input"):
        line += f" with input {short(readable(params['input']), 120)}"
    return line


#: The options only one operation takes (by parameter name), as the CLI spells them.
_OP_OPTIONS: dict[str, dict[str, str]] = {
    "signal": {"signal_name": "--signal", "inputs": "--input"},
    "reset": {"reset_to": "--reset-to", "reapply": "--reapply"},
    "update-versioning": {"override": "--override", "version": "--version"},
    "unpause": {"to_current": "--to-current", "build_id": "--build-id"},
}


def _refuse_options_of_other_ops(ctx: click.Context, op: str) -> None:
    """An option of another operation is a mistake (a misspelt --op, a mixed-up
    option): refuse it before anything runs rather than run without it."""
    stray = [
        flag
        for other, options in _OP_OPTIONS.items()
        if other != op
        for name, flag in options.items()
        if ctx.get_parameter_source(name) is click.core.ParameterSource.COMMANDLINE
    ]
    if stray:
        own = ", ".join(_OP_OPTIONS.get(op, {}).values())
        takes = f"which takes {own}" if own else "which takes no options of its own"
        raise CliInputError(
            f"{', '.join(stray)} {'does' if len(stray) == 1 else 'do'} not apply to --op {op}, "
            f"{takes}: leave {'it' if len(stray) == 1 else 'them'} out, or pick the --op "
            f"{'it belongs' if len(stray) == 1 else 'they belong'} to; nothing was started"
        )


@batch.command("start")
@click.argument(
    "signal_arg",
    required=False,
    metavar="[SIGNAL_NAME]",
    callback=given("a signal name, or leave it out for --signal"),
)
@click.option("--query", "-q", required=True, help="List filter of the workflows to act on.")
@click.option("--op", "op", type=click.Choice(OPS, case_sensitive=False), required=True)
@click.option(
    "--signal",
    "--signal-name",
    "signal_name",
    default=None,
    help="Signal name for --op signal (or `--op signal NAME`).",
)
@click.option("--input", "inputs", multiple=True, help="Signal argument as JSON (repeatable).")
@click.option(
    "--reset-to",
    "--to",
    "reset_to",
    type=click.Choice(["first-workflow-task", "last-workflow-task"]),
    default="last-workflow-task",
    show_default=True,
    help="--op reset: the point.",
)
@click.option(
    "--reapply",
    type=click.Choice(["all", "signals", "none"]),
    default="all",
    show_default=True,
    help="--op reset: re-apply signals and accepted updates after the point (all), "
    "signals only, or none.",
)
@click.option(
    "--override",
    type=click.Choice(OVERRIDES),
    default=None,
    help="--op update-versioning: pinned, one-time, auto-upgrade, or none (clear).",
)
@click.option(
    "--version",
    default=None,
    callback=given("DEPLOYMENT:BUILD_ID"),
    help="--op update-versioning: DEPLOYMENT:BUILD_ID.",
)
@click.option(
    "--to-current", is_flag=True, help="--op unpause: pin each to its deployment's current build."
)
@click.option(
    "--build-id",
    default=None,
    callback=given("a build id"),
    help="--op unpause: pin each to this build.",
)
@click.option(
    "--rps",
    type=FiniteRange(0.01, 10_000),
    default=50.0,
    show_default=True,
    help="Operations per second at most.",
)
@click.option(
    "--reason",
    required=True,
    callback=given("why, recorded in every affected history"),
    help="Recorded in every affected history.",
)
@click.option("--job-id", default=None, callback=not_empty, help="Id of the job (default: drawn).")
@request_id_option
@click.option(
    "--wait/--no-wait",
    default=True,
    show_default=True,
    help="Wait for the job with a progress bar (exit 1 unless it completes).",
)
@pass_state
def batch_start(
    st: CliState,
    signal_arg: str | None,
    query: str,
    op: str,
    signal_name: str | None,
    inputs: tuple[str, ...],
    reset_to: str,
    reapply: str,
    override: str | None,
    version: str | None,
    to_current: bool,
    build_id: str | None,
    rps: float,
    reason: str,
    job_id: str | None,
    request_id: str | None,
    wait: bool,
    output: str,
) -> None:
    """Start a batch job; with --wait, follow it to the end.

    Waiting, it exits 1 when the job ends failed or stopped.

    `--op signal NAME --input JSON` signals NAME with the inputs; `--op reset`
    resets each run to --reset-to.
    """
    op = op.lower()
    if signal_arg and signal_name and signal_arg != signal_name:
        raise CliInputError(
            f"two signal names: {signal_arg!r} and --signal {signal_name!r}; give one of them"
        )
    signal_name = signal_name or signal_arg
    if signal_arg and op != "signal":
        raise CliInputError(f"unexpected argument {signal_arg!r}: only --op signal takes a name")
    _refuse_options_of_other_ops(click.get_current_context(), op)
    params: dict[str, Any] = {}
    if op == "signal":
        if not signal_name:
            raise CliInputError("--op signal needs --signal NAME")
        try:
            args = [strict_json(raw) for raw in inputs]
        except ValueError as exc:
            raise CliInputError(f"--input is not valid JSON: {exc}") from exc
    elif op == "reset":
        params = {"to": reset_to, "reapply": reapply}
    elif op == "unpause":
        params = {"to_current": to_current, "build_id": build_id}
    elif op == "update-versioning":
        if override is None:
            raise CliInputError("--op update-versioning needs --override (and --version)")
        params = {"override": override_body(override, version)}

    async def go(c: Client) -> dict[str, Any]:
        p = dict(params)
        if op == "signal":
            p = {
                "signal_name": signal_name,
                "input": await c.encode(args),
            }
        total = (await c.count_workflows(query))["count"]
        # a retried command with its --request-id finds the job the first one
        # started (without --job-id the job's id comes from the request id)
        started = await c.start_batch(
            query, op, reason=reason, params=p, rps=rps, job_id=job_id, request_id=request_id
        )
        if not wait:
            return {**started, "matched_at_start": total}
        ended = await _follow(c, started["job_id"], total, output)
        # a start that found the job under its id (a retry) started nothing
        return {**ended, "started": started.get("started", True)}

    result = st.run(go)
    emit(result, output, _view if "state" in result else lambda d: kv_table(d, title="Batch job"))
    if wait and result.get("state") != "completed":
        # A script that waits for the job learns that it did not finish its walk.
        err_console.print(
            f"batch job {result.get('job_id')} ended {result.get('state')}"
            + (f": {result['error']}" if result.get("error") else "")
            + (f" ({result['stop_reason']})" if result.get("stop_reason") else ""),
            markup=False,
        )
        click.get_current_context().exit(1)


async def _follow(c: Client, job_id: str, total: int, output: str) -> dict[str, Any]:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
        disable=output == "json",
    ) as bar:
        task = bar.add_task(f"batch {job_id}", total=max(total, 1))
        while True:
            d = await c.describe_batch(job_id)
            seen = (d.get("done") or 0) + (d.get("skipped") or 0) + (d.get("failed") or 0)
            total = d.get("total") or total  # as the job counted them when it started
            bar.update(task, completed=seen, total=max(total, seen, 1))
            if d["state"] != "running":
                return d
            await asyncio.sleep(0.5)


@batch.command("list")
@pass_state
def batch_list(st: CliState, output: str) -> None:
    """Batch jobs of the namespace, newest first."""
    emit(
        st.run(lambda c: c.list_batches()),
        output,
        lambda d: table(
            ["job id", "state", "operation", "query", "rps", "started", "closed"],
            [
                [
                    j["job_id"],
                    j["state"],
                    j.get("summary") or j["operation"],
                    j["query"],
                    j["rps"],
                    when(j["start_time"]),
                    when(j.get("close_time")),
                ]
                for j in d
            ],
        ),
    )


@batch.command("describe")
@click.argument("job_id", callback=given("a batch job id from `baton batch list`"))
@pass_state
def batch_describe(st: CliState, job_id: str, output: str) -> None:
    """Progress, counts and failures of batch job JOB_ID."""
    _job_id(job_id)
    emit(st.run(lambda c: c.describe_batch(job_id)), output, _view)


@batch.command("stop")
@click.argument("job_id", callback=given("a batch job id from `baton batch list`"))
@click.option("--reason", default="", help="Recorded in the job's history.")
@pass_state
def batch_stop(st: CliState, job_id: str, reason: str, output: str) -> None:
    """Stop batch job JOB_ID after the page it is on (safe to run twice)."""
    _job_id(job_id)
    res = st.run(lambda c: c.stop_batch(job_id, reason))
    emit(
        res,
        output,
        lambda d: Text(
            f"stop requested for batch {d['job_id']}"
            if d["stop_requested"]
            else f"batch {d['job_id']} has already ended ({d.get('state') or 'closed'})"
        ),
    )


def register_batch(cli: click.Group) -> None:
    """Add the ``batch`` commands to the CLI group."""
    cli.add_command(batch)
