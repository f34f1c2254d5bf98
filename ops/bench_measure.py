"""What `baton bench` measures besides its own clock, without loading the machine.

* **CPU** of each part of the stack (region servers, PostgreSQL, Kafka, the
  benchmark's worker), from ``/proc``: a process's user and system time, and for
  PostgreSQL the postmaster's children too (live ones, and the ones it reaped).
* **Database work** per workflow: transactions committed in a region's
  database (``pg_stat_database``) and, when the cluster preloads
  ``pg_stat_statements``, the statements it ran (each one a round trip, but
  for pipelined ones).
* **WAL flushes** per workflow, in each PostgreSQL cluster (``pg_stat_wal``):
  every commit waits for its flush, so on a slow disk the flushes, not the
  CPU, set the pace; with ``track_wal_io_timing`` on (the local stack turns
  it on), the mean time of a flush too.
* **The machine itself**, before the run: the time of a fixed piece of
  Python work and of an 8 KiB write and ``fdatasync`` (as ``pg_test_fsync``'s
  first test) on the benchmark's filesystem. The same commit runs at
  different speeds on different days; these say whether two runs had the
  same machine.
* **Event-loop lag** of each server process (``/metrics``'
  ``baton_event_loop_lag_seconds``, read before and after the run): how long a
  coroutine that is ready to run waits behind the rest, p50 and p99 of the
  run's probes. Processes sharing a port answer in turn, so each region is
  read a few times.
* **Replication lag per run**: a standby's applier notifies
  ``baton_closed_v1`` when it commits the close of a run; one ``LISTEN``
  connection records when each arrives, and the lag is that moment less the
  close time the source region recorded for the run (both on this machine's
  clock). No sampler polls anything.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import statistics
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from store import db
from store.loop_lag import percentile_from_buckets

_TICK = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            raw = fh.read()
    except OSError:
        return None
    # the command may contain spaces or parentheses: fields start after the last ')'
    return raw[raw.rindex(")") + 2 :].split()


def _children(pid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            st = _stat(int(entry))
            if st is not None and int(st[1]) == pid:
                out.append(int(entry))
    return out


def cpu_seconds(pid: int, *, children: bool = False) -> float:
    """User plus system CPU of ``pid`` (and, with ``children``, of its live children
    and the ones it has reaped)."""
    st = _stat(pid)
    if st is None:
        return 0.0
    ticks = int(st[11]) + int(st[12])  # utime, stime
    if children:
        ticks += int(st[13]) + int(st[14])  # cutime, cstime: reaped children
        for child in _children(pid):
            cst = _stat(child)
            if cst is not None:
                ticks += int(cst[11]) + int(cst[12])
    return ticks / _TICK


@dataclass
class CpuMeter:
    """CPU seconds per named part of the stack, between :meth:`start` and :meth:`stop`."""

    parts: dict[str, list[int]]
    #: parts whose processes' children count too (PostgreSQL's backends)
    with_children: set[str] = field(default_factory=set)
    _before: dict[str, float] = field(default_factory=dict)

    def _now(self) -> dict[str, float]:
        return {
            name: sum(cpu_seconds(p, children=name in self.with_children) for p in pids)
            for name, pids in self.parts.items()
        }

    def start(self) -> None:
        self._before = self._now()

    def stop(self) -> dict[str, float]:
        after = self._now()
        return {k: after[k] - self._before.get(k, 0.0) for k in after}


async def db_counters(dsn: str) -> dict[str, int | None]:
    """Transactions committed in the database, and statements run in it when
    ``pg_stat_statements`` is loaded (else None)."""
    conn = await db.connect(dsn)
    try:
        xacts = await conn.fetchval(
            "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()"
        )
        statements = None
        # not preloaded, or the extension is not created in this database: None
        with contextlib.suppress(asyncpg.PostgresError):
            statements = await conn.fetchval(
                "SELECT coalesce(sum(calls), 0)::bigint FROM pg_stat_statements s"
                " JOIN pg_database d ON d.oid = s.dbid WHERE d.datname = current_database()"
            )
        return {"transactions": int(xacts), "statements": statements}
    finally:
        await conn.close()


def _fixed_work() -> int:
    """Dictionary, list and string work of the kind a server does, always the same."""
    counts: dict[str, int] = {}
    total = 0
    for i in range(60_000):
        key = f"ns/wf-{i & 255}"
        counts[key] = counts.get(key, 0) + 1
        total += len([i, key, counts[key]])
    return total + len(sorted(counts.items()))


def machine_figures(directory: Path, *, fsyncs: int = 50) -> dict[str, float]:
    """The fixed work's best time of five (ms), and the median time (ms) of
    an 8 KiB write with its ``fdatasync`` in ``directory``."""
    best = float("inf")
    for _ in range(5):
        t0 = time.perf_counter()
        _fixed_work()
        best = min(best, time.perf_counter() - t0)
    path = directory / ".baton-bench-fsync"
    block = b"\0" * 8192
    times = []
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        for _ in range(fsyncs):
            t0 = time.perf_counter()
            os.pwrite(fd, block, 0)
            os.fdatasync(fd)
            times.append(time.perf_counter() - t0)
    finally:
        os.close(fd)
        path.unlink(missing_ok=True)
    return {
        "fixed_cpu_work_ms": round(best * 1000, 1),
        "fdatasync_8k_ms": round(statistics.median(times) * 1000, 3),
    }


async def wal_counters(dsn: str) -> dict[str, Any] | None:
    """The cluster's WAL flushes, their time (ms, None unless
    ``track_wal_io_timing`` is on) and WAL bytes, with the cluster's id
    (None before PostgreSQL 14, which has no ``pg_stat_wal``)."""
    conn = await db.connect(dsn)
    try:
        try:
            row = await conn.fetchrow(
                "SELECT wal_sync, wal_sync_time, wal_bytes,"
                " current_setting('track_wal_io_timing')::boolean AS timed FROM pg_stat_wal"
            )
        except asyncpg.PostgresError:
            return None
        cluster: str | None = None
        # the same cluster under two regions' databases is counted once
        with contextlib.suppress(asyncpg.PostgresError):
            cluster = str(await conn.fetchval("SELECT system_identifier FROM pg_control_system()"))
        return {
            "cluster": cluster,
            "flushes": int(row["wal_sync"]),
            "flush_ms": float(row["wal_sync_time"]) if row["timed"] else None,
            "bytes": int(row["wal_bytes"]),
        }
    finally:
        await conn.close()


def wal_per_workflow(
    before: dict[str, Any], after: dict[str, Any], n: int
) -> dict[str, float | None]:
    """WAL flushes and KiB per workflow between two :func:`wal_counters`, and
    the mean time of a flush (ms, when timed)."""
    flushes = after["flushes"] - before["flushes"]
    timed = after["flush_ms"] is not None and before["flush_ms"] is not None
    return {
        "flushes": round(flushes / n, 2),
        "kib": round((after["bytes"] - before["bytes"]) / 1024 / n, 1),
        "ms_per_flush": (
            round((after["flush_ms"] - before["flush_ms"]) / flushes, 2)
            if timed and flushes
            else None
        ),
    }


async def ensure_statement_stats(dsn: str) -> bool:
    """Create ``pg_stat_statements`` in the database if the cluster preloads it."""
    conn = await db.connect(dsn)
    try:
        loaded = await conn.fetchval(
            "SELECT 'pg_stat_statements' = ANY(string_to_array(current_setting("
            "'shared_preload_libraries'), ', '))"
        )
        if loaded:
            await conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        return bool(loaded)
    finally:
        await conn.close()


class ClosedListener:
    """When a standby committed the close of each run of a namespace."""

    def __init__(self, dsn: str, namespace: str):
        self.dsn, self.namespace = dsn, namespace
        self.applied: dict[str, float] = {}
        self.changed = asyncio.Event()
        self._conn: asyncpg.Connection | None = None

    def _on(self, _c: Any, _pid: int, _channel: str, payload: str) -> None:
        ns, _, wid = payload.partition("/")
        if ns == self.namespace:
            self.applied.setdefault(wid, time.time())
            self.changed.set()

    async def __aenter__(self) -> ClosedListener:
        self._conn = await db.connect(self.dsn)
        await self._conn.add_listener("baton_closed_v1", self._on)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._conn is not None:
            await self._conn.close()


async def run_times(dsn: str, namespace: str, ids: Iterable[str]) -> dict[str, tuple[float, float]]:
    """(start, close) epoch seconds of each closed run, from the region's database."""
    conn = await db.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT workflow_id, extract(epoch FROM start_time)::float8 AS s,"
            " extract(epoch FROM close_time)::float8 AS c FROM executions"
            " WHERE namespace = $1 AND workflow_id = ANY($2::text[]) AND close_time IS NOT NULL",
            namespace,
            list(ids),
        )
    finally:
        await conn.close()
    return {r["workflow_id"]: (r["s"], r["c"]) for r in rows}


