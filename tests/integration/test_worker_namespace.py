"""A worker checks its namespace as it starts: none in any region it knows is
refused at once (it polled for ever, every poll refused), and a standby that
holds the namespace, or another region that does, counts as found."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest

from ops.pg import PgCluster
from store.config import load_config
from tests.conftest import Region, fresh_database, serve_region
from tests.helpers import free_port, write_config
from worker import Client, Worker, workflow
from worker.errors import NamespaceNotFoundError

pytestmark = pytest.mark.integration


@workflow.defn(name="NamespaceCheck")
class NamespaceCheck:
    @workflow.run
    async def run(self) -> str:
        return "ran"


async def test_a_worker_on_a_namespace_that_does_not_exist_refuses_to_start(
    region: Region,
) -> None:
    client = await Client.connect(region.url, namespace="nowhere", retry_for_s=5)
    try:
        began = time.monotonic()
        worker = Worker(client, task_queue="q", workflows=[NamespaceCheck])
        with pytest.raises(NamespaceNotFoundError) as err:
            async with worker:
                pytest.fail("the worker started")
        assert "baton namespace create nowhere" in err.value.message
        assert err.value.code == "NAMESPACE_NOT_FOUND"
        assert time.monotonic() - began < 5
        assert worker._pollers == []  # no poll was made
        with pytest.raises(NamespaceNotFoundError):
            await Worker(client, task_queue="q", workflows=[NamespaceCheck]).run()
        # the check asks for the namespace without a count of its runs
        await client.create_namespace("nowhere")
        path = "/api/v1/namespaces/nowhere"
        assert "executions" in await client.call("GET", path)
        assert "executions" not in await client.call("GET", path, params={"executions": "false"})
    finally:
        await client.close()


async def test_a_namespace_held_by_a_standby_or_another_region_is_found(
    pg: PgCluster, template_db: str, tmp_path: Path
) -> None:
    db_a, db_b = fresh_database(pg, template_db), fresh_database(pg, template_db)
    cfg = write_config(
        tmp_path / "baton.toml",
        {"region-a": (free_port(), pg.dsn(db_a)), "region-b": (free_port(), pg.dsn(db_b))},
    )
    # "both": active in region-a, region-b its standby; "only-a": region-a's alone.
    rows = {
        db_a: [("both", "{region-a,region-b}"), ("only-a", "{region-a}")],
        db_b: [("both", "{region-a,region-b}")],
    }
    for db, namespaces in rows.items():
        for name, regions in namespaces:
            pg.psql(
                db,
                "INSERT INTO namespaces (name, regions, active_region, failover_version) "
                f"VALUES ('{name}', '{regions}', 'region-a', 1)",
            )
    config = load_config(cfg)
    url_a, url_b = config.regions["region-a"].url, config.regions["region-b"].url
    async with serve_region(config, "region-a"), serve_region(config, "region-b"):
        standby = await Client.connect([url_b], namespace="both")
        both_regions = await Client.connect([url_b, url_a], namespace="only-a")
        wrong_region = await Client.connect([url_b], namespace="only-a", retry_for_s=5)
        try:
            for client in (standby, both_regions):
                queue = f"q-{uuid.uuid4().hex[:6]}"
                async with Worker(client, task_queue=queue, workflows=[NamespaceCheck]):
                    handle = await client.start_workflow(
                        NamespaceCheck, id=f"w-{queue}", task_queue=queue
                    )
                    assert await handle.result(timeout=30) == "ran"
            with pytest.raises(NamespaceNotFoundError) as err:
                async with Worker(wrong_region, task_queue="q", workflows=[NamespaceCheck]):
                    pytest.fail("the worker started")
            assert "baton namespace create only-a" in err.value.message
        finally:
            for c in (standby, both_regions, wrong_region):
                await c.close()
