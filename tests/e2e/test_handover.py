"""Graceful failovers between regions running as separate server processes.

Each test ends with `verify`: both regions hold the same history, event for
event, for every run.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from datetime import datetime
from typing import Any

import httpx
import pytest

from replication.failover import forced_failover, graceful_failover
from replication.verify import verify_namespace
from store import db
from store.errors import NamespaceNotActive
from tests.apps.workflows import ALL_ACTIVITIES, Noted, Patient, Sleeper, Steps
from tests.helpers import eventually
from tests.multiregion import Regions
from worker import BatonError, Client, Worker

pytestmark = pytest.mark.e2e
QUEUE = "handover"
SLEEPERS = 60
SIGNALLERS = 5


async def _verified(rs: Regions, ns: str, timeout: float = 60) -> Any:
    async def clean() -> Any:
        v = await verify_namespace(rs.config, ns)
        return v if v.clean else None

    return await eventually(clean, timeout=timeout, interval=1.0, what=f"verify {ns} clean")


async def test_200_workflows_move_mid_flight_and_nothing_acknowledged_is_lost(
    two_regions: Regions,
) -> None:
    rs = two_regions
    a, b = rs[0], rs[1]
    ns, n = "payments", 200
    async with await Client.connect(rs.urls, namespace=ns) as client:
        await client.create_namespace(ns, regions=[a.name, b.name], active_region=a.name)
        async with Worker(client, task_queue=QUEUE, workflows=[Noted], activities=ALL_ACTIVITIES):
            gate = asyncio.Semaphore(20)

            async def start(i: int) -> Any:
                async with gate:
                    return await client.start_workflow(
                        Noted, i, 8.0, id=f"pay-{i}", task_queue=QUEUE
                    )

            handles = await asyncio.gather(*[start(i) for i in range(n)])
            acknowledged: dict[str, list[str]] = {f"pay-{i}": [] for i in range(n)}
            stop = asyncio.Event()
            refused: Counter[str] = Counter()

            after_failover = 0
            failed_over = False

            async def signaller(k: int) -> None:
                # Signals keep arriving through the handover; each one the
                # server acknowledged must end up in its workflow's history.
                # Signaller k owns the workflows i with i % SIGNALLERS == k, so
                # one workflow's signals are sent one after another and the
                # order acknowledged is the order its history must hold.
                nonlocal after_failover
                rng = random.Random(7 + k)
                own = [i for i in range(n) if i % SIGNALLERS == k]
                j = 0
                while not stop.is_set():
                    wid = f"pay-{rng.choice(own)}"
                    text = f"n{k}.{j}"
                    try:
                        await client.get_workflow_handle(wid).signal("note", text)
                    except BatonError as exc:
                        refused[type(exc).__name__] += 1  # closed already: not acknowledged
                    else:
                        acknowledged[wid].append(text)
                        after_failover += failed_over
                    j += 1
                    await asyncio.sleep(0.01)

            sigs = [asyncio.create_task(signaller(k)) for k in range(SIGNALLERS)]
            await asyncio.sleep(3.0)  # mid-flight: first activities done, timers pending
            result = await graceful_failover(rs.config, ns, b.name, timeout_s=120)
            failed_over = True
            assert result.version == 2 and result.workflows_rebuilt > 0
            await asyncio.sleep(2.0)
            stop.set()
            await asyncio.gather(*sigs)
            results = await asyncio.gather(*[h.result(timeout=120) for h in handles])
        assert [r["value"] for r in results] == [i + 2 for i in range(n)]
        for i, r in enumerate(results):
            assert r["notes"] == acknowledged[f"pay-{i}"], f"pay-{i} lost or reordered a signal"
        print(
            f"\nsignals acknowledged {sum(len(v) for v in acknowledged.values())} "
            f"({after_failover} after the failover), refused {dict(refused)}; "
            f"failover {result.seconds} s"
        )
        assert sum(len(v) for v in acknowledged.values()) > 20
        v = await _verified(rs, ns)
        assert v.runs_compared == n
        # all completed in B, under B's version
        closed_in_b = await rs.fetchval(
            b.name,
            "SELECT count(*) FROM history_events WHERE namespace = $1 "
            "AND event_type = 'WorkflowExecutionCompleted' AND version = 2",
            ns,
        )
        assert closed_in_b == n


def _timer_offset(i: int) -> float:
    """Seconds to the ``i``-th sleeper's timer: dense first, then spread out."""
    return 5.0 + 0.01 * i if i < 30 else 5.3 + 0.2 * (i - 30)


