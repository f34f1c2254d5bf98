"""Moving a namespace between regions: the graceful handover.

1. The active region puts the namespace in ``handover``: writes get the
   retryable ``NAMESPACE_IN_HANDOVER`` (the SDK waits it out) and, since every
   write holds the namespace row in share mode, the update waits for writes
   in flight.
2. The target drains the stream: the source's outbox empties (every batch is
   in Kafka) and the target's applier reaches the end of every partition of
   the source's topic.
3. The target becomes active under its next failover version and rebuilds the
   pending work of every open workflow; the source becomes a standby.

If the target does not catch up in time, the source goes back to ``active``
and the call says so. Nothing acknowledged is lost: RPO 0.

A forced failover (``--force``) is for a source that is down: the target takes
its next failover version at once, from what it has applied. What the source
had not shipped is not in the target; when the source returns, the higher
version makes it a standby, it archives its divergent tail and the target
re-applies the signals and starts from it (see ``replication.apply``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import asyncpg

from replication.behind import FailoverTargetBehind as FailoverTargetBehind
from replication.behind import applied_offsets as _applied
from replication.behind import refuse_a_target_behind
from replication.publisher import topic_for
from replication.readiness import FailoverTargetDeadLetters as FailoverTargetDeadLetters
from replication.readiness import (
    refuse_dead_letters_after_drain,
    require_ready,
    require_serving,
    require_source_shipping,
)
from replication.sql import QUERIES as RQ
from replication.status import end_offsets
from replication.versions import next_version, row_rank
from store import db
from store.config import BatonConfig
from store.errors import (
    Conflict,
    InvalidArgument,
    NamespaceInHandover,
    NamespaceNotActive,
    NamespaceNotFound,
    StoreError,
    Unavailable,
    wrap_exceptions,
)
from store.rebuild import rebuild_namespace_txn
from store.sql import QUERIES as Q
from worker.wire import ErrorCode
from worker.wire.requests import namespace_name_problem


class FailoverTimedOut(StoreError):
    """The target region did not catch up in time; the namespace stayed where it was."""

    code = ErrorCode.FAILOVER_TIMED_OUT
    http_status = 504
    retryable = True


@dataclass(frozen=True)
class FailoverResult:
    namespace: str
    source: str
    target: str
    version: int
    workflows_rebuilt: int
    seconds: float
    forced: bool = False
    #: The namespace was left in handover by a failover that died, and this
    #: call put it back to active in ``source`` instead of moving it.
    handover_abandoned: bool = False
    #: The namespace was already active in ``target``, and this call told
    #: ``source``, left in handover by a failover that died after promoting
    #: ``target``, that it moved (as the stream would, once it runs).
    handover_finished: bool = False
    #: The namespace was already active in ``target`` with nothing left to
    #: finish: nothing moved (a retry after a lost answer lands here).
    already_active: bool = False

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


async def namespace_row(config: BatonConfig, namespace: str) -> tuple[str, dict[str, Any]]:
    """The newest row of the namespace: the highest failover version, and among
    rows of that version the active region's own. Unreachable regions are
    skipped (every region is asked at once, so each waits at most 5 s)."""
    if (problem := namespace_name_problem(namespace)) is not None:
        # no region can hold it: the operator mistyped it
        raise InvalidArgument(problem)

    async def row_of(name: str) -> dict[str, Any] | None:
        conn = await db.connect(
            config.regions[name].dsn, timeout=min(5.0, config.connect_timeout_s), region=name
        )
        try:
            row = await conn.fetchrow(Q["get_namespace"], namespace)
        finally:
            await conn.close()
        return None if row is None else dict(row)

    names = list(config.regions)
    answers = await asyncio.gather(*(row_of(n) for n in names), return_exceptions=True)
    rows: list[tuple[str, dict[str, Any]]] = []
    failed: list[tuple[str, BaseException]] = []
    for name, answer in zip(names, answers, strict=True):
        if isinstance(answer, BaseException):
            if not isinstance(answer, Exception):
                raise answer  # a cancellation, an interrupt
            # that region's database is down, or cannot answer (not migrated,
            # shutting down)
            failed.append((name, answer))
        elif answer is not None:
            rows.append((name, answer))
    if not rows and failed:
        # it may be in the regions that did not answer
        raise Unavailable(
            f"namespace {namespace!r} is in no region that answered, and "
            f"{', '.join(n for n, _ in failed)} did not: "
            + "; ".join(
                getattr(e, "message", None) or f"{type(e).__name__}: {e}" for _, e in failed
            )
        )
    if not rows:
        raise NamespaceNotFound(
            f"namespace {namespace!r} exists in no region: `baton namespace list` "
            "shows the namespaces there are"
        )
    return max(rows, key=lambda nr: row_rank(*nr))


async def _connect(config: BatonConfig, region: str, role: str) -> asyncpg.Connection:
    """A connection to ``region``'s database; one that fails names the region."""
    return await db.connect_region(config, region, role=role)


