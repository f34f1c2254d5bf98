"""``baton workflow count|reset`` and ``baton namespace search-attribute``."""

from __future__ import annotations

import re
from typing import Any

import click
from rich.text import Text

from ops.cli_base import (
    BatonCommand,
    BatonGroup,
    CliState,
    given,
    not_empty,
    pass_state,
)
from ops.cli_values import run_id_value
from ops.output import emit, kv_table, table
from worker.client import Client

__all__ = ["register_visibility"]

#: A count query's trailing GROUP BY (the server checks it; this only names the column).
_GROUP_BY = re.compile(r"(?i)\bgroup\s+by\s+`?([A-Za-z_][A-Za-z0-9_]*)`?\s*$")

TYPES = ["Keyword", "Text", "Int", "Double", "Bool", "Datetime", "KeywordList"]


@click.group("search-attribute", cls=BatonGroup)
def search_attribute() -> None:
    """Custom search attributes of a namespace: add, list, remove."""


def _ns_and_name(st: CliState, args: tuple[str, ...], name: str | None) -> tuple[str, str]:
    """[NAMESPACE] NAME, or --name NAME; the namespace defaults to -n/--namespace.

    A blank NAMESPACE or NAME (an unset shell variable) is a usage error: taken
    as left out, it would act on the -n namespace, or send no name.
    """
    if name is not None and len(args) <= 1:
        namespace, attr = (args[0] if args else st.namespace), name
    elif len(args) == 2:
        namespace, attr = args
    elif len(args) == 1:
        namespace, attr = st.namespace, args[0]
    else:
        raise click.UsageError("give [NAMESPACE] NAME (or --name NAME)")
    if not namespace.strip():
        raise click.UsageError(
            f"NAMESPACE {namespace!r} is empty: give a namespace name, or leave it out "
            "for -n/--namespace's"
        )
    if not attr.strip():
        raise click.UsageError(f"NAME {attr!r} is empty: give a search attribute name")
    return namespace, attr


@search_attribute.command("add")
@click.argument("args", nargs=-1, metavar="[NAMESPACE] NAME")
@click.option("--name", default=None, help="The attribute's name (instead of NAME).")
@click.option("--type", "type_", type=click.Choice(TYPES, case_sensitive=False), required=True)
@pass_state
def sa_add(st: CliState, args: tuple[str, ...], name: str | None, type_: str, output: str) -> None:
    """Register custom search attribute NAME in NAMESPACE (safe to run twice)."""
    namespace, attr = _ns_and_name(st, args, name)
    res = st.run(lambda c: c.add_search_attribute(attr, type_, namespace=namespace))
    emit(
        {"namespace": namespace, **res},
        output,
        lambda d: Text(
            f"{'added' if d['changed'] else 'already registered:'} {d['name']} ({d['type']}) "
            f"in {d['namespace']}"
        ),
    )


@search_attribute.command("remove")
@click.argument("args", nargs=-1, metavar="[NAMESPACE] NAME")
@click.option("--name", default=None, help="The attribute's name (instead of NAME).")
@pass_state
def sa_remove(st: CliState, args: tuple[str, ...], name: str | None, output: str) -> None:
    """Unregister NAME: runs keep their values, queries no longer see it."""
    namespace, attr = _ns_and_name(st, args, name)
    res = st.run(lambda c: c.remove_search_attribute(attr, namespace=namespace))
    emit(
        {"namespace": namespace, **res},
        output,
        lambda d: Text(
            f"{'removed' if d['changed'] else 'not registered:'} {d['name']} from {d['namespace']}"
        ),
    )


@search_attribute.command("list")
@click.argument(
    "namespace",
    required=False,
    callback=given("a namespace name, or leave it out for -n/--namespace's"),
)
@pass_state
def sa_list(st: CliState, namespace: str | None, output: str) -> None:
    """System and custom search attributes of NAMESPACE (default: -n/--namespace)."""
    ns = st.namespace if namespace is None else namespace
    emit(
        st.run(lambda c: c.list_search_attributes(namespace=ns)),
        output,
        lambda d: table(["name", "type", "kind"], [[a["name"], a["type"], a["kind"]] for a in d]),
    )


