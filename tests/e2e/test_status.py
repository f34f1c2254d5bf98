"""`baton replication status`: lag per source topic and per namespace, from the
region databases and the Kafka topics, with a standby region's applier down."""

from __future__ import annotations

import asyncio
import json

import pytest
from click.testing import CliRunner

from ops.cli import cli
from replication.status import replication_status
from tests.helpers import eventually
from tests.multiregion import Regions
from worker import Client

pytestmark = pytest.mark.e2e


async def test_status_counts_each_namespace_s_own_lag(two_regions: Regions) -> None:
    rs = two_regions
    a, b = rs[0], rs[1]
    async with await Client.connect([a.url], namespace="busy") as client:
        for ns in ("busy", "quiet"):
            await client.create_namespace(ns, regions=[a.name, b.name], active_region=a.name)

        async def b_knows_both() -> bool:
            n = await rs.fetchval(
                b.name, "SELECT count(*) FROM namespaces WHERE name IN ('busy', 'quiet')"
            )
            return n == 2

        await eventually(b_knows_both, timeout=30, what="namespaces replicated to B")
        rs.kill(b.name)  # B's applier stops; A keeps publishing
        for i in range(6):
            await client.start_workflow("Nobody", i, id=f"busy-{i}", task_queue="none")
        async with await Client.connect([a.url], namespace="quiet") as quiet:
            for i in range(2):
                await quiet.start_workflow("Nobody", i, id=f"quiet-{i}", task_queue="none")

        async def published() -> bool:
            return await rs.fetchval(a.name, "SELECT count(*) FROM outbox") == 0

        await eventually(published, timeout=30, what="A's outbox published")

        lags = await replication_status(rs.config)
        topic = {(x.region, x.source): x for x in lags if x.namespace is None}
        per_ns = {(x.namespace, x.region, x.source): x for x in lags if x.namespace}
        behind = topic[(b.name, a.name)]
        # one history batch per start, all on A's topic and none applied in B
        assert behind.consumer_lag_messages == 8
        assert behind.time_lag_s is not None and behind.time_lag_s > 0
        assert behind.source_outbox_backlog == 0
        busy, quiet_lag = per_ns[("busy", b.name, a.name)], per_ns[("quiet", b.name, a.name)]
        assert (busy.consumer_lag_messages, busy.lag_exact) == (6, True)
        assert (quiet_lag.consumer_lag_messages, quiet_lag.lag_exact) == (2, True)
        assert busy.time_lag_s is not None and busy.time_lag_s > 0
        # A is behind nothing of B
        assert per_ns[("busy", a.name, b.name)].consumer_lag_messages == 0
        assert per_ns[("busy", a.name, b.name)].time_lag_s == 0.0

        # a scan cut short gives a lower bound, and says so
        capped = await replication_status(rs.config, "busy", scan_limit=1)
        assert {x.namespace for x in capped} == {"busy"}
        short = next(x for x in capped if x.region == b.name)
        assert not short.lag_exact
        assert 0 < (short.consumer_lag_messages or 0) < 6

        # the CLI shows the same, as JSON and as a table
        runner = CliRunner()
        env: dict[str, str | None] = {"BATON_NAMESPACE": None, "BATON_CONFIG": None}
        base = ["--config", str(rs.config_path), "replication", "status"]
        # (in a thread: the CLI runs its own event loop)
        out = await asyncio.to_thread(
            runner.invoke, cli, [*base, "--namespace", "quiet", "--output", "json"], env=env
        )
        assert out.exit_code == 0, out.output
        rows = json.loads(out.stdout)
        assert {(r["region"], r["consumer_lag_messages"]) for r in rows} == {
            (b.name, 2),
            (a.name, 0),
        }
        table = await asyncio.to_thread(runner.invoke, cli, base, env=env)
        assert table.exit_code == 0, table.output
        assert "(all)" in table.output and "quiet" in table.output, table.output

        # B comes back and catches up: nothing pending anywhere
        await rs.start(b.name)

        async def caught_up() -> bool:
            now = await replication_status(rs.config)
            return all(x.consumer_lag_messages == 0 and x.time_lag_s == 0.0 for x in now)

        await eventually(caught_up, timeout=60, what="B caught up")
