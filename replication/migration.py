"""Namespace migration: adding a standby region (with a backfill) and removing one.

``add_region`` adds the region to the namespace on the active region, which
replicates the change, then backfills every open run and every closed run
within retention through the same stream as live writes: whole histories are
put on the active region's outbox, a chunk of runs per transaction with the
cursor in ``namespace_backfills``, so a backfill stopped at any point resumes
where it stopped. Regions that hold a run already skip it as a duplicate.
It returns once the new region has applied everything; a graceful failover
can then move the namespace there with no downtime.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import asyncpg

from replication.failover import caught_up, namespace_row
from replication.readiness import serving_problem
from replication.sql import QUERIES as Q
from store import db
from store.config import BatonConfig
from store.errors import DATABASE_UNAVAILABLE, InvalidArgument, StoreError, Unavailable
from store.sql import QUERIES as SQ

#: (phase, done, total): "enqueue" counts runs put on the stream, "apply"
#: runs present in the new region.
Progress = Callable[[str, int, int], None]
CHUNK = 200
#: Seconds without a new run in the region before add-region checks that a
#: server of it still answers.
STALL_S = 10.0


@dataclass(frozen=True)
class BackfillResult:
    namespace: str
    region: str
    source: str
    runs: int
    resumed: bool
    seconds: float
    #: The region was a region of the namespace already (its standby from the
    #: start, backfilled before, or its active region): nothing changed.
    already_member: bool = False

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


async def add_region(
    config: BatonConfig,
    namespace: str,
    region: str,
    *,
    progress: Progress | None = None,
    timeout_s: float = 1800.0,
    chunk: int = CHUNK,
) -> BackfillResult:
    """Make ``region`` a standby of ``namespace`` and backfill it (resumable).

    Safe to run again: a region of the namespace already (a standby from the
    start, one backfilled before, or the active region) changes nothing and
    answers ``already_member``, so a rerun of a runbook does not fail on it.
    """
    report = progress or (lambda _p, _d, _t: None)
    started = time.monotonic()
    config.region(region)
    if not config.kafka_bootstrap:
        raise InvalidArgument("replication is off (no [kafka] in the config): cannot add a region")
    _, row = await namespace_row(config, namespace)
    source = row["active_region"]
    src = await db.connect_region(config, source, role=f"where {namespace} is active")
    try:
        bf = await src.fetchrow(Q["backfill_row"], namespace, region)
        if not (
            region == source
            or (bf is not None and bf["state"] == "done")
            or (bf is None and region in row["regions"])
        ):
            # its servers apply the backfill: with none, it would wait the
            # whole --timeout for nothing
            await _require_serving(config, namespace, region, resumed=bf is not None)
        async with src.transaction():
            bf = await src.fetchrow(Q["backfill_row"], namespace, region)
            resumed = bf is not None
            member = region == source or (bf is not None and bf["state"] == "done")
            if bf is None and not member:
                regions = await src.fetchval(Q["add_namespace_region"], namespace, region)
                member = regions is None
                if not member:
                    await src.execute(SQ["outbox_namespace"], namespace)
                    total = await src.fetchval(Q["backfill_runs_total"], namespace)
                    await src.execute(Q["insert_backfill"], namespace, region, total)
            if member:
                total = await src.fetchval(Q["backfill_runs_total"], namespace)
                return BackfillResult(
                    namespace,
                    region,
                    source,
                    int(total),
                    False,
                    round(time.monotonic() - started, 3),
                    already_member=True,
                )
        while True:
            async with src.transaction():
                bf = await src.fetchrow(Q["backfill_row"], namespace, region)
                if bf["state"] != "enqueueing":
                    break
                got = await src.fetchrow(
                    Q["enqueue_backfill_chunk"],
                    namespace,
                    bf["cursor_workflow_id"],
                    bf["cursor_run_id"],
                    chunk,
                )
                if got["runs"] == 0:
                    await src.execute(Q["set_backfill_state"], namespace, region, "shipping")
                    break
                await src.execute(
                    Q["advance_backfill"],
                    namespace,
                    region,
                    got["last_workflow_id"],
                    got["last_run_id"],
                    got["runs"],
                )
            report("enqueue", int(bf["enqueued"]) + int(got["runs"]), int(bf["total"]))
        total = int(bf["total"])
        report("enqueue", total, total)
        deadline = time.monotonic() + timeout_s
        seen, still_since = -1, time.monotonic()
        while True:
            here = await count_runs(config, region, namespace)
            report("apply", min(here, total), total)
            if here >= total and await caught_up(config, source, region, namespace):
                break
            if here != seen:
                seen, still_since = here, time.monotonic()
            elif time.monotonic() - still_since > STALL_S:
                # no run arrived for a while: are its servers still there?
                await _require_serving(config, namespace, region, resumed=True)
                still_since = time.monotonic()
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"{region} has {here} of {total} runs of {namespace!r} after {timeout_s}s; "
                    f"run `baton namespace add-region {namespace} {region}` again to resume"
                )
            await asyncio.sleep(0.5)
        report("apply", total, total)
        await src.execute(Q["set_backfill_state"], namespace, region, "done")
    finally:
        await src.close()
    return BackfillResult(
        namespace, region, source, total, resumed, round(time.monotonic() - started, 3)
    )


async def _require_serving(
    config: BatonConfig, namespace: str, region: str, *, resumed: bool
) -> None:
    """Refuse to wait for a backfill that no server of ``region`` applies."""
    why = await serving_problem(config, region)
    if why is None:
        return
    url = config.regions[region].url
    done = (
        f"its backfill is kept: once they answer, `baton namespace add-region {namespace} "
        f"{region}` again resumes it"
        if resumed
        else f"nothing changed: once they answer, run `baton namespace add-region {namespace} "
        f"{region}` again"
    )
    raise Unavailable(
        f"no server of {region} answers at {url}/healthz ({why}), and its servers apply "
        f"the backfill of {namespace}. Start them (`baton server --region {region}`); {done}",
        region=region,
        url=url,
    )


async def count_runs(config: BatonConfig, region: str, namespace: str) -> int:
    """Runs of ``namespace`` that ``region`` holds."""
    conn = await db.connect_region(config, region)
    try:
        return int(await conn.fetchval(Q["count_runs"], namespace))
    finally:
        await conn.close()


class NotARegion(InvalidArgument):
    """The region is not a region of the namespace: there is nothing to remove.
    ``details["regions"]`` holds the namespace's regions."""


