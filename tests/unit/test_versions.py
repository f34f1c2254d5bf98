"""Failover version arithmetic (pure)."""

from __future__ import annotations

import pytest

from replication.versions import next_version, region_of, wins

REGIONS = {"region-a": 1, "region-b": 2, "region-c": 3}


def test_next_version_is_the_smallest_above_that_names_the_target() -> None:
    assert next_version(1, 2, 100) == 2
    assert next_version(2, 1, 100) == 101
    assert next_version(101, 2, 100) == 102
    assert next_version(102, 2, 100) == 202  # failing over to where it already is still grows
    assert next_version(199, 3, 100) == 203


def test_every_version_names_exactly_one_region() -> None:
    v = 1
    for target in ["region-b", "region-a", "region-c", "region-b", "region-a"]:
        nv = next_version(v, REGIONS[target], 100)
        assert nv > v
        assert region_of(nv, REGIONS, 100) == target
        v = nv


def test_unknown_version_and_bad_initial_version() -> None:
    with pytest.raises(ValueError, match="no configured region"):
        region_of(105, REGIONS, 100)
    with pytest.raises(ValueError, match=r"1\.\.99"):
        next_version(1, 100, 100)


def test_higher_version_wins() -> None:
    assert wins(102, 101)
    assert not wins(101, 102)
