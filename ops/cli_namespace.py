"""``baton namespace``: create and inspect namespaces."""

from __future__ import annotations

import asyncio
from typing import Any

import click
from rich.console import RenderableType
from rich.text import Text

from ops.cli_base import (
    BatonGroup,
    CliInputError,
    CliState,
    Seconds,
    given,
    pass_state,
    split_csv,
)
from ops.output import emit, err_console, kv_table, table
from store.errors import InvalidArgument
from worker.errors import UnavailableError
from worker.wire.requests import namespace_name_problem

__all__ = ["register_namespace"]


# --------------------------------------------------------------------------- namespace


@click.group(cls=BatonGroup)
def namespace() -> None:
    """Create, change and inspect namespaces."""


def _namespace_view(d: dict[str, Any]) -> RenderableType:
    view = dict(d)
    if isinstance(view.get("executions"), dict):
        counts = view["executions"].items()
        view["executions"] = ", ".join(f"{k}={v}" for k, v in counts if v) or "0"
    return kv_table(view)


@namespace.command("create")
@click.argument("name", callback=given("a namespace name"))
@click.option(
    "--regions",
    default=None,
    callback=given("comma-separated region names, or leave the option out for all"),
    help="Comma-separated regions (default: all).",
)
@click.option(
    "--active",
    "active",
    default=None,
    callback=given("a region name, or leave the option out for the first"),
    help="Active region (default: the first).",
)
@click.option("--retention-days", type=click.IntRange(1, 3650), default=7, show_default=True)
@click.option("--description", default="", help="Free text.")
@pass_state
def namespace_create(
    st: CliState,
    name: str,
    regions: str | None,
    active: str | None,
    retention_days: int,
    description: str,
    output: str,
) -> None:
    """Create namespace NAME."""
    region_list = split_csv(regions) or list(st.load().regions)
    active = active or region_list[0]
    # refused as the server would refuse them, before anything is sent: usage errors
    problem = namespace_name_problem(name)
    if problem is not None:
        raise CliInputError(problem)
    try:
        st.load().check_namespace_regions(region_list, active)
    except InvalidArgument as exc:
        raise CliInputError(exc.message) from None
    data = st.run(
        lambda c: c.create_namespace(
            name,
            regions=region_list,
            active_region=active,
            retention_days=retention_days,
            description=description,
        )
    )
    emit(data, output, _namespace_view)


@namespace.command("describe")
@click.argument("name", callback=given("a namespace name"))
@pass_state
def namespace_describe(st: CliState, name: str, output: str) -> None:
    """Show namespace NAME with its execution counts.

    Every region is asked and the newest copy shown, as `namespace list`
    does (a standby's copy does not know of a handover, and one that the
    stream has not reached yet names an earlier active region); with
    --region, that region's copy.
    """
    if st.region:
        data = st.run(lambda c: c.describe_namespace(name))
    else:
        data = asyncio.run(_describe_newest(st, name))
    emit(data, output, _namespace_view)


async def _describe_newest(st: CliState, name: str) -> dict[str, Any]:
    """Namespace ``name`` as the newest copy of the regions that answer says."""
    from replication.versions import row_rank
    from worker import BatonError, Client
    from worker.errors import NamespaceNotActiveError, NamespaceNotFoundError

    cfg = st.load()

    async def ask(region: str) -> dict[str, Any] | BatonError:
        try:
            async with await Client.connect(
                [cfg.region(region).url],
                namespace=st.namespace,
                follow_failover=False,
                # a region that is down costs the answer only this long
                retry_for_s=min(DESCRIBE_RETRY_S, st.request_timeout_s),
                request_timeout_s=st.request_timeout_s,
            ) as client:
                row: dict[str, Any] = await client.describe_namespace(name)
                return row
        except BatonError as exc:
            return exc

    answers = dict(zip(cfg.regions, await asyncio.gather(*map(ask, cfg.regions)), strict=True))
    rows = {r: a for r, a in answers.items() if isinstance(a, dict)}
    if rows:
        newest = max(rows, key=lambda r: row_rank(r, rows[r]))
        return rows[newest]
    errors = [a for a in answers.values() if isinstance(a, BatonError)]
    # a region taken out of the namespace is not where it lives either
    elsewhere = (NamespaceNotFoundError, NamespaceNotActiveError)
    raise next((e for e in errors if not isinstance(e, elsewhere)), errors[0])


@namespace.command("update")
@click.argument("name", callback=given("a namespace name"))
@click.option(
    "--retention-days",
    type=click.IntRange(1, 3650),
    default=None,
    help="Days a closed run is kept before it is deleted.",
)
@click.option("--description", default=None, help="Free text.")
@pass_state
def namespace_update(
    st: CliState, name: str, retention_days: int | None, description: str | None, output: str
) -> None:
    """Change the retention or description of namespace NAME (safe to run twice).

    The change is made in the namespace's active region and replicates to its
    other regions; prints the namespace and the fields that changed.
    """
    if retention_days is None and description is None:
        raise click.UsageError("give --retention-days, --description or both")
    data = st.run(
        lambda c: c.update_namespace(name, retention_days=retention_days, description=description)
    )

    def view(d: dict[str, Any]) -> RenderableType:
        changed = ", ".join(d["changed"]) or "nothing (it was so already)"
        return kv_table({**{k: v for k, v in d.items() if k != "changed"}, "changed": changed})

    emit(data, output, view)


