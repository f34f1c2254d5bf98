"""`baton failover` and `baton replication ...`: moving namespaces and watching the stream."""

from __future__ import annotations

import sys
from typing import Any

import click
from rich.console import Group, RenderableType
from rich.text import Text

from ops.cli_base import Seconds, given
from ops.cli_tools import run_fast
from ops.output import emit, err_console, kv_table, table
from store.config import BatonConfig
from store.errors import Unavailable

#: A dead letter's id: a positive bigint, checked before a database sees it.
DLQ_ID = click.IntRange(1, 2**63 - 1)


def register_replication(cli: click.Group) -> None:
    """Add failover and the replication commands to the CLI group."""

    @cli.command("failover")
    @click.argument("namespace", callback=given("a namespace name"))
    @click.option(
        "--to",
        "target",
        required=True,
        callback=given("a region name"),
        help="Region to move the namespace to.",
    )
    @click.option(
        "--timeout",
        "timeout_s",
        type=Seconds(),
        default=60.0,
        show_default=True,
        help="Seconds the target may take to catch up before the move is undone.",
    )
    @click.option(
        "--force",
        is_flag=True,
        help="Promote the target at once, for an active region that is down. What it had "
        "not shipped is archived as conflicts when it returns.",
    )
    @click.option(
        "--allow-behind",
        is_flag=True,
        help="With --force: promote the target even if another standby has applied more "
        "of the lost region's stream.",
    )
    @click.pass_context
    def failover(
        ctx: click.Context,
        namespace: str,
        target: str,
        timeout_s: float,
        force: bool,
        allow_behind: bool,
        output: str,
    ) -> None:
        """Move NAMESPACE, with its running workflows, to another region.

        Without --force this is a graceful handover with nothing lost. Naming
        the region NAMESPACE is still active in undoes a handover that a
        killed failover left behind (its writes are refused until then).
        """
        from replication.failover import forced_failover, graceful_failover

        if allow_behind and not force:
            raise click.UsageError(
                "--allow-behind goes with --force only: a graceful failover drains the "
                "stream, so its target is never behind"
            )
        config = ctx.find_root().obj.load()
        with err_console.status(f"moving {namespace} to {target}...") as status:
            if force:
                result = run_fast(
                    forced_failover(
                        config,
                        namespace,
                        target,
                        progress=status.update,
                        allow_behind=allow_behind,
                    )
                )
            else:
                result = run_fast(
                    graceful_failover(
                        config, namespace, target, timeout_s=timeout_s, progress=status.update
                    )
                )

        def render(d: dict[str, Any]) -> RenderableType:
            if d.get("already_active"):
                return Text(
                    f"{d['namespace']} is already active in {d['target']} (failover version "
                    f"{d['version']}): nothing moved"
                )
            if d.get("handover_finished"):
                return Text(
                    f"{d['namespace']} was already active in {d['target']} (failover version "
                    f"{d['version']}); {d['source']}, left in handover by a failover that did "
                    "not end, is a standby now"
                )
            if d["handover_abandoned"]:
                return Text(
                    f"{d['namespace']} was left in handover by a failover that did not end; "
                    f"it is active in {d['source']} again (failover version {d['version']}): "
                    "nothing moved"
                )
            return kv_table(
                {
                    "namespace": d["namespace"],
                    "from": d["source"],
                    "to": d["target"],
                    "failover version": d["version"],
                    "open workflows moved": d["workflows_rebuilt"],
                    "forced": d["forced"],
                    "seconds": d["seconds"],
                },
                title="Failover",
            )

        emit(result.as_dict(), output, render)
        if force and not result.already_active:
            _warn_if_unserved(config, namespace, target)

    @cli.group("replication", cls=type(cli))
    def replication_group() -> None:
        """Cross-region replication through Kafka."""

    @replication_group.command("status")
    @click.option(
        "--namespace",
        default=None,
        callback=given("a namespace name, or leave the option out for every namespace"),
        help="Only this namespace's rows.",
    )
    @click.pass_context
    def replication_status_cmd(ctx: click.Context, namespace: str | None, output: str) -> None:
        """Lag of each region behind each other one, per source topic and per namespace.

        Messages not yet applied (lag msgs), seconds behind (lag s), the source's
        outbox backlog, partitions applied from (parts) and dead letters (dlq);
        "(all)" rows are the whole topic. A namespace's message count reads the keys of its pending
        messages (at most 10,000 a partition); past that it is a lower bound.
        Exits with status 1 when a figure could not be read (a region's
        database or the broker unreachable: "unreachable" in the table, null in JSON).
        """
        from replication.status import replication_status

        config = ctx.find_root().obj.load()
        lags = [lag.as_dict() for lag in run_fast(replication_status(config, namespace))]

        def render(rows: list[dict[str, Any]]) -> RenderableType:
            if not rows and namespace is not None and config.kafka_bootstrap:
                return Text(f"namespace {namespace} has one region here: nothing of it replicates")
            if not rows:
                return Text("replication is off: the config names no Kafka or one region")
            return table(
                [
                    "namespace",
                    "region",
                    "behind",
                    "lag msgs",
                    "lag s",
                    "outbox",
                    "parts",
                    "dlq",
                ],
                [
                    [
                        r["namespace"] or "(all)",
                        r["region"],
                        r["source"],
                        _n(r["consumer_lag_messages"])
                        if r["lag_exact"] or r["consumer_lag_messages"] is None
                        else f"≥{r['consumer_lag_messages']}",
                        _n(r["time_lag_s"]),
                        _n(r["source_outbox_backlog"]),
                        f"{_n(r['applied_partitions'])}/{_n(r['partitions'])}",
                        _n(r["dead_letters"]),
                    ]
                    for r in rows
                ],
                title="Replication",
            )

        emit(lags, output, render)
        blind = sorted(
            {
                f"{r['region']} behind {r['source']}"
                for r in lags
                if None in (r["consumer_lag_messages"], r["source_outbox_backlog"])
                or None in (r["dead_letters"], r["applied_partitions"], r["partitions"])
            }
        )
        if blind:
            err_console.print(
                f"error [UNAVAILABLE]: could not read {', '.join(blind)}: check that each "
                "region's database (its dsn) and the Kafka broker are up, then run it again"
            )
            ctx.exit(1)

    @replication_group.command("verify")
    @click.argument("namespace", callback=given("a namespace name"))
    @click.pass_context
    def verify_cmd(ctx: click.Context, namespace: str, output: str) -> None:
        """Compare every workflow history of NAMESPACE across its regions by checksum.

        Exits with status 1 when any run differs or a region of the namespace
        does not hold it.
        """
        from replication.verify import verify_namespace

        config = ctx.find_root().obj.load()
        with err_console.status(f"checksumming {namespace} in every region..."):
            result = run_fast(verify_namespace(config, namespace))

        def render(d: dict[str, Any]) -> RenderableType:
            head = kv_table(
                {
                    "namespace": d["namespace"],
                    "regions": ", ".join(d["regions"]),
                    "runs compared": d["runs_compared"],
                    "differences": len(d["differences"]),
                    **(
                        {"namespace missing in": ", ".join(d["namespace_missing"])}
                        if d["namespace_missing"]
                        else {}
                    ),
                    "result": "clean" if d["clean"] else "DIFFERENT",
                },
                title="Verify",
            )
            if not d["differences"]:
                return head
            rows = []
            for diff in d["differences"][:200]:
                cells = [diff["workflow_id"], diff["run_id"][:8]]
                for r in d["regions"]:
                    v = diff["regions"].get(r)
                    cells.append(
                        "missing" if v is None else f"{v['events']} ev {v['checksum'][:8]}"
                    )
                rows.append(cells)
            return Group(head, table(["workflow", "run", *d["regions"]], rows, title="Differences"))

        emit(result.as_dict(), output, render)
        if not result.clean:
            sys.exit(1)

    @replication_group.command("conflicts")
    @click.option(
        "--namespace",
        default=None,
        callback=given("a namespace name, or leave the option out for every namespace"),
        help="Only this namespace.",
    )
    @click.option(
        "--region",
        default=None,
        callback=given("a region name, or leave the option out for every region"),
        help="Only this region's archive.",
    )
    @click.option("--limit", type=click.IntRange(1, 100_000), default=1000, show_default=True)
    @click.pass_context
    def conflicts_cmd(
        ctx: click.Context, namespace: str | None, region: str | None, limit: int, output: str
    ) -> None:
        """Branches that lost to a higher failover version, archived in each region."""
        from replication.admin import list_conflicts

        config = ctx.find_root().obj.load()
        unreachable: list[str] = []
        rows = run_fast(list_conflicts(config, namespace, region, limit, unreachable=unreachable))
        _all_unreachable(config, unreachable)

        def render(rs: list[dict[str, Any]]) -> RenderableType:
            if not rs:
                return Text("no conflicts archived")
            return table(
                [
                    "region",
                    "id",
                    "namespace",
                    "workflow",
                    "kind",
                    "from",
                    "events",
                    "versions",
                    "re-applied",
                    "at",
                ],
                [
                    [
                        r["region"],
                        str(r["id"]),
                        r["namespace"],
                        r["workflow_id"],
                        r["kind"],
                        r["source_region"],
                        f"{r['first_event_id']}..{r['last_event_id']}",
                        f"{r['losing_version']} < {r['winning_version']}",
                        ", ".join(f"{x['event_type']}: {x['outcome']}" for x in r["reapplied"])
                        or "-",
                        str(r["created_at"])[:19],
                    ]
                    for r in rs
                ],
                title="Replication conflicts",
            )

        emit(rows, output, render)
        _exit_if_unreachable(ctx, unreachable, "conflicts")

    @replication_group.group("dlq", cls=type(cli))
    def dlq_group() -> None:
        """Replication messages that failed to apply after bounded retries."""

    @dlq_group.command("list")
    @click.option(
        "--region",
        default=None,
        callback=given("a region name, or leave the option out for every region"),
        help="Only this region.",
    )
    @click.pass_context
    def dlq_list(ctx: click.Context, region: str | None, output: str) -> None:
        """Dead letters of every region (or one)."""
        from replication.admin import list_dead_letters

        config = ctx.find_root().obj.load()
        unreachable: list[str] = []
        rows = run_fast(list_dead_letters(config, region, unreachable=unreachable))
        _all_unreachable(config, unreachable)

        def render(rs: list[dict[str, Any]]) -> RenderableType:
            if not rs:
                return Text("no dead letters")
            return table(
                [
                    "region",
                    "id",
                    "source",
                    "partition",
                    "offset",
                    "workflow",
                    "type",
                    "attempts",
                    "error",
                ],
                [
                    [
                        r["region"],
                        str(r["id"]),
                        r["source_region"],
                        str(r["kafka_partition"]),
                        str(r["kafka_offset"]),
                        f"{r['namespace']}/{r['workflow_id']}",
                        r["type"] or "?",
                        str(r["attempts"]),
                        r["error"][:80],
                    ]
                    for r in rs
                ],
                title="Dead letters",
            )

        emit(rows, output, render)
        _exit_if_unreachable(ctx, unreachable, "dead letters")

    @dlq_group.command("retry")
    @click.argument("dlq_id", type=DLQ_ID)
    @click.option(
        "--region",
        required=True,
        callback=given("the region whose dead letter this is"),
        help="Region whose dead letter this is.",
    )
    @click.pass_context
    def dlq_retry(ctx: click.Context, dlq_id: int, region: str, output: str) -> None:
        """Apply dead letter DLQ_ID again; on success it leaves the table."""
        from replication.admin import retry_dead_letter

        config = ctx.find_root().obj.load()
        result = run_fast(retry_dead_letter(config, region, dlq_id))
        emit(result, output, lambda d: Text(f"dead letter {d['id']} applied in {d['region']}"))

    @dlq_group.command("purge")
    @click.argument("dlq_id", type=DLQ_ID, required=False)
    @click.option(
        "--region",
        required=True,
        callback=given("the region whose dead letters to purge"),
        help="Region whose dead letters to purge.",
    )
    @click.option("--all", "everything", is_flag=True, help="Purge every dead letter.")
    @click.pass_context
    def dlq_purge(
        ctx: click.Context, dlq_id: int | None, region: str, everything: bool, output: str
    ) -> None:
        """Drop dead letter DLQ_ID (or every one, with --all) without applying it."""
        from replication.admin import purge_dead_letters

        # Which one a command line with both meant is a guess; neither names nothing.
        if dlq_id is not None and everything:
            raise click.UsageError(
                f"give DLQ_ID or --all, not both: `purge {dlq_id} --region {region}` drops that "
                f"dead letter, `purge --all --region {region}` every one of {region}"
            )
        if dlq_id is None and not everything:
            raise click.UsageError(
                "name the dead letter to drop (DLQ_ID, as `baton replication dlq list` shows "
                "it) or pass --all to drop every one of the region"
            )
        config = ctx.find_root().obj.load()
        ids = run_fast(purge_dead_letters(config, region, dlq_id, everything=everything))
        emit(
            {"region": region, "purged": ids},
            output,
            lambda d: Text(f"purged {len(d['purged'])} dead letter(s) in {d['region']}"),
        )


