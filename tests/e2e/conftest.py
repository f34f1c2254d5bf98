"""Fixtures of the end-to-end tests: regions as separate `baton server` processes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ops.pg import PgCluster
from tests.multiregion import Regions, server_regions


@pytest.fixture
async def two_regions(
    pg: PgCluster, template_db: str, kafka: str, state_dir: Path, tmp_path: Path
) -> AsyncIterator[Regions]:
    """Two regions on the session's PostgreSQL and Kafka broker."""
    async with server_regions(pg, template_db, kafka, state_dir, tmp_path, count=2) as regions:
        yield regions


@pytest.fixture
async def three_regions(
    pg: PgCluster, template_db: str, kafka: str, state_dir: Path, tmp_path: Path
) -> AsyncIterator[Regions]:
    """Three regions on the session's PostgreSQL and Kafka broker."""
    async with server_regions(pg, template_db, kafka, state_dir, tmp_path, count=3) as regions:
        yield regions
