"""A write (or a describe or result) sent to a standby that does not hold the
run yet (the active region started it and has not shipped it: replication lag,
a broker down) is answered with NAMESPACE_NOT_ACTIVE naming the active region,
as a write to a run the standby does hold is, so the SDK (and the CLI) carry
it there, instead of WORKFLOW_NOT_FOUND."""

from __future__ import annotations

from pathlib import Path

import pytest

from ops.pg import PgCluster
from store.config import load_config
from tests.conftest import fresh_database, serve_region
from tests.helpers import free_port, write_config
from worker import Client
from worker.errors import NamespaceNotActiveError, WorkflowFailureError, WorkflowNotFoundError

pytestmark = pytest.mark.integration

NS = "payments"


async def test_a_write_to_a_standby_lacking_the_run_goes_to_the_active_region(
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
    # No replication runs here: region-b never learns of the run.
    async with serve_region(config, "region-a"), serve_region(config, "region-b"):
        a = await Client.connect([url_a], namespace=NS)
        b_only = await Client.connect([url_b], namespace=NS, follow_failover=False)
        b_first = await Client.connect([url_b, url_a], namespace=NS)
        try:
            await a.start_workflow("Anything", id="w", task_queue="nobody")
            with pytest.raises(NamespaceNotActiveError) as err:
                await b_only.get_workflow_handle("w").signal("s")
            assert err.value.active_url == url_a
            h = b_first.get_workflow_handle("w")
            # reads a client makes right after a start: the standby sends them on too
            assert (await h.describe())["execution"]["status"] == "running"
            with pytest.raises(NamespaceNotActiveError):
                await b_only.get_workflow_handle("w").describe()
            with pytest.raises(NamespaceNotActiveError):
                await b_only.get_workflow_handle("w").result(timeout=1)
            await h.signal("s")
            await h.pause(reason="look")
            await h.unpause()
            await h.terminate(reason="done")
            kinds = [e["event_type"] for e in await a.get_workflow_handle("w").history()]
            assert kinds.count("WorkflowExecutionSignaled") == 1, kinds
            assert kinds[-1] == "WorkflowExecutionTerminated", kinds
            with pytest.raises(WorkflowFailureError):
                await h.result(timeout=10)
            # a run the active region does not hold either is still not found
            with pytest.raises(WorkflowNotFoundError):
                await b_first.get_workflow_handle("nothing").signal("s")
        finally:
            for c in (a, b_only, b_first):
                await c.close()