async def caught_up(config: BatonConfig, source: str, target: str, namespace: str) -> bool:
    """Whether ``target`` has applied everything ``source`` wrote of ``namespace``."""
    return await drain_left(config, source, target, namespace) is None


async def drain_left(config: BatonConfig, source: str, target: str, namespace: str) -> str | None:
    """What ``target`` still lacks of ``source``'s stream, said for an operator
    watching a drain, or None once it has applied everything of ``namespace``."""
    src = await _connect(config, source, "the failover's source")
    try:
        backlog = await src.fetchval(RQ["outbox_backlog_of"], namespace)
    finally:
        await src.close()
    if backlog:
        return f"{backlog} batch(es) of {namespace} in {source}'s outbox, not yet shipped"
    assert config.kafka_bootstrap
    ends = await end_offsets(config.kafka_bootstrap, [topic_for(source)])
    dst = await _connect(config, target, "the failover's target")
    try:
        done = await _applied(dst, source)
    finally:
        await dst.close()
    left = sum(max(0, end - done.get(p, 0)) for (_t, p), end in ends.items())
    if not left:
        return None
    return f"{left} message(s) of {source}'s stream not yet applied in {target}"


async def graceful_failover(
    config: BatonConfig,
    namespace: str,
    target: str,
    *,
    timeout_s: float = 60.0,
    progress: Callable[[str], None] | None = None,
) -> FailoverResult:
    """Hand ``namespace`` over to ``target`` with nothing acknowledged lost."""
    say = progress or (lambda _m: None)
    started = time.monotonic()
    config.region(target)
    if not config.kafka_bootstrap:
        raise InvalidArgument("replication is off (no [kafka] in the config): nothing to fail over")
    _, row = await namespace_row(config, namespace)
    source = row["active_region"]
    if target == source:
        if row["state"] == "handover":
            return await _abandon_handover(config, namespace, source, started)
        current = int(row["failover_version"])
        told = await _finish_left_handovers(config, namespace, target, current, row["regions"])
        if told:
            return FailoverResult(
                namespace,
                ", ".join(told),
                target,
                current,
                0,
                round(time.monotonic() - started, 3),
                handover_finished=True,
            )
        return _already_active(namespace, target, current, started)
    if target not in row["regions"]:
        raise _not_a_region(namespace, target, row["regions"], forced=False)
    try:
        src = await db.connect_region(config, source, role=f"where {namespace} is active")
    except Unavailable as exc:
        raise Unavailable(
            f"{exc.message}. A "
            f"graceful failover hands over from there. If {source} is down, `baton failover "
            f"{namespace} --to {target} --force` promotes {target} from what it has applied"
        ) from exc
    locked = promoted = False
    try:
        await require_ready(config, src, target, namespace)
        # Before the handover: a target with no server applies nothing, so
        # the drain would hold every write for the whole --timeout first.
        await require_serving(config, source, target, namespace)
        await require_source_shipping(config, src, source, target, namespace)
        # Two failovers of one namespace would each drain the stream and
        # promote their own target, under versions computed from the same
        # one: the first promotion ends the handover, the other drains only
        # the old source and promotes a second region while the first takes
        # writes. So only the holder of the lock hands over.
        locked = await src.fetchval(RQ["try_failover_lock"], namespace)
        if not locked:
            raise NamespaceInHandover(
                f"a failover of namespace {namespace!r} from {source} is already running; "
                f"wait for it to end (`baton namespace describe {namespace}`), then run this "
                "again if the namespace is not where you want it"
            )
        version = await src.fetchval(Q["set_namespace_state"], namespace, source, "handover")
        if version is None:
            raise InvalidArgument(f"namespace {namespace!r} is not active in {source}")
        say(f"{namespace} is in handover in {source}; draining the stream to {target}")
        deadline = started + timeout_s
        while (left := await drain_left(config, source, target, namespace)) is not None:
            say(f"{namespace} is in handover in {source}, draining to {target}: {left}")
            await _require_handover(src, namespace, source, int(version))
            if time.monotonic() > deadline:
                await _revert(src, namespace, source)
                raise FailoverTimedOut(
                    f"{target} did not catch up with {source} within {timeout_s}s; "
                    f"{namespace} stays active in {source}. See how far behind it is with "
                    f"`baton replication status --namespace {namespace}` (the servers of "
                    f"{target} apply the stream, and {source}'s ship it), then run this again, "
                    "with a longer --timeout if it is catching up"
                )
            await asyncio.sleep(0.2)
        # set aside while draining
        await refuse_dead_letters_after_drain(config, source, target, namespace)
        # again: its servers may have stopped during the drain
        await require_serving(config, source, target, namespace)
        await _require_handover(src, namespace, source, int(version))
        new_version = next_version(
            int(version), config.regions[target].initial_version, config.failover_version_increment
        )
        rebuilt = await _promote(config, namespace, source, target, new_version)
        if rebuilt is None:
            raise InvalidArgument(f"{target} has no row of namespace {namespace!r} yet")
        promoted = True
        say(f"{namespace} is active in {target} (failover version {new_version})")
        # If this fails the source still learns the move from the stream; it
        # must never go back to active once the target is.
        await move_namespace_here(src, namespace, target, new_version)
    except BaseException as exc:
        if (
            locked
            and not promoted
            and not await _reverted(src, namespace, source)
            and isinstance(exc, Exception)
        ):
            raise _left_in_handover(exc, namespace, source, target) from exc
        raise
    finally:
        await src.close()
    return FailoverResult(
        namespace, source, target, new_version, rebuilt, round(time.monotonic() - started, 3)
    )


