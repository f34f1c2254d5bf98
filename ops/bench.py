"""`baton bench`: throughput and start-to-result latency of the ThreeSteps workflow.

The benchmark runs against a live region (the dev stack by default): it
starts one worker process (or ``--workers`` of them), then N workflows from
C concurrent starters, each of which starts a workflow and waits for its
result. It prints workflows per second and latency percentiles. It is a
measurement, never a test: nothing is asserted about speed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

from ops.bench_measure import (
    ClosedListener,
    CpuMeter,
    db_counters,
    ensure_statement_stats,
    loop_lag_ms,
    loop_lag_read,
    machine_figures,
    run_times,
    wal_counters,
    wal_per_workflow,
)
from store.config import BatonConfig
from worker import Client


@dataclass
class BenchResult:
    workflows: int
    concurrency: int
    seconds: float
    per_second: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    mean_ms: float
    errors: int
    #: closed (starters wait for each result), open (starters fire, then every
    #: result is awaited) or rate (a steady open-loop rate)
    mode: str = "closed"
    rate: float | None = None
    #: what p50..mean measure: start-to-result at the client (closed loop) or
    #: start-to-close in the store (open loop and rate)
    latency: str = "start-to-result"
    replication_lag_p50_ms: float | None = None
    replication_lag_p99_ms: float | None = None
    replication_lag_max_ms: float | None = None
    replication_lag_runs: int = 0
    cpu_ms_per_workflow: dict[str, float] = field(default_factory=dict)
    cpu_busy_percent: float | None = None
    db_per_workflow: dict[str, dict[str, float | None]] = field(default_factory=dict)
    #: the machine before the run (ops/bench_measure.machine_figures)
    machine: dict[str, float] = field(default_factory=dict)
    #: WAL flushes and KiB a workflow and ms a flush, per PostgreSQL cluster
    #: (named by the regions whose databases it holds)
    wal_per_workflow: dict[str, dict[str, float | None]] = field(default_factory=dict)
    workers: int = 1
    #: open workflows asleep on timers beside the measured ones (--sleeping)
    sleeping: int = 0
    #: workflow tasks (of runs that had one before) served from a worker's
    #: cache, in percent; the rest fetched and replayed the history
    worker_cache_hit_percent: float | None = None
    #: workflow tasks the workers ran ahead with an activity's result, recorded
    #: by the server or refused (warm-up runs included)
    tasks_run_ahead: dict[str, int] = field(default_factory=dict)
    #: p50/p99 ms of each server process's event-loop lag during the run,
    #: keyed "region pid" (ops/bench_measure.loop_lag_read)
    event_loop_lag_ms: dict[str, dict[str, float | None]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def progress_bar(show: bool) -> Progress:
    """The benchmarks' progress bar (on stderr; nothing when ``show`` is false)."""
    return Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        disable=not show,
        transient=True,
    )


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def start_worker(args: list[str], log: Path) -> subprocess.Popen[bytes]:
    """The benchmark's worker process (started once; not on the measured path)."""
    with log.open("ab") as fh:
        return subprocess.Popen(
            args, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True, env={**os.environ}
        )


def start_extra_servers(
    config_path: Path, region: str, count: int, log_dir: Path
) -> list[subprocess.Popen[bytes]]:
    """More `baton server` processes for ``region`` on its port (SO_REUSEPORT)."""
    procs = []
    for i in range(count):
        log = log_dir / f"bench-server-{region}-{i + 2}.log"
        with log.open("ab") as fh:
            procs.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "ops.cli",
                        "--config",
                        str(config_path),
                        "server",
                        "--region",
                        region,
                    ],
                    stdout=fh,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )
    return procs