async def test_a_timer_due_during_the_failover_fires_once_in_b_and_an_activity_resumes(
    two_regions: Regions,
) -> None:
    rs = two_regions
    a, b = rs[0], rs[1]
    ns = "timers"
    async with await Client.connect(rs.urls, namespace=ns) as client:
        await client.create_namespace(ns, regions=[a.name, b.name], active_region=a.name)
        async with Worker(
            client, task_queue=QUEUE, workflows=[Sleeper, Patient], activities=ALL_ACTIVITIES
        ):
            long = await client.start_workflow(Patient, 50, id="patient", task_queue=QUEUE)

            async def heartbeating() -> bool:
                d = await long.describe()
                acts = d["pending_activities"]
                return bool(acts) and bool(acts[0]["heartbeat_details"])

            await eventually(heartbeating, timeout=30, what="the activity heartbeating")
            # timers coming due every 10 ms for 0.3 s, then every 200 ms for 6 s:
            # the failover starts just before the first, so a handover of a few
            # tens of milliseconds still has one come due inside it, and
            # however late a loaded machine starts it, it lands among them
            sleepers = await asyncio.gather(
                *[
                    client.start_workflow(
                        Sleeper, i, _timer_offset(i), id=f"sl-{i}", task_queue=QUEUE
                    )
                    for i in range(SLEEPERS)
                ]
            )

            async def first_fire_at() -> datetime | None:
                fires = []
                for i in range(SLEEPERS):
                    events = await client.get_workflow_handle(f"sl-{i}").history()
                    started = [e for e in events if e["event_type"] == "TimerStarted"]
                    if not started:
                        return None
                    fires.append(datetime.fromisoformat(started[0]["attributes"]["fire_at"]))
                return min(fires)

            first = await eventually(first_fire_at, timeout=30, what="every timer started")
            # hand over just before the first timer comes due: the next ones
            # come due while it runs
            wait = (first - datetime.now().astimezone()).total_seconds() - 0.05
            assert wait > 0, "the timers came due before the failover could start"
            await asyncio.sleep(wait)
            marks: list[datetime] = []  # when A entered handover, when B became active
            result = await graceful_failover(
                rs.config,
                ns,
                b.name,
                timeout_s=60,
                progress=lambda _m: marks.append(datetime.now().astimezone()),
            )
            before, after = marks[0], marks[-1]
            done = await long.result(timeout=60)
            assert [await h.result(timeout=60) for h in sleepers] == [
                i + 2 for i in range(SLEEPERS)
            ]
        # the activity in flight was retried in B, from its last heartbeat
        assert done["attempt"] == 2 and done["resumed_from"] > 0, done
        due_during = 0
        for i in range(SLEEPERS):
            events = await client.get_workflow_handle(f"sl-{i}").history()
            fired = [e for e in events if e["event_type"] == "TimerFired"]
            assert len(fired) == 1, f"sl-{i} timer fired {len(fired)} times"
            started = next(e for e in events if e["event_type"] == "TimerStarted")
            fire_at = datetime.fromisoformat(started["attributes"]["fire_at"])
            if before <= fire_at <= after:
                due_during += 1
                assert fired[0]["version"] == result.version  # it fired in B
        assert due_during >= 1, f"no timer came due during the {result.seconds}s failover"
        await _verified(rs, ns)


async def test_five_failovers_back_and_forth_under_load(two_regions: Regions) -> None:
    rs = two_regions
    a, b = rs[0], rs[1]
    ns = "pingpong"
    async with await Client.connect(rs.urls, namespace=ns) as client:
        await client.create_namespace(ns, regions=[a.name, b.name], active_region=a.name)
        async with Worker(client, task_queue=QUEUE, workflows=[Steps], activities=ALL_ACTIVITIES):
            handles = [
                await client.start_workflow(Steps, 40, 0.1, id=f"pp-{i}", task_queue=QUEUE)
                for i in range(30)
            ]
            versions = []
            t0 = time.monotonic()
            for k in range(5):
                await asyncio.sleep(1.5)
                target = b.name if k % 2 == 0 else a.name
                r = await graceful_failover(rs.config, ns, target, timeout_s=60)
                versions.append(r.version)
            results = await asyncio.gather(*[h.result(timeout=180) for h in handles])
        print(f"\nfive failovers in {time.monotonic() - t0:.1f} s: versions {versions}")
        assert versions == [2, 101, 102, 201, 202]
        assert results == [40] * 30
        # each workflow ran every step once: 40 activity completions per run
        for i in (0, 29):
            kinds = Counter(
                e["event_type"] for e in await client.get_workflow_handle(f"pp-{i}").history()
            )
            assert kinds["ActivityTaskCompleted"] == 40
        await _verified(rs, ns)


