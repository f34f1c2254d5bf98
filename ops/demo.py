"""`baton demo`: workflows that finish through a killed worker and a region move.

It brings the local stack up, starts a worker process, starts a few Order
workflows, SIGKILLs the worker while their card charges run, starts a fresh
worker, and shows how every order finished: the charge resumed from its last
heartbeat on a new attempt, and nothing that had completed ran again. Then
more orders start, and while they run `baton failover` moves their namespace
to the other region, where they finish (see ``ops.demo_failover``).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from ops.bench import start_worker
from ops.devstack import StackInfo, stack_up
from ops.output import print_wide
from store.config import load_config
from worker import Client

QUEUE = "demo"


def _start_worker(info: StackInfo, log: Path) -> subprocess.Popen[bytes]:
    args = [sys.executable, "-m", "ops.apps", "--task-queue", QUEUE]
    for url in info.endpoints:
        args += ["--url", url]
    return start_worker(args, log)


def _heartbeat_step(activity: dict[str, Any]) -> int:
    """The step an activity last reported in its heartbeat (-1: none yet)."""
    details = activity.get("heartbeat_details") or []
    if not details:
        return -1
    return int(json.loads(base64.b64decode(details[0]["data"])))


async def _charging(client: Client, ids: list[str]) -> list[str]:
    """Orders whose card charge runs and has reported progress past its first step."""
    out = []
    for wid in ids:
        desc = await client.get_workflow_handle(wid).describe()
        if any(
            a["activity_type"] == "charge_card"
            and a["state"] == "started"
            and _heartbeat_step(a) >= 1
            for a in desc["pending_activities"]
        ):
            out.append(wid)
    return out


async def _charge_started(client: Client, ids: list[str]) -> list[str]:
    """Orders whose card charge runs (its heartbeats may not have reached the
    server yet: the SDK sends them throttled)."""
    out = []
    for wid in ids:
        desc = await client.get_workflow_handle(wid).describe()
        if any(
            a["activity_type"] == "charge_card" and a["state"] == "started"
            for a in desc["pending_activities"]
        ):
            out.append(wid)
    return out


async def run_demo(
    state_dir: str | None = None, *, orders: int = 5, console: Console | None = None
) -> dict[str, Any]:
    """Run the demo; returns what happened (also printed when ``console`` is given)."""
    con = console or Console(quiet=True)
    info = stack_up(state_dir, console=con)
    logs = info.state_dir / "logs"
    logs.mkdir(exist_ok=True)
    run = f"{int(time.time()) % 100000:05d}"
    ids = [f"order-{run}-{i}" for i in range(1, orders + 1)]
    report: dict[str, Any] = {"orders": [], "killed_worker": None}
    async with await Client.connect(info.endpoints, namespace="default") as client:
        first = _start_worker(info, logs / "demo-worker-1.log")
        try:
            for i, wid in enumerate(ids, start=1):
                await client.start_workflow("Order", wid, 100 * i, id=wid, task_queue=QUEUE)
            con.print(f"started {orders} Order workflows on task queue [bold]{QUEUE}[/]")
            deadline = time.monotonic() + 60
            charging: list[str] = []
            with con.status("waiting until the card charges are running..."):
                while time.monotonic() < deadline:
                    charging = await _charging(client, ids)
                    if len(charging) == len(ids):
                        break
                    await asyncio.sleep(0.2)
            os.kill(first.pid, signal.SIGKILL)
            first.wait(10)
            report["killed_worker"] = {"pid": first.pid, "orders_mid_charge": len(charging)}
            con.print(
                f"[red]SIGKILL[/] worker {first.pid} while {len(charging)} card "
                "charges were running"
            )
        finally:
            if first.poll() is None:
                first.kill()
        second = _start_worker(info, logs / "demo-worker-2.log")
        con.print(f"started a fresh worker {second.pid}")
        try:
            with con.status("waiting for every order to finish..."):
                results = await asyncio.gather(
                    *[client.get_workflow_handle(wid).result(timeout=120) for wid in ids]
                )
            for wid, res in zip(ids, results, strict=True):
                events = await client.get_workflow_handle(wid).history()
                kinds = [e["event_type"] for e in events]
                report["orders"].append(
                    {
                        "workflow_id": wid,
                        "charge_attempt": res["charge"]["attempt"],
                        "resumed_from_heartbeat": res["charge"]["resumed_from_step"],
                        "charged_by_worker": res["charge"]["worker_pid"],
                        "activities_completed": kinds.count("ActivityTaskCompleted"),
                        "events": len(events),
                        "receipt": res["receipt"],
                    }
                )
            if console is not None:
                _print_orders(console, report, orders, second.pid)
            from ops.demo_failover import failover_act  # replication code, on demand

            report["failover"] = await failover_act(
                load_config(info.config_path), client, con, run, _charge_started, orders=orders
            )
        finally:
            second.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                second.wait(15)
            if second.poll() is None:
                second.kill()
    report["all_completed"] = len(report["orders"]) == orders
    return report


def _print_orders(console: Console, report: dict[str, Any], orders: int, pid: int) -> None:
    table = Table(title="Orders after the worker was killed")
    for col in (
        "workflow",
        "charge attempt",
        "resumed at step",
        "charged by worker",
        "activities",
        "events",
    ):
        table.add_column(col, overflow="fold")
    for o in report["orders"]:
        table.add_row(
            o["workflow_id"],
            str(o["charge_attempt"]),
            str(o["resumed_from_heartbeat"]),
            str(o["charged_by_worker"]),
            str(o["activities_completed"]),
            str(o["events"]),
        )
    print_wide(table, console)
    console.print(
        f"all {orders} orders completed; every charge that was cut off resumed on worker "
        f"{pid} from its last heartbeat, and each activity completed exactly once.\n"
        "Next, the same kind of orders move to another region while they run."
    )
