"""`baton bench`: throughput and start-to-result latency of the ThreeSteps workflow.

The benchmark runs against a live region (the dev stack by default): it
starts one worker process, then N workflows from C concurrent starters, each
of which starts a workflow and waits for its result. It prints workflows per
second and latency percentiles. It is a measurement, never a test: nothing is
asserted about speed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import statistics
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

from store.config import BatonConfig
from worker import Client


@dataclass(frozen=True)
class LagSample:
    seconds: float
    messages: int


@dataclass(frozen=True)
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
    replication_lag_p50_s: float | None = None
    replication_lag_p99_s: float | None = None
    replication_lag_samples: int = 0

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


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


async def sample_lag(
    config: BatonConfig, target: str, out: list[LagSample], stop: asyncio.Event
) -> None:
    """Sample how far ``target`` is behind the other regions every half second."""
    from replication.status import replication_status

    while not stop.is_set():
        for lag in await replication_status(config, per_namespace=False):
            if lag.region == target and lag.time_lag_s is not None:
                out.append(LagSample(lag.time_lag_s, lag.consumer_lag_messages or 0))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.5)


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
) -> BenchResult:
    """Start a worker process and measure ``workflows`` runs of ThreeSteps."""
    ns = namespace or f"bench-{uuid.uuid4().hex[:8]}"
    queue = "bench"
    async with await Client.connect(urls, namespace=ns) as client:
        try:
            regions = list(config.regions) if (config and replicate_to) else None
            await client.create_namespace(
                ns, regions=regions, active_region=regions[0] if regions else None
            )
        except Exception as exc:  # an existing namespace is fine
            if getattr(exc, "code", "") != "NAMESPACE_ALREADY_EXISTS":
                raise
        log = (log_dir or Path(".")) / "bench-worker.log"
        args = [sys.executable, "-m", "ops.apps", "--namespace", ns, "--task-queue", queue]
        for u in urls:
            args += ["--url", u]
        proc = start_worker(args, log)
        try:
            # Warm up: connections, caches and the worker's first poll.
            await asyncio.gather(
                *[
                    client.execute_workflow("ThreeSteps", i, id=f"warmup-{i}", task_queue=queue)
                    for i in range(warmup)
                ]
            )
            latencies: list[float] = []
            errors = 0
            queue_ids: asyncio.Queue[int] = asyncio.Queue()
            for i in range(workflows):
                queue_ids.put_nowait(i)
            progress = Progress(
                "[progress.description]{task.description}",
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                disable=not show_progress,
                transient=True,
            )

            async def starter(task_id: Any) -> None:
                nonlocal errors
                while True:
                    try:
                        i = queue_ids.get_nowait()
                    except asyncio.QueueEmpty:
                        return
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

            lags: list[LagSample] = []
            stop = asyncio.Event()
            sampler = None
            if replicate_to and config is not None:
                sampler = asyncio.create_task(sample_lag(config, replicate_to, lags, stop))
            with progress:
                task_id = progress.add_task("ThreeSteps workflows", total=workflows)
                t_start = time.perf_counter()
                await asyncio.gather(*[starter(task_id) for _ in range(concurrency)])
                elapsed = time.perf_counter() - t_start
            stop.set()
            if sampler is not None:
                await sampler
        finally:
            stop_processes([proc])
    return BenchResult(
        workflows=workflows,
        concurrency=concurrency,
        seconds=round(elapsed, 3),
        per_second=round(len(latencies) / elapsed, 1),
        p50_ms=round(percentile(latencies, 0.50), 1),
        p90_ms=round(percentile(latencies, 0.90), 1),
        p99_ms=round(percentile(latencies, 0.99), 1),
        max_ms=round(max(latencies or [0]), 1),
        mean_ms=round(statistics.fmean(latencies) if latencies else float("nan"), 1),
        errors=errors,
        replication_lag_p50_s=(
            round(percentile([x.seconds for x in lags], 0.5), 3) if lags else None
        ),
        replication_lag_p99_s=(
            round(percentile([x.seconds for x in lags], 0.99), 3) if lags else None
        ),
        replication_lag_samples=len(lags),
    )