_LAG_BUCKET = re.compile(
    r'^baton_event_loop_lag_seconds_bucket\{[^}]*process="(\d+)"[^}]*le="([^"]+)"\} (\d+)$',
    re.MULTILINE,
)


async def loop_lag_read(urls: dict[str, str], reads: int = 12) -> dict[str, list[tuple[str, int]]]:
    """Each reachable server process's event-loop lag histogram, keyed
    ``region pid``: ``reads`` scrapes of each region's URL, since the processes
    sharing its port answer in turn. A region that does not answer is left out."""
    out: dict[str, list[tuple[str, int]]] = {}
    async with httpx.AsyncClient(timeout=5) as http:
        for region, url in urls.items():
            for _ in range(reads):
                try:
                    text = (await http.get(f"{url}/metrics")).text
                except httpx.HTTPError:
                    break
                by_pid: dict[str, list[tuple[str, int]]] = {}
                for pid, le, n in _LAG_BUCKET.findall(text):
                    by_pid.setdefault(f"{region} {pid}", []).append((le, int(n)))
                out.update(by_pid)
    return out


def loop_lag_ms(
    before: dict[str, list[tuple[str, int]]], after: dict[str, list[tuple[str, int]]]
) -> dict[str, dict[str, float | None]]:
    """p50 and p99 (the upper bound of their bucket, ms) of each process's probes
    between the two reads."""
    out: dict[str, dict[str, float | None]] = {}
    for key in sorted(set(before) & set(after)):
        if len(before[key]) != len(after[key]):
            continue
        figures = {}
        for name, q in (("p50", 0.5), ("p99", 0.99)):
            v = percentile_from_buckets(before[key], after[key], q)
            figures[name] = None if v is None else round(v * 1000, 1)
        out[key] = figures
    return out
