"""Failover versions: pure arithmetic, no database.

Each region has an initial version (region-a 1, region-b 2, ...) and all
regions share one increment (larger than the number of regions). A failover
to region R moves a namespace to the smallest version above the current one
that is congruent to R's initial version modulo the increment, so every
version names exactly one region and versions only grow.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def region_of(version: int, initial_versions: Mapping[str, int], increment: int) -> str:
    """The region a failover version belongs to."""
    residue = version % increment
    for region, initial in initial_versions.items():
        if initial % increment == residue:
            return region
    raise ValueError(f"failover version {version} belongs to no configured region")


def next_version(current: int, target_initial: int, increment: int) -> int:
    """The smallest version above ``current`` that belongs to the target region."""
    if not 0 < target_initial < increment:
        raise ValueError(f"initial version {target_initial} must be in 1..{increment - 1}")
    base = current - current % increment + target_initial
    return base if base > current else base + increment


def wins(version_a: int, version_b: int) -> bool:
    """Whether history written under ``version_a`` beats ``version_b`` (higher wins)."""
    return version_a > version_b


def row_rank(region: str, row: Mapping[str, Any]) -> tuple[int, bool]:
    """How new one region's copy of a namespace row is: the higher failover
    version first, then, within a version, the active region's own copy (the
    region changes of a namespace are made there)."""
    return int(row["failover_version"]), region == row["active_region"]
