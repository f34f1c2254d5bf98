"""`baton bench --visibility`: list and count latency at a million runs.

The namespace is generated through the store's own write function
(:mod:`ops.visibility_load`) once per stack and kept; the benchmark then asks
the region's HTTP API, as a client would, for a first list page, a page far
down (after following 50 page tokens), and counts grouped by an attribute,
each many times, and prints p50 and p99. A measurement, never a test.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

from ops.output import err_console
from ops.visibility_load import create_load_namespace, load_runs
from store import db
from store.config import BatonConfig
from worker import Client

#: (label, kind, query, group_by)
CASES: list[tuple[str, str, str, str | None]] = [
    ("first page, no filter", "page", "", None),
    ("first page, running", "page", "ExecutionStatus = 'Running'", None),
    (
        "first page, type and status",
        "page",
        "WorkflowType = 'Type7' AND ExecutionStatus = 'Completed'",
        None,
    ),
    ("first page, custom Keyword", "page", "CustomerId = 'cust-4242'", None),
    (
        "first page, ORDER BY CloseTime",
        "page",
        "CloseTime IS NOT NULL ORDER BY CloseTime DESC",
        None,
    ),
    ("deep page (51st), no filter", "deep", "", None),
    ("deep page (51st), by type", "deep", "WorkflowType = 'Type7'", None),
    ("count, group by status", "count", "", "ExecutionStatus"),
    ("count by type, group by status", "count", "WorkflowType = 'Type7'", "ExecutionStatus"),
    ("count, custom Keyword", "count", "CustomerId = 'cust-4242'", None),
]


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def ensure_loaded(
    config: BatonConfig, region: str, namespace: str, runs: int
) -> float | None:
    """Generate the namespace unless it already holds ``runs`` runs; seconds taken or None."""
    conns = [await db.connect(config.regions[region].dsn) for _ in range(2)]
    try:
        have = await conns[0].fetchval(
            "SELECT count(*) FROM executions WHERE namespace = $1", namespace
        )
        if have == runs:
            return None
        if have:
            raise RuntimeError(
                f"namespace {namespace!r} holds {have} runs, not {runs}: use another --runs"
            )
        await create_load_namespace(conns[0], namespace, region)
        with Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=err_console,
        ) as bar:
            task = bar.add_task(f"generating {namespace}", total=runs)
            return await load_runs(
                conns, namespace, runs, progress=lambda d, t: bar.update(task, completed=d)
            )
    finally:
        for c in conns:
            await c.close()


async def _timed(fn: Callable[[], Awaitable[Any]], repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        await fn()
        out.append((time.perf_counter() - t0) * 1000)
    return out


async def run_visibility_bench(
    config: BatonConfig, url: str, region: str, *, runs: int, repeat: int = 30
) -> dict[str, Any]:
    namespace = f"bench-visibility-{runs}"
    loaded_s = await ensure_loaded(config, region, namespace, runs)
    rows = []
    async with await Client.connect(url, namespace=namespace) as client:
        path = f"/api/v1/namespaces/{namespace}"
        for label, kind, query, group_by in CASES:
            params: dict[str, Any]
            if kind == "count":
                url_path = f"{path}/workflow-count"
                params = {"query": query, "group_by": group_by}
            else:
                url_path = f"{path}/workflows"
                params = {"query": query or None, "page_size": 100, "page_token": None}
                if kind == "deep":
                    for _ in range(50):
                        res = await client.call("GET", url_path, params=params)
                        params = {**params, "page_token": res["next_page_token"]}

            async def call(url_path: str = url_path, params: dict[str, Any] = params) -> Any:
                return await client.call("GET", url_path, params=params)

            await call()  # warm the cache once
            ms = await _timed(call, repeat)
            rows.append(
                {
                    "case": label,
                    "p50_ms": round(statistics.median(ms), 1),
                    "p99_ms": round(_pct(ms, 0.99), 1),
                    "samples": repeat,
                }
            )
    return {"namespace": namespace, "runs": runs, "generated_in_s": loaded_s, "cases": rows}
