"""A graceful failover refuses a target holding dead letters of the namespace,
as it may lack what they carried. It looked before the handover only: a
message in flight that the target dead-lettered while the failover drained
moved the applied offset past it, the drain counted it as applied, and the
target was promoted without it (a run the source had acknowledged was then
in no active region). The failover looks again once the drain ends, and
leaves the namespace active where it was. Either refusal has its own code,
FAILOVER_TARGET_DEAD_LETTERS (not INVALID_ARGUMENT: a runbook must tell it
from bad input), with the count and the target in its details. A forced failover likewise counts
a target's dead letters of the namespace as messages it is behind by: its
offsets said it was as far along as any standby."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime

import orjson
import pytest
from aiokafka import AIOKafkaProducer
from click.testing import CliRunner

from ops.cli import cli
from replication.admin import list_dead_letters
from replication.failover import (
    FailoverTargetBehind,
    FailoverTargetDeadLetters,
    forced_failover,
    graceful_failover,
)
from replication.publisher import NIL_RUN, topic_for
from tests.conftest import RegionPair
from tests.helpers import eventually
from worker import Client

pytestmark = pytest.mark.integration
NS = "dead-in-flight"


async def test_a_message_dead_lettered_during_the_drain_stops_the_failover(
    regions: RegionPair,
) -> None:
    a, b = regions.a, regions.b
    async with await Client.connect([a.url, b.url], namespace=NS) as client:
        await client.create_namespace(NS, regions=[a.name, b.name], active_region=a.name)

        async def in_b() -> bool:
            async with await Client.connect(b.url, namespace=NS) as only_b:
                try:
                    return bool(await only_b.describe_namespace())
                except Exception:
                    return False

        await eventually(in_b, timeout=30, what="the namespace in region-b")
        await _send_poison(a.config.kafka_bootstrap, a.name)
        with pytest.raises(FailoverTargetDeadLetters, match="dead letter") as caught:
            await graceful_failover(a.config, NS, b.name, timeout_s=60)
        assert f"{NS} stays active in {a.name}" in caught.value.message
        assert caught.value.code == "FAILOVER_TARGET_DEAD_LETTERS"
        assert caught.value.details == {"dead_letters": 1, "target": b.name}
        assert [d["namespace"] for d in await list_dead_letters(a.config, b.name)] == [NS]
        described = await client.describe_namespace()
        assert (described["active_region"], described["state"]) == (a.name, "active")

        # run again (the letter is there before the handover): refused up front,
        # with its own code a runbook can tell from bad input, and exit 1 as
        # FAILOVER_TARGET_BEHIND
        run = await asyncio.to_thread(
            CliRunner().invoke,
            cli,
            ["--config", str(a.config_path), "failover", NS, "--to", b.name, "-o", "json"],
        )
        error = json.loads(run.stdout)["error"]
        assert (run.exit_code, error["code"]) == (1, "FAILOVER_TARGET_DEAD_LETTERS"), run.output
        assert error["details"] == {"dead_letters": 1, "target": b.name}
        assert f"dlq list --region {b.name}" in error["message"]
        described = await client.describe_namespace()
        assert (described["active_region"], described["state"]) == (a.name, "active")
        assert described["failover_version"] == 1

        # forced, as if region-a were lost: the target lacks what the letter carried
        with pytest.raises(FailoverTargetBehind, match="dead letter") as behind:
            await forced_failover(a.config, NS, b.name)
        assert behind.value.details == {"dead_letters": 1}
        assert (await client.describe_namespace())["active_region"] == a.name
        moved = await forced_failover(a.config, NS, b.name, allow_behind=True)
        assert (moved.target, moved.forced) == (b.name, True)


async def _send_poison(bootstrap: str | None, source: str) -> None:
    """A message of the namespace that region-b cannot apply (as a bug would
    make it), in flight: it takes the applier's retries (seconds) to reach the
    dead-letter table."""
    now = datetime.now(UTC).isoformat()
    poison = {
        "type": "bogus_v9",
        "source_region": source,
        "namespace": NS,
        "workflow_id": "w",
        "run_id": NIL_RUN,
        "first_event_id": 1,
        "last_event_id": 1,
        "version": 1,
        "source_time": now,
        "events": [],
        "execution": None,
        "activities": [],
        "conflict": None,
    }
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(
            topic_for(source), orjson.dumps(poison), key=f"{NS}/w".encode()
        )
    finally:
        await producer.stop()