async def _reverted(conn: asyncpg.Connection, namespace: str, source: str) -> bool:
    """Put a handover this failover began back to active; False if the source's
    database (lost during the failover) could not be told."""
    if conn.is_closed():
        return False
    try:
        with wrap_exceptions():
            await _revert(conn, namespace, source)
    except Unavailable:
        return False
    return True


def _left_in_handover(exc: Exception, namespace: str, source: str, target: str) -> Unavailable:
    """The error of a failover that lost its source's database after it began
    the handover: the namespace stays in handover there, and the error says so
    and names both ways out, as for a failover whose process was killed."""
    why = exc.message if isinstance(exc, StoreError) else f"{type(exc).__name__}: {exc}"
    return Unavailable(
        f"{why.rstrip('.')}. {namespace} is left in handover in {source} (writes wait): once "
        f"{source}'s database answers, `baton failover {namespace} --to {target}` carries the "
        f"move through, or `baton failover {namespace} --to {source}` puts it back to active "
        f"in {source}",
        region=source,
        namespace=namespace,
        state="handover",
    )


def _already_active(namespace: str, target: str, version: int, started: float) -> FailoverResult:
    seconds = round(time.monotonic() - started, 3)
    return FailoverResult(namespace, target, target, version, 0, seconds, already_active=True)


def _not_a_region(
    namespace: str, target: str, regions: list[str], *, forced: bool
) -> InvalidArgument:
    """A failover to a region the namespace does not replicate to, and what to do instead."""
    held = f"{target} is not a region of namespace {namespace!r} ({', '.join(regions)})"
    if forced:
        # add-region backfills from the active region, which is down
        return InvalidArgument(f"{held}: only a region that holds it can be promoted")
    return InvalidArgument(
        f"{held}: add it first with `baton namespace add-region {namespace} {target}` "
        "(it backfills the histories there), then fail over"
    )


