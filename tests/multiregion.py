"""Regions as separate `baton server` processes, for the multi-region end-to-end tests.

Each region has its own database: a fresh copy of the migrated template on the
session's PostgreSQL, or (``own_pg``) a PostgreSQL cluster of its own that a
test can stop, as a region losing its database would. All regions replicate
through a real Kafka broker under per-test region names, so topics never mix.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ops.kafka import create_topics
from ops.pg import PgCluster
from replication import topic_for
from store import db, migrations
from store.config import BatonConfig, load_config
from tests.conftest import fresh_database
from tests.helpers import Proc, free_port, server_proc, wait_healthy, write_config


@dataclass
class ServerRegion:
    name: str
    port: int
    pg: PgCluster
    dbname: str
    log: Path
    own_pg: bool = False
    procs: list[Proc] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def dsn(self) -> str:
        return self.pg.dsn(self.dbname)


@dataclass
class Regions:
    """Regions started as server processes; ``config`` names them all."""

    config_path: Path
    config: BatonConfig
    regions: dict[str, ServerRegion]
    bootstrap: str

    def __getitem__(self, i: int) -> ServerRegion:
        return list(self.regions.values())[i]

    @property
    def urls(self) -> list[str]:
        return [r.url for r in self.regions.values()]

    async def start(self, name: str) -> None:
        r = self.regions[name]
        proc = server_proc(self.config_path, name, r.log).start()
        r.procs.append(proc)
        await wait_healthy(r.url, timeout=60, proc=proc)

    def kill(self, name: str) -> None:
        """SIGKILL every server process of the region."""
        for p in self.regions[name].procs:
            p.kill()
        self.regions[name].procs.clear()

    def stop_all(self) -> None:
        for r in self.regions.values():
            for p in r.procs:
                p.stop()
            r.procs.clear()

    async def fetchval(self, name: str, sql: str, *args: object) -> object:
        conn = await db.connect(self.regions[name].dsn)
        try:
            return await conn.fetchval(sql, *args)
        finally:
            await conn.close()


async def _own_cluster(state_dir: Path, name: str) -> PgCluster:
    cluster = PgCluster(state_dir / f"pg-{name}", free_port())
    await asyncio.to_thread(cluster.start)
    await asyncio.to_thread(cluster.create_database, "baton")
    conn = await db.connect(cluster.dsn("baton"))
    try:
        await migrations.migrate_up(conn)
    finally:
        await conn.close()
    return cluster


@contextlib.asynccontextmanager
async def server_regions(
    pg: PgCluster,
    template_db: str,
    bootstrap: str,
    state_dir: Path,
    tmp_path: Path,
    *,
    count: int = 2,
    own_pg: Sequence[int] = (),
    start: Sequence[int] | None = None,
    partitions: int = 4,
) -> AsyncIterator[Regions]:
    """``count`` regions (indexes in ``start``, default all, are started)."""
    suffix = uuid.uuid4().hex[:6]
    names = [f"{chr(ord('a') + i)}{suffix}" for i in range(count)]
    own_dir = state_dir / f"regions-{suffix}"
    own_dir.mkdir(mode=0o755)
    regions: dict[str, ServerRegion] = {}
    clusters: list[PgCluster] = []
    try:
        for i, name in enumerate(names):
            if i in own_pg:
                cluster = await _own_cluster(own_dir, name)
                clusters.append(cluster)
                regions[name] = ServerRegion(
                    name, free_port(), cluster, "baton", tmp_path / f"{name}.log", own_pg=True
                )
            else:
                dbname = fresh_database(pg, template_db)
                regions[name] = ServerRegion(
                    name, free_port(), pg, dbname, tmp_path / f"{name}.log"
                )
        cfg = write_config(
            tmp_path / "regions.toml",
            {n: (r.port, r.dsn) for n, r in regions.items()},
            workflow_task_retry_max_s=1.0,
        )
        cfg.write_text(cfg.read_text() + f'\n[kafka]\nbootstrap = "{bootstrap}"\n')
        await create_topics(bootstrap, [topic_for(n) for n in names], partitions=partitions)
        handle = Regions(cfg, load_config(cfg), regions, bootstrap)
        try:
            for i, name in enumerate(names):
                if start is None or i in start:
                    await handle.start(name)
            yield handle
        finally:
            handle.stop_all()
    finally:
        for cluster in clusters:
            with contextlib.suppress(Exception):
                await asyncio.to_thread(cluster.stop)
