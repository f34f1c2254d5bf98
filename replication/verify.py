"""``baton replication verify``: compare a namespace's histories across its regions.

Each region computes one checksum per run over every event (id, type, time,
failover version, attributes) in its own database; runs whose checksums
differ, or that one region lacks, are listed. A region of the namespace that
holds no row of it (the namespace never reached it) lacks every run.

A standby behind by its replication lag holds less of a run (or none of a
new one) for a moment: while every difference is of that kind, verify looks
again for up to :data:`SETTLE_S` before it reports them.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from replication.failover import namespace_row
from replication.sql import QUERIES as Q
from store import db
from store.config import BatonConfig
from store.errors import InvalidArgument, NamespaceNotFound
from store.sql import QUERIES as SQ

#: How long verify waits for regions that hold less of some runs to catch up.
SETTLE_S = 5.0


@dataclass(frozen=True)
class RunDifference:
    workflow_id: str
    run_id: str
    #: per region: {"events": n, "last_event_id": n, "checksum": hex} or None if missing
    regions: dict[str, dict[str, Any] | None]


@dataclass
class VerifyResult:
    namespace: str
    regions: list[str]
    runs_compared: int = 0
    differences: list[RunDifference] = field(default_factory=list)
    #: regions of the namespace that hold no row of it
    namespace_missing: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not self.differences and not self.namespace_missing

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "clean": self.clean}


async def _checksums(
    config: BatonConfig, region: str, namespace: str
) -> dict[tuple[str, str], dict[str, Any]] | None:
    conn = await db.connect_region(config, region, role=f"a region of {namespace}")
    try:
        if await conn.fetchrow(SQ["get_namespace"], namespace) is None:
            return None
        rows = await conn.fetch(Q["run_checksums"], namespace)
    finally:
        await conn.close()
    return {
        (r["workflow_id"], str(r["run_id"])): {
            "events": r["events"],
            "last_event_id": r["last_event_id"],
            "checksum": r["checksum"],
        }
        for r in rows
    }


def _behind(diff: RunDifference) -> bool:
    """Whether a region lacks the run or holds fewer of its events than another:
    what replication lag looks like, and so may be gone in a moment."""
    lengths = [v["last_event_id"] if v else 0 for v in diff.regions.values()]
    return min(lengths) < max(lengths)


async def verify_namespace(
    config: BatonConfig,
    namespace: str,
    regions: list[str] | None = None,
    *,
    settle_s: float = SETTLE_S,
) -> VerifyResult:
    """Compare every run of ``namespace`` in every region of the namespace.

    While every difference is a region holding less of a run (its replication
    lag), compare again for up to ``settle_s`` seconds before reporting them.
    """
    deadline = time.monotonic() + settle_s
    while True:
        result = await _compare(config, namespace, regions)
        lagging = result.differences and all(_behind(d) for d in result.differences)
        if not (lagging or result.namespace_missing) or time.monotonic() >= deadline:
            return result
        await asyncio.sleep(0.25)


async def _compare(config: BatonConfig, namespace: str, regions: list[str] | None) -> VerifyResult:
    if regions is None:
        # the regions of the namespace, as its newest row (highest version) says
        _, row = await namespace_row(config, namespace)
        regions = list(row["regions"])
    for r in regions:
        config.region(r)
    if len(regions) < 2:
        raise InvalidArgument(
            f"verify compares regions: namespace {namespace!r} has fewer than two ({regions})"
        )
    per_region: dict[str, dict[tuple[str, str], dict[str, Any]]] = {}
    missing: list[str] = []
    for r in regions:
        # verify compares every region's copy: one that cannot be read fails it
        sums = await _checksums(config, r, namespace)
        if sums is None:
            # Left out, it would let a region that never received the
            # namespace pass for one equal to the others.
            missing.append(r)
        per_region[r] = sums or {}
    if len(missing) == len(regions):
        raise NamespaceNotFound(f"namespace {namespace!r} exists in no region")
    held = sorted(per_region)
    result = VerifyResult(namespace, held, namespace_missing=sorted(missing))
    keys = sorted(set().union(*(s.keys() for s in per_region.values())))
    result.runs_compared = len(keys)
    for key in keys:
        seen = {r: per_region[r].get(key) for r in held}
        distinct = {v["checksum"] if v else None for v in seen.values()}
        if len(distinct) > 1:
            result.differences.append(RunDifference(key[0], key[1], seen))
    return result