async def _abandon_handover(
    config: BatonConfig, namespace: str, source: str, started: float
) -> FailoverResult:
    """Put ``namespace`` back to active in ``source``, where a failover that died
    (its process killed before it could undo its handover) left it in handover,
    refusing every write. A failover still running keeps it: it ends the
    handover itself, one way or the other.
    """
    src = await _connect(config, source, f"where {namespace} is in handover")
    try:
        if not await src.fetchval(RQ["try_failover_lock"], namespace):
            raise NamespaceInHandover(
                f"a failover of namespace {namespace!r} from {source} is running; wait for it "
                f"to end (or interrupt it: it puts {namespace} back to active in {source})"
            )
        await _revert(src, namespace, source)
        row = await src.fetchrow(Q["get_namespace"], namespace)
    finally:
        await src.close()
    if row is None or row["active_region"] != source or row["state"] != "active":
        raise NamespaceNotActive(
            f"{namespace} moved while its handover was abandoned: see "
            f"`baton namespace describe {namespace}`"
        )
    return FailoverResult(
        namespace,
        source,
        source,
        int(row["failover_version"]),
        0,
        round(time.monotonic() - started, 3),
        handover_abandoned=True,
    )


async def _finish_left_handovers(
    config: BatonConfig, namespace: str, target: str, version: int, regions: list[str]
) -> list[str]:
    """Tell each region that still holds ``namespace`` in a handover of an
    older version (its failover died after promoting ``target``, before it
    told the source) that it is a standby now; the regions told.

    The stream carries the same news once it runs; until then that region
    refused every write, and running the failover again must end that.
    """
    told: list[str] = []
    for region in regions:
        if region == target:
            continue
        try:
            conn = await _connect(config, region, f"where {namespace} may be left in handover")
        except Unavailable:
            continue  # down: it learns the move from the stream when it returns
        try:
            row = await conn.fetchrow(Q["get_namespace"], namespace)
            if (
                row is not None
                and row["state"] == "handover"
                and int(row["failover_version"]) < version
                and await move_namespace_here(conn, namespace, target, version) is not None
            ):
                told.append(region)
        finally:
            await conn.close()
    return told


async def _require_handover(
    src: asyncpg.Connection, namespace: str, source: str, version: int
) -> None:
    """Raise unless ``namespace`` is still in the handover this failover began.

    A forced failover run meanwhile moves it on under a version of its own;
    promoting the target too, from the version the handover began with,
    would make two regions active at once.
    """
    row = await src.fetchrow(Q["get_namespace"], namespace)
    if (
        row is None
        or row["active_region"] != source
        or row["state"] != "handover"
        or int(row["failover_version"]) != version
    ):
        where = (
            "gone"
            if row is None
            else (f"active in {row['active_region']} under version {row['failover_version']}")
        )
        raise NamespaceNotActive(
            f"{namespace} left the handover in {source} before it ended (it is {where}): "
            "another failover moved it; nothing was promoted (see "
            f"`baton namespace describe {namespace}`)"
        )


#: Attempts at a promotion that meets a deadlock or serialization failure.
PROMOTION_ATTEMPTS = 5


async def _promote(
    config: BatonConfig, namespace: str, source: str, target: str, version: int
) -> int | None:
    """Make ``target`` active under ``version`` and rebuild every open run there, in one
    transaction; returns how many runs were rebuilt, or None if the namespace did not
    move (``target`` has no row of it, or is already past ``version``).

    The promotion takes the namespace's fence before it locks any run, the
    order every writer keeps; a deadlock or serialization failure it still meets (with an applier
    transaction, say) is retried from the start.
    """
    region_urls = {n: r.url for n, r in config.regions.items()}
    for attempt in range(1, PROMOTION_ATTEMPTS + 1):
        dst = await _connect(config, target, "the failover's target")
        try:
            with wrap_exceptions():
                async with dst.transaction():
                    old = await dst.fetchrow(Q["get_namespace"], namespace)
                    moved = await move_namespace_here(dst, namespace, target, version)
                    if moved is None or old is None:
                        return None
                    rebuilt = await rebuild_namespace_txn(
                        dst,
                        namespace,
                        target,
                        region_urls,
                        retry_max_s=config.workflow_task_retry_max_s,
                        old_region=source,
                        old_version=int(old["failover_version"]),
                    )
                    await dst.execute(Q["outbox_namespace"], namespace)
            return rebuilt
        except Conflict:
            if attempt == PROMOTION_ATTEMPTS:
                raise
            await asyncio.sleep(0.05 * attempt)
        finally:
            await dst.close()
    raise AssertionError("unreachable")


