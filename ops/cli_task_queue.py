"""``baton task-queue describe``: the workers polling a task queue and its backlog."""

from __future__ import annotations

from typing import Any

import click
from rich.console import Group, RenderableType
from rich.text import Text

from ops.cli_base import BatonGroup, CliState, given, pass_state
from ops.output import emit, table, when

__all__ = ["register_task_queue"]


@click.group("task-queue", cls=BatonGroup)
def task_queue() -> None:
    """Task queues: the workers polling one, and what waits on it."""


def _describe_view(d: dict[str, Any]) -> RenderableType:
    backlog = table(
        ["kind", "backlog", "oldest waits (s)"],
        [[k, b["count"], b["oldest_age_s"]] for k, b in d["backlog"].items()],
        title=f"task queue {d['task_queue']}",
    )
    where = Text(f"namespace {d['namespace']}, as region {d['region']} sees it")
    if not d["pollers"]:
        return Group(where, backlog, Text("no worker polled it in the last 5 minutes"))
    pollers = table(
        ["identity", "kind", "version", "last poll", "first poll", "live"],
        [
            [
                p["identity"],
                p["kind"],
                f"{p['deployment']}:{p['build_id']}" if p["deployment"] else None,
                when(p["last_poll_time"]),
                when(p["first_poll_time"]),
                p["live"],
            ]
            for p in d["pollers"]
        ],
        title="pollers",
        no_wrap=["kind", "live"],
    )
    return Group(where, backlog, pollers)


@task_queue.command("describe")
@click.argument("queue", metavar="TASK_QUEUE", required=False, callback=given("a task queue name"))
@click.option(
    "--task-queue",
    "-t",
    "option_queue",
    default=None,
    callback=given("a task queue name"),
    help="The task queue, as Temporal's CLI names it (or give it as TASK_QUEUE).",
)
@pass_state
def task_queue_describe(
    st: CliState, queue: str | None, option_queue: str | None, output: str
) -> None:
    """The workers that polled TASK_QUEUE in the last 5 minutes (identity, workflow or
    activity, the version they poll as, last and first poll, live: polled in the last
    45 s) and its backlog per kind, as the namespace's active region sees them."""
    if (queue is None) == (option_queue is None):
        raise click.UsageError("give the task queue once: as TASK_QUEUE or as --task-queue")
    name = queue or option_queue
    assert name is not None
    emit(st.run(lambda c: c.describe_task_queue(name)), output, _describe_view)


def register_task_queue(cli: click.Group) -> None:
    cli.add_command(task_queue)