def _all_unreachable(config: BatonConfig, unreachable: list[str]) -> None:
    """Raise when no region's database answered: there is nothing to show."""
    if unreachable and len(unreachable) == len(config.regions):
        raise Unavailable(
            f"cannot reach the database of any region ({', '.join(unreachable)}): check that "
            "they are up and their dsn in the config, then run this again"
        )


def _exit_if_unreachable(ctx: click.Context, unreachable: list[str], what: str) -> None:
    """After the rows of the regions that answered, say which did not, and exit 1."""
    if unreachable:
        err_console.print(
            f"error [UNAVAILABLE]: could not read the {what} of {', '.join(unreachable)}: the "
            "rows above are the other regions'; check that its database is up, then run "
            "this again"
        )
        ctx.exit(1)


def _n(value: float | int | None) -> str:
    if value is None:
        return "unreachable"
    return f"{value:.1f}" if isinstance(value, float) else str(value)


def _warn_if_unserved(config: BatonConfig, namespace: str, target: str) -> None:
    """Say so on stderr when no server of the region a forced failover
    promoted answers: the move is made (a lost region is worse), but nothing
    takes the namespace's writes, dispatches its tasks or fires its timers
    until its servers start, and the table alone reads as all done."""
    from replication.readiness import serving_problem

    why = run_fast(serving_problem(config, target, wait_s=2.0))
    if why is None:
        return
    url = config.regions[target].url
    err_console.print(
        f"note: no server of {target} answers at {url}/healthz ({why}): {namespace} is "
        f"active there, but nothing takes its writes, dispatches its tasks or fires its "
        f"timers until they start (`baton server --region {target}`)",
        markup=False,
        highlight=False,
    )