def stop_processes(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        if p.poll() is None:
            p.terminate()
    for p in procs:
        try:
            p.wait(15)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


@dataclass
class _Measure:
    """What a run records on the side: CPU, database counters, standbys' closes."""

    config: BatonConfig | None
    source: str | None
    standbys: list[str]
    cpu: CpuMeter
    counters: dict[str, dict[str, int | None]] = field(default_factory=dict)
    wal: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    loop_lag: dict[str, list[tuple[str, int]]] = field(default_factory=dict)

    def dsn(self, region: str) -> str:
        assert self.config is not None
        return self.config.regions[region].dsn

    async def start(self) -> None:
        for r in self._regions():
            await ensure_statement_stats(self.dsn(r))
        self.counters = {r: await db_counters(self.dsn(r)) for r in self._regions()}
        self.wal = {r: await wal_counters(self.dsn(r)) for r in self._regions()}
        self.loop_lag = await loop_lag_read(self._urls())
        self.cpu.start()

    def _urls(self) -> dict[str, str]:
        config = self.config
        return {r: config.regions[r].url for r in self._regions()} if config else {}

    async def loop_lag_ms(self) -> dict[str, dict[str, float | None]]:
        """Each server process's event-loop lag between :meth:`start` and now."""
        return loop_lag_ms(self.loop_lag, await loop_lag_read(self._urls()))

    def _regions(self) -> list[str]:
        return [r for r in [self.source, *self.standbys] if r is not None and self.config]

    async def stop(
        self, n: int, seconds: float
    ) -> tuple[dict[str, float], float | None, Any, dict[str, dict[str, float | None]]]:
        cpu = self.cpu.stop()
        per_wf = {k: round(v * 1000 / n, 2) for k, v in cpu.items()}
        busy = round(100 * sum(cpu.values()) / (seconds * (os.cpu_count() or 1)), 1)
        per_db: dict[str, dict[str, float | None]] = {}
        for r in self._regions():
            after = await db_counters(self.dsn(r))
            per_db[r] = {}
            for k, b in self.counters[r].items():
                a = after[k]
                per_db[r][k] = round((a - b) / n, 1) if a is not None and b is not None else None
        clusters: dict[str, list[str]] = {}
        for r in self._regions():
            if (w := self.wal[r]) is not None:
                clusters.setdefault(w["cluster"] or r, []).append(r)
        per_wal = {}
        for regions in clusters.values():
            before_wal = self.wal[regions[0]]
            after_wal = await wal_counters(self.dsn(regions[0]))
            if before_wal is not None and after_wal is not None:
                per_wal[", ".join(regions)] = wal_per_workflow(before_wal, after_wal, n)
        return per_wf, (busy if cpu else None), per_db, per_wal


async def run_bench(
    urls: list[str],
    *,
    workflows: int = 1000,
    concurrency: int = 50,
    warmup: int = 50,
    namespace: str | None = None,
    show_progress: bool = True,
    log_dir: Path | None = None,
    replicate_to: str | None = None,
    config: BatonConfig | None = None,
    mode: str = "closed",
    rate: float | None = None,
    source: str | None = None,
    cpu_parts: dict[str, list[int]] | None = None,
    workers: int = 1,
    sleeping: int = 0,
) -> BenchResult:
    """Start a worker process and measure ``workflows`` runs of ThreeSteps.

    ``mode`` closed: each of ``concurrency`` starters starts a workflow and waits
    for its result; open: the starters only start, then every result is
    awaited; rate: one workflow every ``1/rate`` s, then every result is
    awaited. With ``replicate_to`` the namespace spans every region and the
    lag of each run's close into each standby is measured."""
    if mode not in ("closed", "open", "rate"):
        raise ValueError(f"mode is closed, open or rate, not {mode!r}")
    if mode == "rate" and not rate:
        raise ValueError("mode rate needs a rate (workflows per second)")
    ns = namespace or f"bench-{uuid.uuid4().hex[:8]}"
    queue = "bench"
    regions = list(config.regions) if (config and replicate_to) else None
    standbys = [r for r in (regions or []) if r != source] if source else []
    async with await Client.connect(urls, namespace=ns) as client:
        try:
            await client.create_namespace(
                ns, regions=regions, active_region=source if regions else None
            )
        except Exception as exc:  # an existing namespace is fine
            if getattr(exc, "code", "") != "NAMESPACE_ALREADY_EXISTS":
                raise
        logs = log_dir or Path(".")
        machine = machine_figures(logs)  # before the workers start and load it
        args = [sys.executable, "-m", "ops.apps", "--namespace", ns, "--task-queue", queue]
        for u in urls:
            args += ["--url", u]
        stats = [logs / f"bench-worker-{i + 1}.json" for i in range(workers)]
        for f in stats:
            f.unlink(missing_ok=True)
        procs = [
            start_worker([*args, "--stats-file", str(f)], logs / f"bench-worker-{i + 1}.log")
            for i, f in enumerate(stats)
        ]
        parts = {**(cpu_parts or {}), "worker": [p.pid for p in procs]}
        measure = _Measure(
            config if source else None,
            source,
            standbys,
            CpuMeter(parts, with_children={"postgresql"}),
        )
        try:
            if sleeping:
                from ops.bench_sleeping import start_sleepers

                if source is None or config is None:
                    raise ValueError("--sleeping needs the region's database (config and source)")
                await start_sleepers(
                    client, queue, sleeping, measure.dsn(source), show_progress=show_progress
                )
            # Warm up: connections, caches and the worker's first poll.
            await asyncio.gather(
                *[
                    client.execute_workflow("ThreeSteps", i, id=f"warmup-{i}", task_queue=queue)
                    for i in range(warmup)
                ]
            )
            progress = progress_bar(show_progress)
            async with contextlib.AsyncExitStack() as stack:
                listeners = [
                    await stack.enter_async_context(ClosedListener(measure.dsn(r), ns))
                    for r in standbys
                ]
                await measure.start()
                with progress:
                    task_id = progress.add_task(f"ThreeSteps ({mode})", total=workflows)
                    t_start = time.perf_counter()
                    latencies, errors = await _drive(
                        client, queue, workflows, concurrency, mode, rate, progress, task_id
                    )
                    elapsed = time.perf_counter() - t_start
                cpu, busy, per_db, per_wal = await measure.stop(workflows, elapsed)
                loop_lag = await measure.loop_lag_ms()
                ids = [f"wf-{i}" for i in range(workflows)]
                lags: list[float] = []
                if source is not None and config is not None:
                    times = await run_times(config.regions[source].dsn, ns, ids)
                    if mode != "closed":
                        latencies = [(c - s) * 1000 for s, c in times.values()]
                    for lst in listeners:
                        await _until_applied(lst, set(times))
                        lags += [
                            (lst.applied[w] - times[w][1]) * 1000 for w in times if w in lst.applied
                        ]
        finally:
            stop_processes(procs)
    done = workflows - errors
    hits, misses = _cache_figures(stats)
    run_ahead = _run_ahead_figures(stats)

    def r1(x: float) -> float:
        return round(x, 1)

    return BenchResult(
        workflows=workflows,
        concurrency=concurrency,
        seconds=round(elapsed, 3),
        per_second=r1(done / elapsed),
        p50_ms=r1(percentile(latencies, 0.50)),
        p90_ms=r1(percentile(latencies, 0.90)),
        p99_ms=r1(percentile(latencies, 0.99)),
        max_ms=r1(max(latencies or [0])),
        mean_ms=r1(statistics.fmean(latencies) if latencies else float("nan")),
        errors=errors,
        mode=mode,
        rate=rate,
        latency="start-to-result" if mode == "closed" else "start-to-close",
        replication_lag_p50_ms=r1(percentile(lags, 0.5)) if lags else None,
        replication_lag_p99_ms=r1(percentile(lags, 0.99)) if lags else None,
        replication_lag_max_ms=r1(max(lags)) if lags else None,
        replication_lag_runs=len(lags),
        cpu_ms_per_workflow=cpu,
        cpu_busy_percent=busy,
        db_per_workflow=per_db,
        wal_per_workflow=per_wal,
        machine=machine,
        workers=workers,
        sleeping=sleeping,
        worker_cache_hit_percent=r1(100 * hits / (hits + misses)) if hits + misses else None,
        tasks_run_ahead=run_ahead,
        event_loop_lag_ms=loop_lag,
    )


def _cache_figures(stats: list[Path]) -> tuple[int, int]:
    """Cache hits and misses summed over the workers' figures (0, 0 if none wrote)."""
    hits = misses = 0
    for f in stats:
        with contextlib.suppress(OSError, ValueError, KeyError):
            cache = json.loads(f.read_text())["cache"]
            hits, misses = hits + int(cache["hits"]), misses + int(cache["misses"])
    return hits, misses


def _run_ahead_figures(stats: list[Path]) -> dict[str, int]:
    """Tasks run ahead, accepted and refused, summed over the workers' figures."""
    total = {"accepted": 0, "refused": 0}
    for f in stats:
        with contextlib.suppress(OSError, ValueError, KeyError):
            figures = json.loads(f.read_text())["run_ahead"]
            for key in total:
                total[key] += int(figures[key])
    return total


async def _until_applied(listener: ClosedListener, ids: set[str], timeout: float = 30.0) -> None:
    """Wait (bounded) until the standby has applied the close of every run of ``ids``."""
    deadline = time.monotonic() + timeout
    while not ids <= listener.applied.keys() and time.monotonic() < deadline:
        listener.changed.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(listener.changed.wait(), deadline - time.monotonic())


async def _drive(
    client: Client,
    queue: str,
    n: int,
    concurrency: int,
    mode: str,
    rate: float | None,
    progress: Progress,
    task_id: Any,
) -> tuple[list[float], int]:
    """Run the workflows ``wf-0..`` as ``mode`` says; (client latencies in ms, errors)."""
    latencies: list[float] = []
    errors = 0
    ids: asyncio.Queue[int] = asyncio.Queue()
    for i in range(n):
        ids.put_nowait(i)
    handles: list[Any] = []

    async def closed_starter() -> None:
        nonlocal errors
        while not ids.empty():
            i = ids.get_nowait()
            t0 = time.perf_counter()
            try:
                result = await client.execute_workflow(
                    "ThreeSteps", i, id=f"wf-{i}", task_queue=queue
                )
                if result != i + 3:
                    errors += 1
                latencies.append((time.perf_counter() - t0) * 1000)
            except Exception:
                errors += 1
            progress.advance(task_id)

    async def open_start(i: int) -> None:
        nonlocal errors
        try:
            handles.append(
                (i, await client.start_workflow("ThreeSteps", i, id=f"wf-{i}", task_queue=queue))
            )
        except Exception:
            errors += 1

    async def open_starter() -> None:
        while not ids.empty():
            await open_start(ids.get_nowait())

    if mode == "closed":
        await asyncio.gather(*[closed_starter() for _ in range(concurrency)])
        return latencies, errors
    if mode == "open":
        await asyncio.gather(*[open_starter() for _ in range(concurrency)])
    else:
        assert rate
        t0, pending = time.perf_counter(), []
        for i in range(n):
            await asyncio.sleep(max(0.0, t0 + i / rate - time.perf_counter()))
            pending.append(asyncio.create_task(open_start(i)))
        await asyncio.gather(*pending)
    sem = asyncio.Semaphore(concurrency)

    async def result_of(i: int, h: Any) -> None:
        nonlocal errors
        async with sem:
            try:
                if await h.result(timeout=120) != i + 3:
                    errors += 1
            except Exception:
                errors += 1
            progress.advance(task_id)

    await asyncio.gather(*[result_of(i, h) for i, h in handles])
    return latencies, errors
