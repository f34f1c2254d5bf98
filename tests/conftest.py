"""Fixtures: a real PostgreSQL cluster per session, a fresh region database per test.

The cluster is started by the project's own code (ops/pg.py) in a temporary
folder. A template database with every migration applied is made once;
each test gets a copy of it (CREATE DATABASE ... TEMPLATE), as procrastinate's
test suite does, so tests never see each other's rows.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from ops.pg import PgCluster
from store import clock, db, migrations
from store.api import create_app
from store.config import BatonConfig, load_config
from store.context import Store
from store.server import LoopFactory, running_store
from tests.helpers import free_port, wait_healthy, write_config
from worker import Client

TEMPLATE_DB = "baton_template"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--chaos-seed",
        default="20261130",
        help="Seed of the chaos test (tests/e2e/test_chaos.py): replay a failure with it.",
    )


FIGURES = "figures"


@pytest.fixture
def show_figures(request: pytest.FixtureRequest) -> Callable[[str, object], None]:
    """Record figures a test prints for the log (a benchmark's, say).

    They are printed in the run's summary, passing or not, also when the tests
    run in several processes (pytest-xdist), which do not pass a test's own
    output on.
    """

    def show(title: str, figures: object) -> None:
        text = figures if isinstance(figures, str) else json.dumps(figures, indent=2)
        request.node.user_properties.append((FIGURES, f"{title}\n{text}"))

    return show


def pytest_terminal_summary(terminalreporter: Any) -> None:
    shown = [
        value
        for reports in terminalreporter.stats.values()
        for report in reports
        if getattr(report, "when", None) == "call"
        for name, value in getattr(report, "user_properties", ())
        if name == FIGURES
    ]
    if shown:
        terminalreporter.section("figures")
        for text in shown:
            terminalreporter.write_line(text)


@pytest.fixture(autouse=True)
def _real_time_again() -> Iterator[None]:
    """A test that moved the server's test clock leaves real time behind it."""
    yield
    clock.reset()


@pytest.fixture(scope="session")
def state_dir() -> Iterator[Path]:
    # Not pytest's tmp_path: the postgres user must be able to traverse it.
    path = Path(tempfile.mkdtemp(prefix="baton-test-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def pg(state_dir: Path) -> Iterator[PgCluster]:
    cluster = PgCluster(state_dir / "pg", free_port())
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop(mode="immediate")  # thrown away: no shutdown checkpoint


@pytest.fixture(scope="session")
def template_db(pg: PgCluster) -> str:
    pg.create_database(TEMPLATE_DB)

    async def migrate() -> None:
        conn = await db.connect(pg.dsn(TEMPLATE_DB))
        try:
            await migrations.migrate_up(conn)
        finally:
            await conn.close()

    asyncio.run(migrate())
    return TEMPLATE_DB


def fresh_database(pg: PgCluster, template: str) -> str:
    name = f"t_{uuid.uuid4().hex[:12]}"
    pg.psql("postgres", f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    return name


@dataclass
class Region:
    """One region served in-process on a fresh database."""

    name: str
    url: str
    dbname: str
    config: BatonConfig
    config_path: Path
    store: Store
    pg: PgCluster

    @property
    def dsn(self) -> str:
        return self.pg.dsn(self.dbname)


@contextlib.asynccontextmanager
async def serve_region(
    config: BatonConfig, region: str, loops: Sequence[LoopFactory] = ()
) -> AsyncIterator[Store]:
    rc = config.regions[region]
    async with running_store(config, region, loops) as store:
        server = uvicorn.Server(
            uvicorn.Config(
                create_app(store),
                host="127.0.0.1",
                port=rc.port,
                log_level="warning",
                lifespan="off",
                timeout_graceful_shutdown=1,
                access_log=False,
            )
        )
        task = asyncio.create_task(server.serve())
        try:
            await wait_healthy(rc.url)
            yield store
        finally:
            store.notifier.drain()
            server.should_exit = True
            await asyncio.wait_for(task, 15)


@contextlib.asynccontextmanager
async def one_region(
    pg: PgCluster, template_db: str, tmp_path: Path, **settings: object
) -> AsyncIterator[Region]:
    dbname = fresh_database(pg, template_db)
    port = free_port()
    cfg = write_config(
        tmp_path / "baton.toml",
        {"region-a": (port, pg.dsn(dbname))},
        **{"workflow_task_retry_max_s": 1.0, **settings},
    )
    config = load_config(cfg)
    async with serve_region(config, "region-a") as store:
        yield Region("region-a", config.regions["region-a"].url, dbname, config, cfg, store, pg)


@pytest.fixture
async def region(pg: PgCluster, template_db: str, tmp_path: Path) -> AsyncIterator[Region]:
    async with one_region(pg, template_db, tmp_path) as r:
        yield r


@pytest.fixture
async def clock_region(pg: PgCluster, template_db: str, tmp_path: Path) -> AsyncIterator[Region]:
    """A region whose server runs on the test clock (``POST /v1/clock/advance``)."""
    async with one_region(pg, template_db, tmp_path, test_clock=True) as r:
        yield r


@contextlib.asynccontextmanager
async def default_namespace_client(region: Region) -> AsyncIterator[Client]:
    c = await Client.connect(region.url, namespace="default")
    try:
        await c.create_namespace("default")
        yield c
    finally:
        await c.close()


@pytest.fixture
async def client(region: Region) -> AsyncIterator[Client]:
    async with default_namespace_client(region) as c:
        yield c


@pytest.fixture
async def clock_client(clock_region: Region) -> AsyncIterator[Client]:
    """A client of the ``default`` namespace of a test-clock region."""
    async with default_namespace_client(clock_region) as c:
        yield c


@pytest.fixture
def activity_log(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "activities.log"
    path.touch()
    old = os.environ.get("BATON_TEST_ACTIVITY_LOG")
    os.environ["BATON_TEST_ACTIVITY_LOG"] = str(path)
    yield path
    if old is None:
        os.environ.pop("BATON_TEST_ACTIVITY_LOG", None)
    else:
        os.environ["BATON_TEST_ACTIVITY_LOG"] = old


@pytest.fixture(scope="session")
def kafka(state_dir: Path) -> Iterator[str]:
    """A real single-node Kafka broker (KRaft) for the session; yields its bootstrap."""
    from ops.kafka import KafkaBroker, ensure_jars

    broker = KafkaBroker.on_free_ports(state_dir / "kafka", ensure_jars())
    asyncio.run(broker.up())
    try:
        yield broker.bootstrap
    finally:
        # Its data goes with the session: no need to wait out a clean shutdown
        # of every test's partitions (about half a minute at the end of a run).
        broker.stop(timeout=5)


@dataclass
class RegionPair:
    """Two regions on fresh databases, replicating through Kafka."""

    a: Region
    b: Region


@contextlib.asynccontextmanager
async def region_pair(
    pg: PgCluster, template_db: str, kafka: str, tmp_path: Path, **settings: object
) -> AsyncIterator[RegionPair]:
    from ops.kafka import create_topics
    from replication import server_loops, topic_for

    dbs = {r: fresh_database(pg, template_db) for r in ("region-a", "region-b")}
    ports = {r: free_port() for r in dbs}
    cfg = write_config(
        tmp_path / "baton.toml",
        {r: (ports[r], pg.dsn(db)) for r, db in dbs.items()},
        workflow_task_retry_max_s=1.0,
        **settings,
    )
    # a fresh topic name space per test: the broker lives for the session
    suffix = uuid.uuid4().hex[:8]
    text = cfg.read_text().replace("region-a", f"a{suffix}").replace("region-b", f"b{suffix}")
    cfg.write_text(text + f'\n[kafka]\nbootstrap = "{kafka}"\n')
    config = load_config(cfg)
    names = list(config.regions)
    await create_topics(kafka, [topic_for(r) for r in names], partitions=4)
    async with contextlib.AsyncExitStack() as stack:
        handles = []
        for name in names:
            store = await stack.enter_async_context(
                serve_region(config, name, loops=server_loops())
            )
            db = dbs["region-a" if name.startswith("a") else "region-b"]
            handles.append(Region(name, config.regions[name].url, db, config, cfg, store, pg))
        yield RegionPair(handles[0], handles[1])


@pytest.fixture
async def regions(
    pg: PgCluster, template_db: str, kafka: str, tmp_path: Path
) -> AsyncIterator[RegionPair]:
    async with region_pair(pg, template_db, kafka, tmp_path) as rs:
        yield rs


@pytest.fixture
async def clock_regions(
    pg: PgCluster, template_db: str, kafka: str, tmp_path: Path
) -> AsyncIterator[RegionPair]:
    """Two regions on the test clock: one clock, since both run in this process."""
    async with region_pair(pg, template_db, kafka, tmp_path, test_clock=True) as rs:
        yield rs
