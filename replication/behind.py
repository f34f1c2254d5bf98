"""Whether a forced failover's target is behind what another region holds.

A forced failover promotes its target from what it has applied of the lost
region's stream. Promoting a region that holds less than it might loses the
difference, so :func:`refuse_a_target_behind` refuses a target that another
reachable standby is ahead of, or that set messages of the namespace aside
as dead letters (its offsets count them as applied, yet it lacks what they
carried), unless the operator passes ``--allow-behind``.
"""

from __future__ import annotations

import asyncio

import asyncpg

from replication.publisher import topic_for
from replication.sql import QUERIES as RQ
from store import db
from store.config import BatonConfig
from store.errors import StoreError
from worker.wire import ErrorCode


class FailoverTargetBehind(StoreError):
    """Another standby has applied more of the lost region's stream than the target."""

    code = ErrorCode.FAILOVER_TARGET_BEHIND
    http_status = 409


async def applied_offsets(conn: asyncpg.Connection, source: str) -> dict[int, int]:
    """Next offset per partition of ``source``'s topic that a region has applied."""
    rows = await conn.fetch(RQ["progress"], source, topic_for(source))
    return {int(r["kafka_partition"]): int(r["next_offset"]) for r in rows}


async def refuse_a_target_behind(
    config: BatonConfig,
    dst: asyncpg.Connection,
    namespace: str,
    source: str,
    target: str,
    others: list[str],
) -> None:
    """Raise if the target set messages of ``namespace`` aside as dead letters,
    or another reachable standby has applied all the target has of the lost
    region's stream, and more: promoting the target would drop that."""
    dead = int(await dst.fetchval(RQ["dead_letters_of_namespace"], namespace))
    if dead:
        raise FailoverTargetBehind(
            f"{target} has {dead} dead letter(s) of namespace {namespace!r}: it lacks what they "
            f"carried. Retry them first (`baton replication dlq list --region {target}`, then "
            "`dlq retry`), promote another standby, or pass --allow-behind to promote "
            f"{target} anyway (a retried dead letter of {source} is then archived there as a "
            "conflict, its signals and starts applied again)",
            dead_letters=dead,
        )
    mine = await applied_offsets(dst, source)
    for other in others:
        try:
            async with asyncio.timeout(3.0):
                conn = await db.connect(config.regions[other].dsn)
                try:
                    theirs = await applied_offsets(conn, source)
                finally:
                    await conn.close()
        except Exception:
            continue  # unreachable: nothing to compare
        parts = set(mine) | set(theirs)
        ahead = sum(max(0, theirs.get(p, 0) - mine.get(p, 0)) for p in parts)
        if ahead and all(theirs.get(p, 0) >= mine.get(p, 0) for p in parts):
            raise FailoverTargetBehind(
                f"{other} has applied {ahead} more message(s) of {source}'s stream than "
                f"{target}: promote {other} instead (`baton failover {namespace} --to {other} "
                f"--force`), or pass --allow-behind to promote {target} anyway (what only "
                f"{other} holds is then archived there)",
                ahead=other,
                messages=ahead,
            )
