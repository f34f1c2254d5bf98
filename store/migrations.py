"""Schema migrations of a region database.

``migrate_up`` takes an advisory lock, so two `baton migrate up` runs (or a
deploy starting several servers) never apply the same step twice, and runs
each migration in its own transaction with the version bump inside it.
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from store import db, sql
from store.config import BatonConfig
from store.errors import SchemaOutOfDate, wrap_exceptions

#: Advisory lock key of migrations ("baton-mi").
MIGRATION_LOCK = 0x6261746F6E2D6D69 & 0x7FFFFFFFFFFFFFFF


@dataclass(frozen=True)
class MigrationStatus:
    current: int
    latest: int
    pending: list[str]

    @property
    def up_to_date(self) -> bool:
        return self.current >= self.latest


async def current_version(conn: asyncpg.Connection) -> int:
    exists = await conn.fetchval("SELECT to_regclass('baton_schema') IS NOT NULL")
    if not exists:
        return 0
    v = await conn.fetchval("SELECT max(version) FROM baton_schema")
    return int(v or 0)


async def status(conn: asyncpg.Connection) -> MigrationStatus:
    cur = await current_version(conn)
    all_m = sql.migrations()
    return MigrationStatus(
        current=cur,
        latest=len(all_m),
        pending=[f"{v:04d}_{name}" for v, name, _ in all_m if v > cur],
    )


async def migrate_up(conn: asyncpg.Connection) -> list[str]:
    """Apply every pending migration; returns the names applied."""
    applied: list[str] = []
    await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK)
    try:
        cur = await current_version(conn)
        for version, name, text in sql.migrations():
            if version <= cur:
                continue
            async with conn.transaction():
                await conn.execute(text)
                await conn.execute("INSERT INTO baton_schema (version) VALUES ($1)", version)
            applied.append(f"{version:04d}_{name}")
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK)
    return applied


async def migrate_region(
    config: BatonConfig, region: str, *, apply: bool
) -> tuple[list[str], MigrationStatus]:
    """Apply (``apply``) the pending migrations of ``region``'s database, then
    read its status: the names applied and the status.

    A database that does not take a connection within the config's
    ``connect_timeout_s`` is ``Unavailable``, naming the region.
    """
    conn = await db.connect_region(config, region)
    try:
        with wrap_exceptions():
            applied = await migrate_up(conn) if apply else []
            return applied, await status(conn)
    finally:
        await conn.close()


async def require_current(conn: asyncpg.Connection) -> int:
    """Refuse to serve a database whose schema is older than this code needs."""
    st = await status(conn)
    if not st.up_to_date:
        raise SchemaOutOfDate(
            f"database schema is at version {st.current} but this server needs "
            f"{st.latest} (pending: {', '.join(st.pending)}): run `baton migrate up`"
        )
    return st.current
