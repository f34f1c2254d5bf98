"""A history, schedule or batch job read sent to a standby that does not hold
it yet (the active region wrote it and has not shipped it: replication lag, a
broker down) is answered with NAMESPACE_NOT_ACTIVE naming the active region,
as a describe or result of such a run is, so the SDK (and a fresh `baton`
command, which asks the first region it knows) reads it there, instead of
being told it does not exist."""

from __future__ import annotations

from pathlib import Path

import pytest

from ops.pg import PgCluster
from store.config import load_config
from tests.conftest import fresh_database, serve_region
from tests.helpers import free_port, write_config
from worker import (
    BatchNotFoundError,
    Client,
    NamespaceNotActiveError,
    ScheduleNotFoundError,
    WorkflowNotFoundError,
)

pytestmark = pytest.mark.integration

NS = "payments"


async def test_reads_of_what_a_standby_lacks_go_to_the_active_region(
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
    # No replication runs here: region-b never learns of what region-a writes.
    async with serve_region(config, "region-a"), serve_region(config, "region-b"):
        a = await Client.connect([url_a], namespace=NS)
        b_only = await Client.connect([url_b], namespace=NS, follow_failover=False)
        b_first = await Client.connect([url_b, url_a], namespace=NS)
        try:
            await a.start_workflow("Anything", id="w", task_queue="nobody")
            sched = await a.schedule_definition(
                workflow="Anything", task_queue="nobody", cron="@hourly"
            )
            await a.create_schedule("nightly", sched)
            job = await a.start_batch(
                "WorkflowId = 'w'", "signal", reason="r", params={"signal_name": "s"}
            )
            job_id = job["job_id"]

            with pytest.raises(NamespaceNotActiveError) as err:
                await b_only.get_workflow_handle("w").history()
            assert err.value.active_url == url_a
            with pytest.raises(NamespaceNotActiveError):
                await b_only.get_schedule_handle("nightly").describe()
            with pytest.raises(NamespaceNotActiveError):
                await b_only.describe_batch(job_id)

            events = await b_first.get_workflow_handle("w").history()
            assert events[0]["event_type"] == "WorkflowExecutionStarted"
            described = await b_first.get_schedule_handle("nightly").describe()
            assert described["schedule"]["action"]["workflow_type"] == "Anything"
            assert (await b_first.describe_batch(job_id))["job_id"] == job_id

            # what the active region does not hold either is still not found
            with pytest.raises(WorkflowNotFoundError):
                await b_first.get_workflow_handle("nothing").history()
            with pytest.raises(ScheduleNotFoundError):
                await b_first.get_schedule_handle("nothing").describe()
            with pytest.raises(BatchNotFoundError):
                await b_first.describe_batch("nothing")
        finally:
            for c in (a, b_only, b_first):
                await c.close()
