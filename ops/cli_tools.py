"""`baton demo` and `baton bench`: the commands that run Baton end to end."""

from __future__ import annotations

import asyncio
import signal
import threading
import time
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import click
from rich.console import RenderableType
from rich.text import Text

from ops import devstack
from ops.bench import run_bench, start_extra_servers, stop_processes
from ops.cli_base import CliInputError
from ops.demo import run_demo
from ops.output import console, emit, err_console, kv_table, table
from store.config import load_config

T = TypeVar("T")


def run_fast(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine on uvloop when it is installed (it is with uvicorn[standard]).

    In the main thread SIGTERM stops it as Ctrl-C does: the coroutine is
    cancelled and its cleanup runs (a failover undoes its handover, a
    benchmark stops its processes), then KeyboardInterrupt is raised. A plain
    SIGTERM, as ``timeout`` and process supervisors send, would end the
    process on the spot and leave a namespace in handover, refusing writes.
    """
    try:
        import uvloop
    except ImportError:
        run: Callable[[Coroutine[Any, Any, T]], T] = asyncio.run
    else:
        run = uvloop.run
    if threading.current_thread() is not threading.main_thread():
        return run(coro)  # signal handlers belong to the main thread
    return run(_cancelled_by_sigterm(coro))


async def _cancelled_by_sigterm(coro: Coroutine[Any, Any, T]) -> T:
    """Await ``coro``; a SIGTERM meanwhile cancels it and raises KeyboardInterrupt.

    Handled here rather than by passing SIGTERM on as SIGINT: a process started
    in the background of a script ignores SIGINT, and would then ignore SIGTERM too.
    """
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None
    terminated = False

    def on_sigterm() -> None:
        nonlocal terminated
        terminated = True
        task.cancel()

    loop.add_signal_handler(signal.SIGTERM, on_sigterm)
    try:
        return await coro
    except asyncio.CancelledError:
        if terminated:
            raise KeyboardInterrupt from None
        raise
    finally:
        loop.remove_signal_handler(signal.SIGTERM)


def register_tools(cli: click.Group) -> None:
    """Add the demo and benchmark commands to the CLI group."""

    @cli.command("demo")
    @click.option("--state-dir", default=None, help="State folder of the local stack.")
    @click.option(
        "--orders",
        type=click.IntRange(1, 100),
        default=5,
        show_default=True,
        help="Order workflows to run.",
    )
    def demo(state_dir: str | None, orders: int, output: str) -> None:
        """Bring the local stack up and run workflows through a SIGKILLed worker."""
        show = console if output == "table" else None
        report = run_fast(run_demo(state_dir, orders=orders, console=show))
        if output == "json":
            emit(report, output, lambda d: None)

    @cli.command("bench")
    @click.option("--state-dir", default=None, help="State folder of the local stack.")
    @click.option("--workflows", type=click.IntRange(1, 1_000_000), default=1000, show_default=True)
    @click.option(
        "--concurrency",
        type=click.IntRange(1, 1000),
        default=50,
        show_default=True,
        help="Concurrent starters, each starting a workflow and awaiting its result.",
    )
    @click.option(
        "--region",
        "bench_region",
        default=None,
        help="Region to run in (default: the stack's first).",
    )
    @click.option(
        "--server-processes",
        type=click.IntRange(1, 16),
        default=2,
        show_default=True,
        help="Server processes for the region (the stack's one plus extra ones sharing its port).",
    )
    @click.option(
        "--replicated",
        is_flag=True,
        help="Run in a namespace of every region and measure each run's replication lag.",
    )
    @click.option(
        "--open-loop",
        is_flag=True,
        help="Starters only start workflows (no waiting), then every result is awaited.",
    )
    @click.option(
        "--rate",
        type=click.FloatRange(0.1, 10_000),
        default=None,
        help="Start workflows at this steady rate (per second), then await every result.",
    )
    @click.option(
        "--workers",
        type=click.IntRange(1, 16),
        default=1,
        show_default=True,
        help="Worker processes polling the benchmark's task queue (each with its own cache).",
    )
    @click.option(
        "--sleeping",
        type=click.IntRange(0, 1_000_000),
        default=0,
        show_default=True,
        help="Open workflows asleep on a two-hour timer, started (and settled) before the run.",
    )
    @click.option(
        "--failover",
        "failover_bench",
        is_flag=True,
        help="Instead: time a graceful failover with --workflows open workflows, and a forced "
        "failover under load until the first progress in the new region.",
    )
    @click.option(
        "--visibility",
        "visibility_bench",
        is_flag=True,
        help="Instead: p50/p99 of list pages and counts in a generated namespace of --runs runs.",
    )
    @click.option(
        "--query-history",
        type=click.IntRange(100, 1_000_000),
        default=None,
        help="Instead: time a query on a run of this many history events, answered by a "
        "worker with an empty cache (and its fetch, decode and replay in this process).",
    )
    @click.option(
        "--runs",
        type=click.IntRange(1000, 10_000_000),
        default=1_000_000,
        show_default=True,
        help="Runs in the generated namespace (--visibility).",
    )
    def bench(
        state_dir: str | None,
        visibility_bench: bool,
        runs: int,
        workflows: int,
        concurrency: int,
        bench_region: str | None,
        server_processes: int,
        replicated: bool,
        open_loop: bool,
        rate: float | None,
        workers: int,
        sleeping: int,
        failover_bench: bool,
        query_history: int | None,
        output: str,
    ) -> None:
        """Workflows per second and start-to-result latency of ThreeSteps (3 activities)."""
        info = devstack.stack_up(state_dir, console=err_console)
        region = bench_region or info.regions[0]
        logs = info.state_dir / "logs"
        if visibility_bench:
            from ops.bench_visibility import run_visibility_bench

            figures = run_fast(
                run_visibility_bench(
                    load_config(info.config_path), info.url(region), region, runs=runs
                )
            )
            emit(
                figures,
                output,
                lambda d: table(
                    ["case", "p50 (ms)", "p99 (ms)", "samples"],
                    [[c["case"], c["p50_ms"], c["p99_ms"], c["samples"]] for c in d["cases"]],
                    title=f"{d['namespace']}: {d['runs']:,} runs",
                ),
            )
            return
        if query_history:
            from ops.bench_query import run_query_bench

            figures = run_fast(
                run_query_bench(
                    [info.url(region)],
                    events=query_history,
                    log_dir=logs,
                    show_progress=output == "table",
                )
            )
            emit(figures, output, lambda d: kv_table(d, title="A query on a long history"))
            return
        if failover_bench:
            from ops.bench_failover import run_failover_bench

            other = next(r for r in info.regions if r != region)
            figures = run_fast(
                run_failover_bench(
                    load_config(info.config_path),
                    info.endpoints,
                    region,
                    other,
                    open_workflows=workflows,
                    concurrency=min(concurrency, 20),
                    log_dir=logs,
                    say=err_console.print,
                )
            )
            emit(figures, output, lambda d: kv_table(d, title="Failover timings"))
            return
        if open_loop and rate:
            raise CliInputError("give --open-loop or --rate, not both")
        extra = start_extra_servers(info.config_path, region, server_processes - 1, logs)
        config = load_config(info.config_path)
        target = next((r for r in info.regions if r != region), None)
        cpu_parts = {
            "server": [p for p in [info.servers[region].pid, *(x.pid for x in extra)] if p],
            "postgresql": [info.pg_pid] if info.pg_pid else [],
            "kafka": [info.kafka.pid] if info.kafka and info.kafka.pid else [],
            "standby": [s.pid for r, s in info.servers.items() if r != region and s.pid],
        }
        try:
            time.sleep(2.0 if extra else 0)  # let the extra servers start listening
            result = run_fast(
                run_bench(
                    [info.url(region)],
                    workflows=workflows,
                    concurrency=concurrency,
                    show_progress=output == "table",
                    log_dir=logs,
                    replicate_to=target if replicated else None,
                    config=config,
                    mode="rate" if rate else "open" if open_loop else "closed",
                    rate=rate,
                    source=region,
                    cpu_parts=cpu_parts,
                    workers=workers,
                    sleeping=sleeping,
                )
            )
        finally:
            stop_processes(extra)

        def render(d: dict[str, Any]) -> RenderableType:
            lat = d["latency"]
            rows: dict[str, Any] = {
                "mode": d["mode"] + (f" ({d['rate']}/s)" if d["rate"] else ""),
                "workflows": d["workflows"],
                "concurrent starters": d["concurrency"],
                "server processes": server_processes,
                "worker processes": d["workers"],
                "open workflows asleep beside the run": d["sleeping"],
                "seconds": d["seconds"],
                "workflows/s": d["per_second"],
                f"p50 {lat} (ms)": d["p50_ms"],
                "p90 (ms)": d["p90_ms"],
                "p99 (ms)": d["p99_ms"],
                "max (ms)": d["max_ms"],
                "errors": d["errors"],
                "replication lag p50 / p99 / max (ms)": (
                    f"{d['replication_lag_p50_ms']} / {d['replication_lag_p99_ms']} / "
                    f"{d['replication_lag_max_ms']} ({d['replication_lag_runs']} runs)"
                    if d["replication_lag_runs"]
                    else None
                ),
                "CPU busy (% of all cores)": d["cpu_busy_percent"],
                "worker cache hits (% of tasks of runs seen before)": d["worker_cache_hit_percent"],
                "tasks run ahead: accepted / refused (warm-up included)": (
                    f"{d['tasks_run_ahead'].get('accepted')} / "
                    f"{d['tasks_run_ahead'].get('refused')}"
                ),
                "machine before the run: fixed CPU work / 8 KiB write and fdatasync (ms)": (
                    f"{d['machine']['fixed_cpu_work_ms']} / {d['machine']['fdatasync_8k_ms']}"
                ),
            }
            for part, ms in d["cpu_ms_per_workflow"].items():
                rows[f"CPU ms per workflow: {part}"] = ms
            for proc, lag in d["event_loop_lag_ms"].items():
                rows[f"event-loop lag p50 / p99 (ms), server {proc}"] = (
                    f"{lag['p50']} / {lag['p99']}"
                )
            for r, c in d["db_per_workflow"].items():
                rows[f"per workflow in {r}: transactions / statements"] = (
                    f"{c['transactions']} / {c['statements']}"
                )
            for regions, w in d["wal_per_workflow"].items():
                rows[f"WAL flushes / KiB per workflow, ms a flush ({regions})"] = (
                    f"{w['flushes']} / {w['kib']}, {w['ms_per_flush']}"
                )
            t = kv_table(rows, title="ThreeSteps: x = n, then 3 x `x = await step(x)`")
            return t if d["errors"] == 0 else Text(f"{d['errors']} workflows failed")

        emit({**result.as_dict(), "server_processes": server_processes}, output, render)