@click.command("count", cls=BatonCommand)
@click.option("--query", "-q", default="", help="List filter; empty counts every run.")
@click.option(
    "--group-by",
    default=None,
    help="e.g. ExecutionStatus, WorkflowType (or end the query with GROUP BY ATTR).",
)
@click.option(
    "--include-system",
    is_flag=True,
    help="Count Baton's own workflows (batch jobs, schedules) too.",
)
@pass_state
def workflow_count(
    st: CliState, query: str, group_by: str | None, include_system: bool, output: str
) -> None:
    """Count runs matching a query, optionally per value of an attribute."""

    async def go(c: Client) -> dict[str, Any]:
        r = await c.count_workflows(query, group_by=group_by, include_system=include_system)
        return {"count": r.count, "groups": r["groups"]}

    res = st.run(go)

    def view(d: dict[str, Any]) -> Any:
        if not group_by and not d["groups"]:
            return Text(f"{d['count']} runs")
        # a GROUP BY in the query groups as --group-by does, and names the column
        in_query = _GROUP_BY.search(query)
        return table(
            [group_by or (in_query.group(1) if in_query else "value"), "runs"],
            [[g["value"], g["count"]] for g in d["groups"]] + [["total", d["count"]]],
        )

    emit(res, output, view)


@click.command("reset", cls=BatonCommand)
@click.argument("workflow_id", callback=given("a workflow id"))
@click.option(
    "--run-id",
    default=None,
    callback=run_id_value,
    help="The run to reset (default: the current one).",
)
@click.option(
    "--event-id",
    type=click.IntRange(1),
    default=None,
    help="A WorkflowTaskCompleted/-Failed/-TimedOut event id.",
)
@click.option(
    "--to",
    "to",
    type=click.Choice(
        [
            "first-workflow-task",
            "last-workflow-task",
            "FirstWorkflowTask",
            "LastWorkflowTask",
            "first",
            "last",
        ],
        case_sensitive=False,
    ),
    default=None,
    help="Instead of --event-id: the first, or the last completed, workflow task.",
)
@click.option(
    "--reapply",
    type=click.Choice(["all", "signals", "none"]),
    default="all",
    show_default=True,
    help="Re-apply what came after the reset point: signals and accepted updates (all), "
    "signals only, or none.",
)
@click.option(
    "--reason",
    required=True,
    callback=given("why, recorded in both runs' histories"),
    help="Recorded in both runs' histories.",
)
@click.option(
    "--request-id",
    default=None,
    callback=not_empty,
    help="A retried reset with this id finds the reset it made instead of resetting again.",
)
@pass_state
def workflow_reset(
    st: CliState,
    workflow_id: str,
    run_id: str | None,
    event_id: int | None,
    to: str | None,
    reapply: str,
    reason: str,
    request_id: str | None,
    output: str,
) -> None:
    """Reset a workflow to a workflow task: a new run re-runs it on today's code."""
    if (event_id is None) == (to is None):
        raise click.UsageError("give exactly one of --event-id or --to")

    async def go(c: Client) -> dict[str, Any]:
        h = c.get_workflow_handle(workflow_id, run_id=run_id)
        return await h.reset_details(
            reason=reason,
            event_id=event_id,
            to=to,
            reapply=reapply,
            request_id=request_id,
        )

    emit(st.run(go), output, lambda d: kv_table(d, title="Workflow reset"))


def register_visibility(cli: click.Group) -> None:
    """Add search-attribute, count and reset to the namespace and workflow groups."""
    namespace = cli.commands["namespace"]
    workflow = cli.commands["workflow"]
    assert isinstance(namespace, click.Group) and isinstance(workflow, click.Group)
    namespace.add_command(search_attribute)
    workflow.add_command(workflow_count)
    workflow.add_command(workflow_reset)