async def test_a_standby_server_takes_over_publishing_when_the_holder_dies(
    two_regions: Regions,
) -> None:
    rs = two_regions
    a, b = rs[0], rs[1]
    ns = "publishers"
    # A second server process of region A on the same port: it stands by for
    # the publisher lock the first one holds.
    await rs.start(a.name)
    holder = a.procs[0]
    async with await Client.connect(rs.urls, namespace=ns) as client:
        await client.create_namespace(ns, regions=[a.name, b.name], active_region=a.name)

        async def in_b(wid: str) -> bool:
            n = await rs.fetchval(
                b.name,
                "SELECT count(*) FROM executions WHERE namespace = $1 AND workflow_id = $2",
                ns,
                wid,
            )
            return n == 1

        await client.start_workflow(Steps, 1, 0.0, id="before", task_queue="nobody")
        await eventually(lambda: in_b("before"), timeout=30, what="replication before")
        holder.kill()  # SIGKILL the publishing server
        a.procs.remove(holder)
        t0 = time.monotonic()
        await client.start_workflow(Steps, 1, 0.0, id="after", task_queue="nobody")
        await eventually(lambda: in_b("after"), timeout=60, what="replication after the kill")
        print(f"\npublisher taken over; replicated {time.monotonic() - t0:.1f} s after the kill")


async def test_a_signal_buffered_behind_a_running_workflow_task_survives_the_handover(
    two_regions: Regions,
) -> None:
    rs = two_regions
    a, b = rs[0], rs[1]
    ns = "buffered"
    async with await Client.connect(rs.urls, namespace=ns) as client:
        await client.create_namespace(ns, regions=[a.name, b.name], active_region=a.name)
        h = await client.start_workflow(Noted, 1, 0.5, id="held", task_queue="held")
        # A worker of region A takes the workflow task and never answers...
        async with httpx.AsyncClient() as http:
            r = await http.post(
                f"{a.url}/api/v1/namespaces/{ns}/workflow-tasks/poll",
                json={"task_queue": "held", "wait_s": 10},
            )
        assert r.status_code == 200 and r.json()["task"] is not None
        # ...so this signal waits in the run's buffer, not yet an event
        await h.signal("note", "buffered")
        kinds = [e["event_type"] for e in await h.history()]
        assert "WorkflowExecutionSignaled" not in kinds
        await eventually(lambda: _same_events(rs, ns, "held"), timeout=30, what="B caught up")
        await graceful_failover(rs.config, ns, b.name, timeout_s=60)
        async with Worker(client, task_queue="held", workflows=[Noted], activities=ALL_ACTIVITIES):
            result = await h.result(timeout=60)
        assert result == {"value": 3, "notes": ["buffered"]}
        await _verified(rs, ns)


async def _same_events(rs: Regions, ns: str, wid: str) -> bool:
    counts = [
        await rs.fetchval(
            r,
            "SELECT count(*) FROM history_events WHERE namespace = $1 AND workflow_id = $2",
            ns,
            wid,
        )
        for r in rs.regions
    ]
    return len(set(counts)) == 1 and counts[0] > 0


async def test_a_handover_a_forced_failover_overtook_promotes_nothing(
    three_regions: Regions,
) -> None:
    """A graceful failover to C waits for C to catch up; meanwhile an operator
    forces the namespace to B. When C catches up, the handover must not
    promote C too (two regions active at once): it ends, and B stays active."""
    rs = three_regions
    a, b, c = rs[0], rs[1], rs[2]
    ns = "overtaken"
    row_sql = "SELECT active_region, failover_version, state FROM namespaces WHERE name = $1"

    async def row(region: str) -> Any:
        conn = await db.connect(rs.regions[region].dsn)
        try:
            r = await conn.fetchrow(row_sql, ns)
            return None if r is None else tuple(r)
        finally:
            await conn.close()

    async with await Client.connect(rs.urls, namespace=ns) as client:
        await client.create_namespace(ns, regions=[a.name, b.name, c.name], active_region=a.name)
        for r in (b.name, c.name):
            await eventually(lambda r=r: row(r), timeout=30, what=f"the namespace in {r}")
        # C's servers answer but apply nothing more of the namespace for now:
        # its appliers wait for the namespace's fence, held here
        stall = await db.connect(rs.regions[c.name].dsn)
        await stall.execute("SELECT pg_advisory_lock(hashtextextended('baton-ns:' || $1, 0))", ns)
        await client.start_workflow("Nobody", id="behind", task_queue="nobody")
    try:
        handover = asyncio.create_task(graceful_failover(rs.config, ns, c.name, timeout_s=120))

        async def in_handover() -> bool:
            return await row(a.name) == (a.name, 1, "handover")

        await eventually(in_handover, timeout=30, what="the handover begun")
        forced = await forced_failover(rs.config, ns, b.name)
        assert (forced.target, forced.version) == (b.name, 2)
    finally:
        await stall.close()  # C catches up
    with pytest.raises(NamespaceNotActive, match="another failover moved it"):
        await asyncio.wait_for(handover, 60)
    assert await row(a.name) == (b.name, 2, "active")
    assert await row(b.name) == (b.name, 2, "active")

    async def c_follows_b() -> bool:
        return await row(c.name) == (b.name, 2, "active")

    await eventually(c_follows_b, timeout=30, what="C a standby of B")
