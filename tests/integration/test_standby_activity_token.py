"""An async completion named by workflow and activity id (the SDK's
``get_async_activity_handle(workflow_id=, activity_id=)``, `baton activity
complete`) that reaches a standby first, as it does once a failover moved the
namespace away from the region a client lists first, is sent on to the active
region (NAMESPACE_NOT_ACTIVE, which the SDK follows), not answered
TASK_NOT_FOUND: a standby keeps no attempts to hand a token for."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest

from ops.pg import PgCluster
from store.config import load_config
from tests.conftest import fresh_database, serve_region
from tests.helpers import free_port, write_config
from worker import Client, NamespaceNotActiveError, Worker, activity, workflow

pytestmark = pytest.mark.integration

NS = "payments"
QUEUE = "standby-token"


@activity.defn
async def wait_outside(name: str) -> str:
    activity.raise_complete_async()


@workflow.defn
class AwaitOutside:
    @workflow.run
    async def run(self, name: str) -> str:
        result: str = await workflow.execute_activity(
            wait_outside, name, activity_id="outside", start_to_close_timeout=timedelta(seconds=60)
        )
        return result


async def test_an_async_completion_by_ids_sent_to_a_standby_reaches_the_active_region(
    pg: PgCluster, template_db: str, tmp_path: Path
) -> None:
    db_a, db_b = fresh_database(pg, template_db), fresh_database(pg, template_db)
    cfg = write_config(
        tmp_path / "baton.toml",
        {"region-a": (free_port(), pg.dsn(db_a)), "region-b": (free_port(), pg.dsn(db_b))},
    )
    for name in (db_a, db_b):
        pg.psql(
            name,
            "INSERT INTO namespaces (name, regions, active_region, failover_version) "
            f"VALUES ('{NS}', '{{region-a,region-b}}', 'region-a', 1)",
        )
    config = load_config(cfg)
    url_a, url_b = config.regions["region-a"].url, config.regions["region-b"].url
    async with serve_region(config, "region-a"), serve_region(config, "region-b"):
        a = await Client.connect([url_a], namespace=NS)
        b_only = await Client.connect([url_b], namespace=NS, follow_failover=False)
        b_first = await Client.connect([url_b, url_a], namespace=NS)
        try:
            async with Worker(
                a, task_queue=QUEUE, workflows=[AwaitOutside], activities=[wait_outside]
            ):
                h = await a.start_workflow(AwaitOutside, "x", id="w", task_queue=QUEUE)
                for _ in range(100):
                    d = await h.describe()
                    if any(p["state"] == "started" for p in d["pending_activities"]):
                        break
                    await asyncio.sleep(0.1)
                with pytest.raises(NamespaceNotActiveError) as err:
                    await b_only.get_async_activity_handle(
                        workflow_id="w", activity_id="outside"
                    ).heartbeat("here")
                assert err.value.active_url == url_a
                done = b_first.get_async_activity_handle(workflow_id="w", activity_id="outside")
                await done.heartbeat("here")
                await done.complete("done outside")
                assert await h.result(timeout=30) == "done outside"
        finally:
            for c in (a, b_only, b_first):
                await c.close()
