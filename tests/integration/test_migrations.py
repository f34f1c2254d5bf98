"""Migrations: applied in order to an empty database they give exactly schema.sql."""

from __future__ import annotations

import subprocess

import asyncpg
import pytest

from ops.pg import PG_BIN, PgCluster
from store import db, migrations, sql
from store.errors import SchemaOutOfDate
from store.server import open_store
from tests.helpers import free_port, write_config

pytestmark = pytest.mark.integration


def schema_of(pg: PgCluster, dbname: str) -> str:
    out = subprocess.run(
        [
            str(PG_BIN / "pg_dump"),
            "--schema-only",
            "--no-owner",
            "--no-privileges",
            "-h",
            pg.host,
            "-p",
            str(pg.port),
            "-U",
            "postgres",
            dbname,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    # Comments and settings lines differ with nothing that matters.
    return "\n".join(
        line
        for line in out.splitlines()
        if line
        and not line.startswith(("--", "SET ", "SELECT pg_catalog", "\\restrict", "\\unrestrict"))
    )


async def test_migrations_equal_the_canonical_schema(pg: PgCluster) -> None:
    pg.create_database("mig_from_migrations")
    pg.create_database("mig_from_schema")
    conn = await db.connect(pg.dsn("mig_from_migrations"))
    try:
        applied = await migrations.migrate_up(conn)
        assert applied == [f"{v:04d}_{name}" for v, name, _ in sql.migrations()]
        assert await migrations.migrate_up(conn) == []  # a second run applies nothing
        st = await migrations.status(conn)
        assert st.up_to_date and st.current == sql.latest_version()
    finally:
        await conn.close()
    conn = await asyncpg.connect(pg.dsn("mig_from_schema"))
    try:
        await conn.execute(sql.read("schema.sql"))
    finally:
        await conn.close()
    assert schema_of(pg, "mig_from_migrations") == schema_of(pg, "mig_from_schema")


async def test_server_refuses_an_old_schema_and_names_the_fix(pg: PgCluster, tmp_path) -> None:
    pg.create_database("mig_empty")
    cfg = write_config(tmp_path / "baton.toml", {"region-a": (free_port(), pg.dsn("mig_empty"))})
    from store.config import load_config

    with pytest.raises(SchemaOutOfDate) as err:
        async with open_store(load_config(cfg), "region-a"):
            pass
    assert "baton migrate up" in err.value.message


def test_named_queries_parse() -> None:
    assert "take_task" in sql.QUERIES and "baton_take_task_v1" in sql.QUERIES["take_task"]
    take = sql.read("schema.sql").split("FUNCTION baton_take_task_v1")[1]
    assert "FOR UPDATE SKIP LOCKED" in take
