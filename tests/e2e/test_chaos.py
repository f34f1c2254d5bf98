"""Chaos: 500 workflows through three graceful failovers, a forced one and SIGKILLs.

Two regions with two `baton server` processes each, two worker processes, a
Kafka broker of this module's own and PostgreSQL. The workflows (tests/apps/
chaos.py) mix a heartbeating activity that fails once, durable timers, signals
(each sent twice with one request id), updates whose handlers span a
failover, and, for one in ten, a workflow task that fails until a fix is
deployed. While they run: three graceful failovers, a SIGKILL of a server
process, of a worker and of the broker, and a forced failover away from a
region whose servers are SIGKILLed (it returns as a standby).

At the end every result equals what the oracle computes from what the test
sent, every signal was applied once, no activity completed twice, both
regions hold the same history, and every event the lost region had that the
surviving history lacks is in a conflict archive.

The seed is ``--chaos-seed`` (default 20261130); the test prints it with the
counts, so a failure can be replayed.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from ops.kafka import KafkaBroker
from ops.pg import PgCluster
from replication.admin import list_conflicts
from replication.failover import forced_failover, graceful_failover
from replication.verify import verify_namespace
from store import db
from tests.apps.chaos import FLAG_ENV, QUEUE, expected
from tests.helpers import Proc, eventually
from tests.multiregion import Regions, server_regions
from worker import Client

pytestmark = pytest.mark.e2e
WORKFLOWS = 500
NS = "chaos"


@pytest.fixture
async def regions(
    pg: PgCluster, template_db: str, broker: KafkaBroker, state_dir: Path, tmp_path: Path
) -> AsyncIterator[Regions]:
    if broker.pid is None:
        await broker.up()
    async with server_regions(
        pg, template_db, broker.bootstrap, state_dir, tmp_path, count=2
    ) as rs:
        for name in rs.regions:  # a second server process per region
            await rs.start(name)
        yield rs


def specs(seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    return [
        {
            "base": rng.randrange(1000),
            "sleep_s": round(rng.uniform(0.5, 4.0), 2),
            "signals": rng.randint(1, 3),
            "updates": 1 if i % 5 == 0 else 0,
            "buggy": i % 10 == 3,
        }
        for i in range(WORKFLOWS)
    ]


class Chaos:
    """The driver: what was sent, the schedule of faults, and what happened."""

    def __init__(self, rs: Regions, broker: KafkaBroker, seed: int, tmp_path: Path):
        self.rs, self.broker, self.seed = rs, broker, seed
        self.rng = random.Random(seed + 1)
        self.flag = tmp_path / "fix-deployed"
        self.urls = rs.urls
        self.a, self.b = list(rs.regions)
        self.workers: list[Proc] = []
        self.tmp = tmp_path
        self.t0 = time.monotonic()
        self.sent: dict[str, list[list[Any]]] = {}
        self.updated: dict[str, list[list[Any]]] = {}
        self.request_ids: dict[str, set[str]] = {}
        self.log: list[str] = []
        self.counts: Counter[str] = Counter()
        self.lost_snapshot: set[tuple[str, str, int, int]] = set()
        self.signals_by_phase: dict[int, list[tuple[str, str, int, str]]] = {}

    def say(self, what: str) -> None:
        wall = time.strftime("%H:%M:%S", time.gmtime())
        line = f"{time.monotonic() - self.t0:6.1f}s ({wall} UTC) {what}"
        self.log.append(line)
        print(line, flush=True)

    async def at(self, t: float) -> None:
        await asyncio.sleep(max(0.0, self.t0 + t - time.monotonic()))

    def start_worker(self, i: int) -> Proc:
        args = [sys.executable, "-m", "tests.apps.chaos", "--namespace", NS]
        for u in self.urls:
            args += ["--url", u]
        return Proc(args, self.tmp / f"worker-{i}.log", env={FLAG_ENV: str(self.flag)}).start()

    # ------------------------------------------------------------------ inputs

    def plan_signals(self, plan: list[dict[str, Any]]) -> None:
        """Every signal gets a value, a request id and a phase (0-3) it is sent in."""
        self.signals_by_phase: dict[int, list[tuple[str, str, int, str]]] = {
            p: [] for p in range(4)
        }
        for i, spec in enumerate(plan):
            wid = f"chaos-{i}"
            self.sent[wid] = []
            self.request_ids[wid] = set()
            for j in range(spec["signals"]):
                key, value, rid = f"s{j}", self.rng.randrange(100), f"{wid}/sig-{j}"
                self.sent[wid].append([key, value])
                self.request_ids[wid].add(rid)
                self.signals_by_phase[self.rng.randrange(4)].append((wid, key, value, rid))

    async def signal(self, client: Client, wid: str, key: str, value: int, rid: str) -> None:
        await client.get_workflow_handle(wid).signal("add", key, value, request_id=rid)
        self.counts["signal sends"] += 1

    async def send_phase(
        self, client: Client, phase: int, seconds: float, *, second_copy: bool = True
    ) -> None:
        """Send a phase's signals spread over ``seconds``, each again a little later."""
        gate = asyncio.Semaphore(20)

        async def one(item: tuple[str, str, int, str], delay: float) -> None:
            await asyncio.sleep(delay)
            async with gate:
                await self.signal(client, *item)
            if second_copy:
                await asyncio.sleep(self.rng.uniform(0.1, 2.0))
                async with gate:
                    await self.signal(client, *item)  # the same request id again

        items = self.signals_by_phase[phase]
        await asyncio.gather(*(one(it, self.rng.uniform(0, seconds)) for it in items))

    async def send_updates(self, client: Client, wids: list[str]) -> None:
        """Updates whose handlers (3 s) are running when the next failover comes."""
        gate = asyncio.Semaphore(25)

        async def update(wid: str) -> None:
            value = self.rng.randrange(100)
            self.updated[wid] = [["u0", value]]
            async with gate:
                got = await client.get_workflow_handle(wid).update(
                    "slow_add", "u0", value, update_id=f"{wid}/u0", timeout=60
                )
            assert got == 2 * value, wid
            self.counts["updates completed"] += 1

        await asyncio.gather(*(update(w) for w in wids))

    # ------------------------------------------------------------------ the run

    async def run(self, client: Client, plan: list[dict[str, Any]]) -> None:
        rs = self.rs
        updating = [f"chaos-{i}" for i, s in enumerate(plan) if s["updates"]]
        for i in range(len(plan)):
            self.updated.setdefault(f"chaos-{i}", [])
        self.plan_signals(plan)

        # Phase 0, active in A: signals, then updates still running at the failover
        await self.send_phase(client, 0, 3.0)
        updates = asyncio.create_task(self.send_updates(client, updating[: len(updating) // 2]))
        await asyncio.sleep(1.5)
        r = await graceful_failover(rs.config, NS, self.b, timeout_s=180)
        self.say(f"graceful failover 1 to {self.b}: {r.seconds} s, {r.workflows_rebuilt} rebuilt")
        await updates

        # Phase 1, active in B: a server and a worker SIGKILLed, more updates
        victim = rs.regions[self.b].procs.pop(0)
        victim.kill()
        self.say(f"SIGKILL server pid {victim.pid} of {self.b}")
        w = self.workers.pop(0)
        w.kill()
        self.say(f"SIGKILL worker pid {w.pid}")
        phase = asyncio.create_task(self.send_phase(client, 1, 3.0))
        await rs.start(self.b)
        self.workers.append(self.start_worker(len(self.workers) + 10))
        await phase
        updates = asyncio.create_task(self.send_updates(client, updating[len(updating) // 2 :]))
        await asyncio.sleep(1.5)
        r = await graceful_failover(rs.config, NS, self.a, timeout_s=180)
        self.say(f"graceful failover 2 to {self.a}: {r.seconds} s, {r.workflows_rebuilt} rebuilt")
        await updates

        # Phase 2, active in A: the broker SIGKILLed while signals arrive
        assert self.broker.pid is not None
        os.kill(self.broker.pid, signal.SIGKILL)
        self.broker.pid = None
        self.say("SIGKILL the Kafka broker")
        await self.send_phase(client, 2, 3.0)
        await self.broker.up()
        self.say("broker back")
        r = await graceful_failover(rs.config, NS, self.b, timeout_s=180)
        self.say(f"graceful failover 3 to {self.b}: {r.seconds} s, {r.workflows_rebuilt} rebuilt")

        # Phase 3, active in B: B acknowledges signals it never ships (its
        # replication lags), then its servers die; the second copies of half
        # of them land in A after the forced failover.
        held = await db.connect(rs.regions[self.b].dsn)
        hold = held.transaction()
        await hold.start()
        await held.fetchval("SELECT pg_current_xact_id()")
        items = self.signals_by_phase[3]
        half = len(items) // 2
        gate = asyncio.Semaphore(20)

        async def first(item: tuple[str, str, int, str], twice: bool) -> None:
            async with gate:
                await self.signal(client, *item)
                if twice:
                    await self.signal(client, *item)

        await asyncio.gather(*(first(it, i >= half) for i, it in enumerate(items)))
        rs.kill(self.b)  # every server of the active region: it is lost
        self.say(f"{len(items)} signals acknowledged by {self.b}, not shipped; SIGKILL its servers")
        self.lost_snapshot = await self.histories(self.b)
        r = await forced_failover(rs.config, NS, self.a)
        self.say(f"forced failover to {self.a}: {r.seconds} s, {r.workflows_rebuilt} rebuilt")
        await asyncio.gather(*(first(it, False) for it in items[:half]))
        await hold.rollback()
        await held.close()
        for _ in range(2):
            await rs.start(self.b)
        self.say(f"{self.b} back as a standby")
        self.flag.touch()
        self.say("the fix is deployed")

    async def histories(self, region: str) -> set[tuple[str, str, int, int]]:
        conn = await db.connect(self.rs.regions[region].dsn)
        try:
            rows = await conn.fetch(
                "SELECT workflow_id, run_id::text, event_id, version FROM history_events "
                "WHERE namespace = $1",
                NS,
            )
        finally:
            await conn.close()
        return {(r[0], r[1], r[2], r[3]) for r in rows}


@pytest.mark.timeout(1200)
async def test_500_workflows_survive_failovers_and_sigkills(
    regions: Regions, broker: KafkaBroker, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    seed = int(request.config.getoption("--chaos-seed"))
    plan = specs(seed)
    chaos = Chaos(regions, broker, seed, tmp_path)
    rs = regions
    client = await Client.connect(rs.urls, namespace=NS, retry_for_s=240)
    await client.create_namespace(NS, regions=[chaos.a, chaos.b], active_region=chaos.a)
    chaos.workers = [chaos.start_worker(i) for i in range(2)]
    try:
        gate = asyncio.Semaphore(25)

        async def start(i: int) -> Any:
            async with gate:
                return await client.start_workflow(
                    "Chaos", plan[i], id=f"chaos-{i}", task_queue=QUEUE, request_id=f"start-{i}"
                )

        chaos.t0 = time.monotonic()
        handles = await asyncio.gather(*(start(i) for i in range(WORKFLOWS)))
        chaos.say(f"{WORKFLOWS} workflows started (seed {seed})")
        await chaos.run(client, plan)
        results = await asyncio.gather(*(h.result(timeout=400) for h in handles))
        chaos.say("every workflow closed")
    finally:
        for w in chaos.workers:
            w.stop()
        await client.close()

    # 1. every result is the oracle's
    wrong = [
        f"chaos-{i}"
        for i, got in enumerate(results)
        if got != expected(plan[i], chaos.sent[f"chaos-{i}"], chaos.updated[f"chaos-{i}"])
    ]
    assert not wrong, f"seed {seed}: results differ from the oracle for {wrong[:10]}"

    # 2. and 3. read the histories where the namespace ended (A): each signal
    # applied once, no activity completed twice
    conn = await db.connect(rs.regions[chaos.a].dsn)
    try:
        rows = await conn.fetch(
            "SELECT workflow_id, run_id::text, event_id, version, event_type, event_time, "
            "attributes FROM history_events WHERE namespace = $1 ORDER BY workflow_id, event_id",
            NS,
        )
        attempts = await conn.fetchval(
            "SELECT count(*) FROM history_events WHERE namespace = $1 "
            "AND event_type = 'ActivityTaskStarted' AND (attributes ->> 'attempt')::int > 1",
            NS,
        )
    finally:
        await conn.close()
    signal_ids: dict[str, list[str]] = {}
    completions: Counter[tuple[str, str, int]] = Counter()
    completed_events: dict[tuple[str, str, int], list[tuple[int, int]]] = {}
    kinds: Counter[str] = Counter()
    for r in rows:
        kinds[r["event_type"]] += 1
        if r["event_type"] == "WorkflowExecutionSignaled":
            signal_ids.setdefault(r["workflow_id"], []).append(r["attributes"]["request_id"])
        if r["event_type"] == "ActivityTaskCompleted":
            key = (r["workflow_id"], r["run_id"], r["attributes"]["scheduled_event_id"])
            completions[key] += 1
            completed_events.setdefault(key, []).append((r["event_id"], r["version"]))
    for wid, ids in chaos.request_ids.items():
        got = signal_ids.get(wid, [])
        assert sorted(got) == sorted(ids), f"seed {seed}: {wid} signals {got} != {sorted(ids)}"
    twice = {k: completed_events[k] for k, n in completions.items() if n > 1}
    # (workflow, run, scheduled event) -> the completions' (event id, version),
    # and the histories of those runs, to tell which writes did it
    assert not twice, f"seed {seed}: an activity completed twice: {twice}\n" + "\n".join(
        [_history_lines(rows, wid, rid) for wid, rid, _ in twice] + chaos.log
    )
    assert len(completions) == WORKFLOWS

    # 4. both regions hold the same history
    async def clean() -> Any:
        v = await verify_namespace(rs.config, NS)
        return v if v.clean else None

    verified = await eventually(clean, timeout=120, interval=1.0, what="verify clean")

    # 5. what the lost region had and the surviving history lacks is archived
    final = {(r["workflow_id"], r["run_id"], r["event_id"], r["version"]) for r in rows}
    lost = chaos.lost_snapshot - final
    conflicts = await list_conflicts(rs.config, NS)
    archived: set[tuple[str, int, int]] = set()
    for region in (chaos.a, chaos.b):
        conn = await db.connect(rs.regions[region].dsn)
        try:
            for c in await conn.fetch(
                "SELECT workflow_id, events FROM replication_conflicts WHERE namespace = $1", NS
            ):
                archived |= {
                    (c["workflow_id"], int(e["event_id"]), int(e["version"])) for e in c["events"]
                }
        finally:
            await conn.close()
    missing = [e for e in lost if (e[0], e[2], e[3]) not in archived]
    assert not missing, f"seed {seed}: lost and not archived: {sorted(missing)[:10]}"
    reapplied = Counter(o["outcome"] for c in conflicts for o in c["reapplied"])
    print(
        f"\nchaos seed {seed}: {WORKFLOWS} workflows, "
        f"{chaos.counts['signal sends']} signal sends ({sum(len(v) for v in chaos.sent.values())}"
        f" distinct), {chaos.counts['updates completed']} updates, "
        f"{kinds['WorkflowTaskFailed']} failed workflow tasks, {attempts} activity retries "
        f"recorded, {len(lost)} events lost by the forced failover, all archived in "
        f"{len(conflicts)} conflict(s); re-applied: {dict(reapplied)}; "
        f"{verified.runs_compared} runs verified\n" + "\n".join(chaos.log)
    )


def _history_lines(rows: list[Any], workflow_id: str, run_id: str) -> str:
    """One run's history, an event a line, with what tells its writer apart."""
    keys = ("scheduled_event_id", "attempt", "identity", "request_id", "signal_name")
    lines = [f"history of {workflow_id} run {run_id}:"]
    for r in rows:
        if r["workflow_id"] == workflow_id and r["run_id"] == run_id:
            attrs = r["attributes"] or {}
            shown = {k: attrs[k] for k in keys if attrs.get(k) is not None}
            at = r["event_time"].strftime("%H:%M:%S.%f")[:-3]
            lines.append(f"  {r['event_id']:4} v{r['version']} {at} {r['event_type']} {shown}")
    return "\n".join(lines)
