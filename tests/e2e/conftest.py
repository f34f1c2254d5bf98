"""Fixtures of the end-to-end tests: regions as separate `baton server` processes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from ops.kafka import KafkaBroker, ensure_jars
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


@pytest.fixture
async def a_with_own_database(
    pg: PgCluster, template_db: str, kafka: str, state_dir: Path, tmp_path: Path
) -> AsyncIterator[Regions]:
    """Two regions, region-a on a PostgreSQL cluster of its own: a transaction
    held open there holds back its publisher only, and stopping that cluster
    takes down region-a alone."""
    async with server_regions(
        pg, template_db, kafka, state_dir, tmp_path, count=2, own_pg=(0,)
    ) as regions:
        yield regions


@pytest.fixture(scope="module")
def broker(state_dir: Path, request: pytest.FixtureRequest) -> Iterator[KafkaBroker]:
    """A broker of the test module's own, which its tests may kill and start again."""
    name = request.module.__name__.rsplit(".", 1)[-1]
    b = KafkaBroker.on_free_ports(state_dir / f"kafka-{name}", ensure_jars())
    asyncio.run(b.up())
    try:
        yield b
    finally:
        b.stop()
