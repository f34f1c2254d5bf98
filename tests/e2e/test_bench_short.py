"""The benchmark in a short form: 200 workflows, open loop, replicated to a
second region, two worker processes. It prints its figures and asserts only that every workflow
finished and every close reached the standby: speed is measured, not tested.

Here both regions are served by this test process (beside the benchmark's
client), so the figures are lower than `baton bench` on the local stack and
are for comparing one commit with the next on the same machine."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from ops.bench import run_bench
from ops.bench_query import run_query_bench
from ops.pg import PgCluster
from tests.conftest import Region, RegionPair
from worker import Client

pytestmark = pytest.mark.integration


async def test_the_short_benchmark_runs_and_prints_its_figures(
    regions: RegionPair,
    pg: PgCluster,
    tmp_path: Path,
    show_figures: Callable[[str, object], None],
) -> None:
    rs = regions
    result = await run_bench(
        [rs.a.url],
        workflows=200,
        concurrency=20,
        warmup=20,
        show_progress=False,
        log_dir=tmp_path,
        replicate_to=rs.b.name,
        config=rs.a.config,
        mode="open",
        source=rs.a.name,
        workers=2,
        cpu_parts={
            "servers and client (this process)": [os.getpid()],
            "postgresql": [p for p in [pg.pid()] if p],
        },
    )
    figures = result.as_dict()
    # shown in the CI log's summary, passing or not
    show_figures("short benchmark (200 workflows, open loop, replicated, 2 workers):", figures)
    assert result.errors == 0
    assert result.replication_lag_runs == 200, figures
    assert result.worker_cache_hit_percent is not None, "the workers wrote no cache figures"
    # each of a run's three activity results carries the task it schedules
    assert result.tasks_run_ahead["accepted"] >= 200, figures
    # one cluster holds both regions' databases; commits wait for its WAL flushes
    assert list(result.wal_per_workflow) == [f"{rs.a.name}, {rs.b.name}"], figures
    wal = result.wal_per_workflow[f"{rs.a.name}, {rs.b.name}"]
    assert (wal["flushes"] or 0) > 0 and wal["ms_per_flush"] is not None, figures
    # both regions' servers run in this process: one event loop, read before and after
    pid = os.getpid()
    assert set(result.event_loop_lag_ms) == {f"{rs.a.name} {pid}", f"{rs.b.name} {pid}"}, figures
    assert all(lag["p99"] is not None for lag in result.event_loop_lag_ms.values()), figures
    # the machine's own figures, to tell one day's runs from another's
    assert result.machine["fixed_cpu_work_ms"] > 0 < result.machine["fdatasync_8k_ms"], figures


async def test_the_query_benchmark_runs_on_a_short_history(
    region: Region, tmp_path: Path, show_figures: Callable[[str, object], None]
) -> None:
    """`baton bench --query-history` in a short form: a fresh worker process
    answers a query on a history of 400 events, two pages (the benchmark itself
    raises if the answer is wrong)."""
    async with await Client.connect(region.url) as client:
        await client.create_namespace("default")
    result = await run_query_bench(
        [region.url], events=400, samples=1, log_dir=tmp_path, show_progress=False
    )
    show_figures("short query benchmark (400 events, fresh worker):", result)
    assert result["history_events"] >= 390 and result["signals"] == 390
