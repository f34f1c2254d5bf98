"""The demo's second act: orders mid-flight move to the other region and finish there.

Orders are started in the namespace's active region; while their card
charges run, `baton failover` hands the namespace over to another region.
The orders finish there, and the demo shows per-region counts and the
result of `baton replication verify`.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from rich.console import Console
from rich.table import Table

from ops.output import print_wide
from replication.failover import graceful_failover, namespace_row
from replication.sql import QUERIES as Q
from replication.verify import verify_namespace
from store import db
from store.config import BatonConfig
from store.sql import QUERIES as SQ
from worker import Client

NAMESPACE = "default"


async def _region_counts(config: BatonConfig, prefix: str) -> list[dict[str, Any]]:
    out = []
    for name, region in config.regions.items():
        conn = await db.connect(region.dsn)
        try:
            ns = await conn.fetchrow(SQ["get_namespace"], NAMESPACE)
            rows = await conn.fetch(Q["runs_by_status_with_prefix"], NAMESPACE, prefix)
            closed_here = await conn.fetchval(
                Q["completed_under_region"],
                NAMESPACE,
                prefix,
                region.initial_version,
                config.failover_version_increment,
            )
        finally:
            await conn.close()
        out.append(
            {
                "region": name,
                "active": bool(ns and ns["active_region"] == name),
                "failover_version": ns["failover_version"] if ns else None,
                "runs": {r["status"]: r["n"] for r in rows},
                "completed_here": closed_here,
            }
        )
    return out


async def failover_act(
    config: BatonConfig,
    client: Client,
    con: Console,
    run: str,
    charging: Any,
    *,
    orders: int,
) -> dict[str, Any]:
    """Start orders, fail the namespace over mid-flight, wait for them, verify."""
    _, row = await namespace_row(config, NAMESPACE)
    source = row["active_region"]
    target = next(r for r in row["regions"] if r != source)
    prefix = f"move-{run}-"
    ids = [f"{prefix}{i}" for i in range(1, orders + 1)]
    for i, wid in enumerate(ids, start=1):
        await client.start_workflow("Order", wid, 10 * i, id=wid, task_queue="demo")
    con.print(f"\nstarted {orders} more orders in [bold]{source}[/]")
    deadline = time.monotonic() + 60
    with con.status("waiting until their card charges are running..."):
        while time.monotonic() < deadline:
            if len(await charging(client, ids)) == len(ids):
                break
            await asyncio.sleep(0.2)
    moved = await graceful_failover(config, NAMESPACE, target, progress=con.print)
    con.print(
        f"[bold]baton failover {NAMESPACE} --to {target}[/]: {moved.workflows_rebuilt} open "
        f"workflows moved in {moved.seconds:.2f} s (failover version {moved.version})"
    )
    with con.status(f"waiting for every order to finish in {target}..."):
        results = await asyncio.gather(
            *[client.get_workflow_handle(wid).result(timeout=120) for wid in ids]
        )
    deadline = time.monotonic() + 60
    with con.status("comparing every history across the regions..."):
        while True:
            verified = await verify_namespace(config, NAMESPACE)
            if verified.clean or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.5)
    counts = await _region_counts(config, prefix)
    table = Table(title=f"Orders {prefix}* per region after the failover")
    for col in ("region", "active", "failover version", "runs", "completed in this region"):
        table.add_column(col)
    for c in counts:
        table.add_row(
            c["region"],
            "yes" if c["active"] else "standby",
            str(c["failover_version"]),
            ", ".join(f"{k}={v}" for k, v in sorted(c["runs"].items())) or "-",
            str(c["completed_here"]),
        )
    print_wide(table, con)
    con.print(
        f"baton replication verify {NAMESPACE}: "
        + (
            f"[green]clean[/] ({verified.runs_compared} runs equal event for event in "
            f"{', '.join(verified.regions)})"
            if verified.clean
            else f"[red]{len(verified.differences)} runs differ[/]"
        )
    )
    con.print(
        "Look around: [bold]baton workflow list[/], [bold]baton replication status[/], "
        "[bold]baton replication verify default[/]; stop the stack with [bold]baton dev down[/]."
    )
    return {
        "from": source,
        "to": target,
        "failover_seconds": moved.seconds,
        "workflows_moved": moved.workflows_rebuilt,
        "orders_completed": len(results),
        "regions": counts,
        "verify": {"clean": verified.clean, "runs_compared": verified.runs_compared},
    }