class NotToldYet(Unavailable):
    """The region's database answers but it cannot leave the namespace yet: it
    has not heard of a failover, or holds batches of the namespace unshipped.
    ``details`` hold ``region`` and what keeps it."""


async def remove_region(config: BatonConfig, namespace: str, region: str) -> list[str]:
    """Take standby ``region`` out of ``namespace``; returns the regions left.

    The region keeps the histories it holds but applies nothing more of the
    namespace.
    """
    config.region(region)
    _, row = await namespace_row(config, namespace)
    source = row["active_region"]
    if region == source:
        raise InvalidArgument(
            f"{region} is the active region of {namespace!r}: move the namespace first with "
            f"`baton failover {namespace} --to REGION`"
        )
    if region not in row["regions"]:
        # A removal the region itself did not hear of (it was down) is
        # finished by running the command again.
        if await _forget_namespace(config, namespace, region):
            return list(row["regions"])
        raise NotARegion(
            f"{region} is not a region of namespace {namespace!r}", regions=list(row["regions"])
        )
    src = await db.connect_region(config, source, role=f"where {namespace} is active")
    try:
        async with src.transaction():
            regions = await src.fetchval(Q["remove_namespace_region"], namespace, region)
            if regions is None:
                # taken out (or made active) since the row above was read
                raise InvalidArgument(f"{region} is not a standby of namespace {namespace!r}")
            await src.execute(SQ["outbox_namespace"], namespace)
            await src.execute(Q["delete_backfill"], namespace, region)
    finally:
        await src.close()
    # The removed region stops applying the namespace once its row says so;
    # a single-region namespace ships no more namespace changes, so tell it here.
    try:
        await _forget_namespace(config, namespace, region)
    except NotToldYet as exc:
        # its database answered: what holds it is its own, and says what to do
        raise NotToldYet(
            f"{region} is out of namespace {namespace!r} in {source}, where it is active, but "
            f"not yet in its own database: {exc.message}",
            **exc.details,
        ) from exc
    except (StoreError, *DATABASE_UNAVAILABLE, asyncpg.PostgresError) as exc:
        raise Unavailable(
            f"{region} is out of namespace {namespace!r}, but its database could not be told "
            f"({type(exc).__name__}: {exc}): run `baton namespace remove-region {namespace} "
            f"{region}` again once it is up"
        ) from exc
    return list(regions)


async def _forget_namespace(config: BatonConfig, namespace: str, region: str) -> bool:
    """Take ``region`` out of its own row of ``namespace``; False if it was not in it.

    A region deposed by a forced failover while it was down holds itself
    the active region until it hears of the move (its servers ask their
    peers as they start): its row is not taken over, nor called "not a
    region". It must step down first and ship the writes it had not, which
    the new active region archives and applies again; a region out of the
    namespace would drop them.
    """
    gone = await db.connect_region(config, region)
    try:
        async with gone.transaction():
            row = await gone.fetchrow(SQ["get_namespace"], namespace)
            backlog = await gone.fetchval(Q["outbox_backlog_of"], namespace)
            if backlog and row is not None and region in row["regions"]:
                raise NotToldYet(
                    f"{region} has {backlog} batch(es) of {namespace!r} it wrote before the "
                    "failover and has not shipped yet (its servers ship them, to be archived "
                    "and applied again where the namespace is active; out of the namespace it "
                    f"would drop them): run `baton namespace remove-region {namespace} "
                    f"{region}` again once they are shipped",
                    region=region,
                    unshipped=int(backlog),
                )
            left = await gone.fetchval(Q["remove_namespace_region"], namespace, region)
    finally:
        await gone.close()
    if left is None and row is not None and region in row["regions"]:
        raise NotToldYet(
            f"{region} still holds itself the active region of {namespace!r} (failover "
            f"version {row['failover_version']}): it has not heard of the failover yet, so it "
            f"is not out of the namespace. Start its servers (they step down as they start, "
            f"and ship what {region} had not), then run `baton namespace remove-region "
            f"{namespace} {region}` again",
            region=region,
            active_region=region,
        )
    return left is not None
