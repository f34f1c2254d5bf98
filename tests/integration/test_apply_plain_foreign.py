"""The plain apply passes the messages of a namespace the region is not one
of, where it stopped at each and left it to the rules, which found nothing to
apply: a region added to a running stack reads every topic from its start,
and a namespace's backfill there waited behind every message of the others,
handled one by one (minutes for a few thousand)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from replication.apply import apply_namespace_txn
from replication.sql import QUERIES as Q
from tests.conftest import Region
from tests.integration.test_apply_rules import batch, event, ns_info

pytestmark = pytest.mark.integration


def foreign(region: Region, version: int = 1) -> dict[str, Any]:
    """A namespace row of two other regions."""
    return {**ns_info(region.name, version), "regions": ["elsewhere", "other"]}


def message(region: Region, info: dict[str, Any]) -> dict[str, Any]:
    msg = batch(region.name, uuid.uuid4(), [event(i, 1) for i in (1, 2, 3)])
    return {**msg, "namespace_info": info}


async def applied(region: Region, msgs: list[dict[str, Any]]) -> int:
    async with region.store.pool.acquire() as conn, conn.transaction():
        return int(await conn.fetchval(Q["apply_plain"], region.name, msgs))


async def events(region: Region) -> int:
    return int(await region.store.pool.fetchval("SELECT count(*) FROM history_events"))


async def test_messages_of_a_namespace_the_region_is_not_one_of_pass(region: Region) -> None:
    info = foreign(region)
    await region.store.txn(lambda conn: apply_namespace_txn(conn, region.name, info))
    msgs = [message(region, info) for _ in range(3)]
    assert await applied(region, msgs) == 3
    assert await events(region) == 0


async def test_a_newer_row_of_the_namespace_still_goes_to_the_rules(region: Region) -> None:
    info = foreign(region)
    await region.store.txn(lambda conn: apply_namespace_txn(conn, region.name, info))
    newer = {**foreign(region, 2), "updated_at": "2026-01-02T00:00:00+00:00"}
    assert await applied(region, [message(region, info), message(region, newer)]) == 1
    assert await events(region) == 0
