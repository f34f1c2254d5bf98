"""`baton bench --query-history N`: a query on a long history, answered by a
worker with an empty cache.

A ``Counter`` run is given one ``add`` signal after another (signals that
arrive while a workflow task runs are written together after it, so the
history is about one event per signal) until it holds N events. Then, each
sample: a new worker process starts (nothing cached), proves it polls by
running one ThreeSteps to its end, and the run is queried; the query's time
at the client is the figure (the worker fetches the whole history in pages,
decoding and replaying each while the server builds the next). The same
three steps are then timed in this process on the same history, one after
the other, to show where the time goes. A measurement, not a test.
"""

from __future__ import annotations

import asyncio
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import orjson

from ops.apps import Counter
from ops.bench import percentile, progress_bar, start_worker, stop_processes
from ops.bench_measure import machine_figures
from worker import Client
from worker._definition import WorkflowDefinition
from worker._gc import collector_paused
from worker._history_pages import PAGE_EVENTS, typed_page
from worker._http import wf_path
from worker._workflow_instance import WorkflowInstance
from worker.wire import HistoryEvent

QUEUE = "bench-query"
SENDERS = 20


async def run_query_bench(
    urls: list[str],
    *,
    events: int = 10_000,
    samples: int = 5,
    log_dir: Path,
    show_progress: bool = True,
) -> dict[str, Any]:
    ns = f"bench-q-{uuid.uuid4().hex[:8]}"
    machine = machine_figures(log_dir)
    args = [sys.executable, "-m", "ops.apps", "--namespace", ns, "--task-queue", QUEUE]
    for u in urls:
        args += ["--url", u]
    async with await Client.connect(urls, namespace=ns) as client:
        await client.create_namespace(ns)
        worker = start_worker(args, log_dir / "bench-query-worker.log")
        try:
            handle = await client.start_workflow(Counter, id="long", task_queue=QUEUE)
            signals = await _grow(client, handle, events, show_progress)
        finally:
            stop_processes([worker])
        length = int((await handle.describe())["execution"]["history_length"])
        query_ms: list[float] = []
        for i in range(samples):
            fresh = start_worker(args, log_dir / "bench-query-worker.log")
            try:
                await client.execute_workflow("ThreeSteps", 1, id=f"ready-{i}", task_queue=QUEUE)
                t0 = time.perf_counter()
                got = await handle.query("count")
                query_ms.append((time.perf_counter() - t0) * 1000)
                if got != signals:
                    raise RuntimeError(f"the query answered {got}, not {signals}")
            finally:
                stop_processes([fresh])
        parts = [await _parts_in_process(client, ns, handle.run_id) for _ in range(samples)]
    return {
        "namespace": ns,
        "history_events": length,
        "signals": signals,
        "samples": samples,
        "query_p50_ms": round(percentile(query_ms, 0.5), 1),
        "query_max_ms": round(max(query_ms), 1),
        "in_process_p50_ms": {
            k: round(percentile([p[k] for p in parts], 0.5), 1)
            for k in ("fetch", "decode", "replay")
        },
        "machine": machine,
    }


async def _grow(client: Client, handle: Any, events: int, show_progress: bool) -> int:
    """Signal the run until its history holds about ``events`` events; the signals sent."""
    total = max(1, events - 10)  # the run's own events (start, workflow tasks) make up the rest
    progress = progress_bar(show_progress)
    sent = 0

    async def sender(n: int) -> None:
        nonlocal sent
        for _ in range(n):
            await handle.signal("add", 1)
            sent += 1
            progress.update(task, completed=sent)

    with progress:
        task = progress.add_task("signals", total=total)
        share, rest = divmod(total, SENDERS)
        await asyncio.gather(*[sender(share + (i < rest)) for i in range(SENDERS)])
    # A signal that arrives while a workflow task runs is written after it and
    # handled by the next one: the run has seen every signal once the worker
    # that grew it answers the full count (the history's length alone says
    # nothing about the last workflow task having completed).
    deadline = time.monotonic() + 120
    while True:
        seen = await handle.query("count")
        if seen == sent:
            return sent
        if time.monotonic() > deadline:
            raise RuntimeError(f"the run saw {seen} of {sent} signals after 120 s")
        await asyncio.sleep(0.2)


async def _parts_in_process(client: Client, ns: str, run_id: str | None) -> dict[str, float]:
    """Fetch, decode and replay the run's history here, one after the other, each
    timed (ms): the worker overlaps the fetch of each page with the rest
    (worker/_history_pages.py), so its query costs less than their sum."""
    t0 = time.perf_counter()
    pages: list[bytes] = []
    nxt = 1
    while True:
        raw = await client.call(
            "GET",
            wf_path(ns, "long", "/history"),
            params={"run_id": run_id, "from_event_id": nxt, "page_size": PAGE_EVENTS},
            raw=True,
        )
        events = orjson.loads(raw)["events"]
        if not events:
            break
        pages.append(raw)
        nxt = events[-1]["event_id"] + 1
    t1 = time.perf_counter()
    # as the worker does it, page by page
    typed: list[HistoryEvent] = []
    with collector_paused():
        for raw in pages:
            typed += await typed_page(orjson.loads(raw)["events"], raw, client.data_converter)
    t2 = time.perf_counter()
    inst = WorkflowInstance(
        definition=WorkflowDefinition.from_class(Counter),
        namespace=ns,
        workflow_id="long",
        run_id=str(run_id),
        converter=client.data_converter.payload_converter,
    )
    try:
        with collector_paused():
            inst.activate(typed, run_final=False)
    finally:
        inst.dispose()
    t3 = time.perf_counter()
    return {"fetch": (t1 - t0) * 1000, "decode": (t2 - t1) * 1000, "replay": (t3 - t2) * 1000}