#: How long ``namespace list`` keeps trying a region that does not answer.
LIST_RETRY_S = 5.0
#: How long ``namespace describe`` does (the other regions' copies answer).
DESCRIBE_RETRY_S = 2.0


async def _list_every_region(
    st: CliState, names: list[str]
) -> tuple[list[dict[str, Any]], list[str]]:
    """Every namespace regions ``names`` hold, as its newest copy says, and the
    regions that could not be asked.

    A region holds only the namespaces it is a region of, so one region's
    list misses the namespaces of the others.
    """
    from replication.versions import row_rank
    from worker import BatonError, Client

    cfg = st.load()
    newest: dict[str, tuple[tuple[int, bool], dict[str, Any]]] = {}
    unreachable: list[str] = []
    for name in names:
        url = cfg.region(name).url
        try:
            async with await Client.connect(
                [url],
                namespace=st.namespace,
                retry_for_s=min(LIST_RETRY_S, st.request_timeout_s),
                request_timeout_s=st.request_timeout_s,
            ) as client:
                rows = await client.list_namespaces()
        except BatonError as exc:
            unreachable.append(f"{name} ({exc.code})")
            continue
        for row in rows:
            rank = row_rank(name, row)
            if row["name"] not in newest or rank > newest[row["name"]][0]:
                newest[row["name"]] = (rank, row)
    return [row for _, (_, row) in sorted(newest.items())], unreachable


@namespace.command("list")
@click.option(
    "--region",
    "only_region",
    default=None,
    callback=given("a region name, or leave the option out for every region"),
    help="Only the namespaces this region holds (as `baton --region R namespace list`).",
)
@pass_state
@click.pass_context
def namespace_list(ctx: click.Context, st: CliState, only_region: str | None, output: str) -> None:
    """List the namespaces of every region (or of --region).

    Each namespace is shown as its newest copy says (the highest failover
    version). Exits with status 1 when a region could not be asked: the
    namespaces only it holds are then missing.
    """
    region = only_region or st.region
    names = [region] if region else list(st.load().regions)
    rows, unreachable = asyncio.run(_list_every_region(st, names))
    if len(unreachable) == len(names):
        raise UnavailableError(f"no region answered: {', '.join(unreachable)}")
    emit(
        rows,
        output,
        lambda d: table(
            ["name", "active region", "regions", "version", "state", "retention", "description"],
            [
                [
                    n["name"],
                    n["active_region"],
                    n["regions"],
                    n["failover_version"],
                    n["state"],
                    f"{n['retention_days']} d",
                    n.get("description", ""),
                ]
                for n in d
            ],
        ),
    )
    if unreachable:
        err_console.print(
            f"error [UNAVAILABLE]: could not list {', '.join(unreachable)}: the namespaces "
            "only it holds are missing; check that its server is up, then run it again"
        )
        ctx.exit(1)


@namespace.command("add-region")
@click.argument("name", callback=given("a namespace name"))
@click.argument("region", callback=given("a region name"))
@click.option(
    "--timeout",
    "timeout_s",
    type=Seconds(),
    default=1800.0,
    show_default=True,
    help="Seconds to wait for the region to catch up (run again to resume).",
)
@pass_state
def namespace_add_region(
    st: CliState, name: str, region: str, timeout_s: float, output: str
) -> None:
    """Add REGION to namespace NAME as a standby and backfill its histories.

    Resumable: run it again after an interruption and it carries on from its
    cursor; run again for a region the namespace has, it changes nothing and
    says so (`already_member`). Then `baton failover NAME --to REGION` moves the namespace there.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    from ops.cli_tools import run_fast
    from replication.migration import add_region

    labels = {"enqueue": "runs put on the stream", "apply": f"runs applied in {region}"}
    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
        disable=output == "json",
    ) as bar:
        tasks: dict[str, Any] = {}

        def report(phase: str, done: int, total: int) -> None:
            if phase not in tasks:
                tasks[phase] = bar.add_task(labels[phase], total=total)
            bar.update(tasks[phase], completed=done, total=total)

        result = run_fast(add_region(st.load(), name, region, progress=report, timeout_s=timeout_s))

    def render(d: dict[str, Any]) -> RenderableType:
        if d["already_member"]:
            role = "the active region" if d["region"] == d["source"] else "a standby"
            return Text(f"{d['region']} is {role} of {d['namespace']} already: nothing changed")
        return kv_table(d, title="Region added")

    emit(result.as_dict(), output, render)


@namespace.command("remove-region")
@click.argument("name", callback=given("a namespace name"))
@click.argument("region", callback=given("a region name"))
@pass_state
def namespace_remove_region(st: CliState, name: str, region: str, output: str) -> None:
    """Take standby REGION out of namespace NAME (it keeps what it holds).

    Safe to run again: for a region the namespace does not have, it changes
    nothing and says so (`changed: false`)."""
    from ops.cli_tools import run_fast
    from replication.migration import NotARegion, remove_region

    try:
        left, changed = run_fast(remove_region(st.load(), name, region)), True
    except NotARegion as exc:
        left, changed = exc.details["regions"], False

    def render(d: dict[str, Any]) -> RenderableType:
        if not d["changed"]:
            return Text(f"{region} is not a region of {name}: nothing changed")
        return kv_table({**d, "regions": ", ".join(d["regions"])}, title="Region removed")

    emit(
        {"namespace": name, "removed": region, "regions": left, "changed": changed}, output, render
    )


def register_namespace(cli: click.Group) -> None:
    """Add the ``namespace`` commands to the CLI group."""
    cli.add_command(namespace)
