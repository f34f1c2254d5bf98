"""Changing a namespace's retention and description: refused input changes nothing,
the sweeper keeps runs by the new retention, and the change reaches the standby."""

from __future__ import annotations

import asyncpg
import httpx
import pytest

from store.retention import sweep
from tests.conftest import Region, RegionPair
from tests.helpers import baton_json, eventually
from worker import Client
from worker.errors import InvalidArgumentError, NamespaceNotFoundError

pytestmark = pytest.mark.integration


async def test_an_update_changes_retention_and_description_and_bad_ones_change_nothing(
    client: Client, region: Region
) -> None:
    await client.create_namespace("orders", retention_days=3, description="first")
    res = await client.update_namespace("orders", retention_days=30)
    assert (res["retention_days"], res["description"], res["changed"]) == (
        30,
        "first",
        ["retention_days"],
    )
    again = await client.update_namespace("orders", retention_days=30)
    assert again["changed"] == []  # safe to run twice
    for bad in ({"retention_days": 0}, {"retention_days": 4000}, {"description": "x" * 5000}, {}):
        with pytest.raises(InvalidArgumentError):
            await client.update_namespace("orders", **bad)  # type: ignore[arg-type]
    with pytest.raises(NamespaceNotFoundError):
        await client.update_namespace("nope", retention_days=5)
    described = await client.describe_namespace("orders")
    assert (described["retention_days"], described["description"]) == (30, "first")

    code, out, err = await baton_json(
        region.config_path, "namespace", "update", "orders", "--description", "second"
    )
    assert code == 0, err
    assert (out["retention_days"], out["description"], out["changed"]) == (
        30,
        "second",
        ["description"],
    )
    code, _, err = await baton_json(region.config_path, "namespace", "update", "orders")
    assert code == 2 and "--retention-days" in err


async def test_the_sweeper_keeps_runs_by_the_updated_retention(
    client: Client, region: Region
) -> None:
    await client.create_namespace("kept", retention_days=1)
    kept = Client(
        client.transport, namespace="kept", data_converter=client.data_converter, identity="t"
    )
    h = await kept.start_workflow("T", id="old-run", task_queue="none")
    await h.terminate("done")
    conn = await asyncpg.connect(region.dsn)
    try:
        await conn.execute(
            "UPDATE executions SET close_time = now() - interval '3 days' WHERE namespace = 'kept'"
        )
        await kept.update_namespace(retention_days=5)
        assert (await sweep(region.store)).runs == 0  # three days old, kept for five
        await kept.update_namespace(retention_days=2)
        assert (await sweep(region.store)).runs == 1
    finally:
        await conn.close()


async def test_an_update_reaches_the_standby(regions: RegionPair) -> None:
    rs, ns = regions, "replicated"

    async def in_b() -> tuple[int, str] | None:
        conn = await asyncpg.connect(rs.b.dsn)
        try:
            row = await conn.fetchrow(
                "SELECT retention_days, description FROM namespaces WHERE name = $1", ns
            )
        finally:
            await conn.close()
        return None if row is None else (row["retention_days"], row["description"])

    # sent to the standby first: the client follows the namespace to its active region
    async with await Client.connect([rs.b.url, rs.a.url], namespace=ns) as client:
        await client.create_namespace(ns, regions=[rs.a.name, rs.b.name], active_region=rs.a.name)
        await eventually(in_b, timeout=30, what="the namespace in region-b")
        await client.update_namespace(retention_days=14, description="moved to two weeks")

        async def updated() -> bool:
            return await in_b() == (14, "moved to two weeks")

        await eventually(updated, timeout=30, what="the update in region-b")


@pytest.mark.parametrize("days", [True, "7", 7.0, None])
async def test_retention_that_is_not_a_whole_number_is_refused_at_create_and_update(
    client: Client, region: Region, days: object
) -> None:
    """JSON true is not one day (runs would be deleted after it), nor "7" seven."""
    await client.create_namespace("strict", retention_days=9)
    async with httpx.AsyncClient(base_url=region.url, timeout=10) as http:
        created = await http.post(
            "/api/v1/namespaces", json={"name": "strict-2", "retention_days": days}
        )
        updated = await http.patch("/api/v1/namespaces/strict", json={"retention_days": days})
    # (None: null at create; at update, nothing to change, which is refused too)
    for resp in (created, updated):
        assert resp.status_code == 400, resp.text
        assert resp.json()["error"]["code"] == "INVALID_ARGUMENT"
    assert (await client.describe_namespace("strict"))["retention_days"] == 9
    with pytest.raises(NamespaceNotFoundError):
        await client.describe_namespace("strict-2")


async def test_describe_counts_every_status_zero_where_none(client: Client, region: Region) -> None:
    """Regression: the counts held only the statuses some run had, so a script
    reading ``executions["running"]`` of a namespace with no running run (or
    a fresh one: ``{}``) met a KeyError, in the SDK, the API and `-o json`."""
    await client.create_namespace("counted")
    every = {"running", "completed", "failed", "canceled", "terminated"}
    every |= {"continued_as_new", "timed_out"}
    described = await client.describe_namespace("counted")
    assert described["executions"] == dict.fromkeys(every, 0), described

    counted = await Client.connect(region.url, namespace="counted")
    async with counted:
        handle = await counted.start_workflow("Nobody", id="w1", task_queue="nobody")
        await handle.terminate("done")
        await counted.start_workflow("Nobody", id="w2", task_queue="nobody")
    code, out, err = await baton_json(region.config_path, "namespace", "describe", "counted")
    assert code == 0, err
    assert out["executions"] == {**dict.fromkeys(every, 0), "terminated": 1, "running": 1}, out