async def move_namespace_here(
    conn: asyncpg.Connection, namespace: str, target: str, version: int
) -> str | None:
    """Move ``namespace`` to ``target`` under ``version`` in ``conn``'s region
    and drop the pending work held there (a promotion rebuilds it after, in
    the caller's transaction); returns None if it was past ``version``.

    The fence is taken by a statement of its own, before the move: the move's
    deletes read the snapshot their statement starts with, and a snapshot
    taken before waiting for the writes in flight would miss the tasks, timers
    and activities they commit meanwhile, which would stay behind.
    """
    async with conn.transaction():
        await conn.execute(RQ["lock_namespace_for_promotion"], namespace)
        moved: str | None = await conn.fetchval(Q["move_namespace"], namespace, target, version)
        return moved


async def _revert(conn: asyncpg.Connection, namespace: str, source: str) -> None:
    await conn.execute(RQ["revert_handover"], namespace, source)


async def forced_failover(
    config: BatonConfig,
    namespace: str,
    target: str,
    *,
    progress: Callable[[str], None] | None = None,
    source_timeout_s: float = 3.0,
    allow_behind: bool = False,
) -> FailoverResult:
    """Promote ``target`` at once, without the (unreachable) active region.

    Events the old region had not shipped are not in the target (RPO > 0);
    they are archived, and their signals and starts re-applied, when it returns.
    Another standby that applied more of the old region's stream would lose
    that much too, so it refuses such a target unless ``allow_behind``.
    """
    say = progress or (lambda _m: None)
    started = time.monotonic()
    config.region(target)
    # The newest row any reachable region holds: a region taken out of the
    # namespace may not know it yet, and must not promote itself.
    _, newest = await namespace_row(config, namespace)
    if target not in newest["regions"]:
        raise _not_a_region(namespace, target, newest["regions"], forced=True)
    dst = await _connect(config, target, "the region to promote (nothing moved)")
    try:
        row = await dst.fetchrow(Q["get_namespace"], namespace)
        if row is None:
            raise NamespaceNotFound(
                f"{target} has no row of namespace {namespace!r}: nothing replicated there yet"
            )
        source = row["active_region"]
        if target not in row["regions"]:
            raise _not_a_region(namespace, target, row["regions"], forced=True)
        if source == target and row["state"] == "handover":
            # the handover of a failover that died: there is nothing to force
            return await _abandon_handover(config, namespace, source, started)
        if source == target:
            return _already_active(namespace, target, int(row["failover_version"]), started)
        if not allow_behind:
            others = [r for r in newest["regions"] if r not in (source, target)]
            await refuse_a_target_behind(config, dst, namespace, source, target, others)
        new_version = next_version(
            int(row["failover_version"]),
            config.regions[target].initial_version,
            config.failover_version_increment,
        )
    finally:
        await dst.close()
    rebuilt = await _promote(config, namespace, source, target, new_version)
    if rebuilt is None:
        raise InvalidArgument(
            f"namespace {namespace!r} moved in {target} meanwhile; see "
            f"`baton namespace describe {namespace}`"
        )
    say(f"{namespace} is active in {target} (failover version {new_version}), forced")
    # Tell the old region now if it can be reached; otherwise it learns the
    # new version from the stream when it returns.
    try:
        async with asyncio.timeout(source_timeout_s):
            src = await db.connect(config.regions[source].dsn)
            try:
                await move_namespace_here(src, namespace, target, new_version)
            finally:
                await src.close()
    except Exception:
        say(f"{source} is unreachable; it becomes a standby when it returns")
    return FailoverResult(
        namespace,
        source,
        target,
        new_version,
        rebuilt,
        round(time.monotonic() - started, 3),
        forced=True,
    )
