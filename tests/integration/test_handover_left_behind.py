"""A handover left behind by a `baton failover` that was killed: every write
is refused with a message naming the commands that end it, and each of them
does, after which writes work again."""

from __future__ import annotations

import pytest

from replication import fence
from replication.sql import QUERIES as RQ
from store import db
from store.sql import QUERIES as Q
from tests.apps.workflows import Counter
from tests.conftest import Region, RegionPair
from tests.helpers import baton_json
from worker import Client
from worker.errors import NamespaceInHandoverError

pytestmark = pytest.mark.integration
NS, QUEUE = "handed", "handed"


@pytest.fixture(autouse=True)
def _peers_not_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    """The source learns of the move only from the stream or the commands here.

    Its peer fence (replication/fence.py) would tell it within seconds too,
    and race the steps these tests take: it checks once as the regions start,
    before the namespace exists, and not again.
    """
    monkeypatch.setattr(fence, "CHECK_EVERY_S", 3600.0)


async def _killed_failover_from(region: Region) -> None:
    """The state a failover killed mid-drain leaves: the namespace in handover
    in its active region, and the failover's session lock gone with its process."""
    conn = await db.connect(region.dsn)
    try:
        assert await conn.fetchval(RQ["try_failover_lock"], NS)
        assert await conn.fetchval(Q["set_namespace_state"], NS, region.name, "handover")
    finally:
        await conn.close()  # SIGKILL: the lock goes, the handover stays


async def _refused(client: Client, wid: str) -> str:
    with pytest.raises(NamespaceInHandoverError) as caught:
        await client.start_workflow(Counter, id=wid, task_queue=QUEUE)
    return caught.value.message


async def test_the_commands_a_left_handover_names_end_it(regions: RegionPair) -> None:
    a, b = regions.a, regions.b
    async with await Client.connect([a.url, b.url], namespace=NS) as client:
        await client.create_namespace(NS, regions=[a.name, b.name], active_region=a.name)
        first = await client.start_workflow(Counter, id="before", task_queue=QUEUE)
    # writes wait out a namespace on the move as an application's do; refusals
    # are read by a client that gives up after a second
    async with (
        await Client.connect([a.url, b.url], namespace=NS) as client,
        await Client.connect([a.url, b.url], namespace=NS, retry_for_s=1) as hasty,
    ):
        await _killed_failover_from(a)
        message = await _refused(hasty, "during")
        # it says how to finish the move and how to undo it
        assert f"baton failover {NS} --to REGION" in message, message
        assert f"baton failover {NS} --to {a.name}" in message, message

        # finishing it: the failover run again
        code, out, err = await baton_json(a.config_path, "failover", NS, "--to", b.name)
        assert code == 0 and out["target"] == b.name, (out, err)
        assert not out["handover_abandoned"], out
        await client.start_workflow(Counter, id="after-move", task_queue=QUEUE)
        await client.get_workflow_handle(first.id).signal("finish")

        # undoing one: the failover to the region it is still active in
        await _killed_failover_from(b)
        message = await _refused(hasty, "during-2")
        assert f"baton failover {NS} --to {b.name}" in message, message
        code, out, err = await baton_json(a.config_path, "failover", NS, "--to", b.name)
        assert code == 0 and out["handover_abandoned"] is True, (out, err)
        await client.start_workflow(Counter, id="after-undo", task_queue=QUEUE)
        described = await client.describe_namespace(NS)
        assert (described["active_region"], described["state"]) == (b.name, "active")


async def test_the_failover_run_again_tells_a_source_its_killed_failover_left_behind(
    regions: RegionPair,
) -> None:
    """Killed after it promoted the target and before it told the source: the
    source refuses writes until the stream brings it the move. Running the
    failover again, as the source's refusal says, tells it at once."""
    a, b = regions.a, regions.b
    async with await Client.connect([a.url, b.url], namespace=NS) as client:
        await client.create_namespace(NS, regions=[a.name, b.name], active_region=a.name)
        code, out, err = await baton_json(a.config_path, "failover", NS, "--to", b.name)
        assert code == 0, (out, err)
    # the source as such a failover leaves it, the stream's news of the move not yet applied
    conn = await db.connect(a.dsn)
    try:
        await conn.execute(
            "UPDATE namespaces SET active_region = $2, state = 'handover', "
            "failover_version = 1 WHERE name = $1",
            NS,
            a.name,
        )
    finally:
        await conn.close()
    async with await Client.connect(a.url, namespace=NS, retry_for_s=1) as only_a:
        message = await _refused(only_a, "left")
        assert f"baton failover {NS} --to REGION" in message, message
    async with await Client.connect(a.url, namespace=NS) as only_a:
        code, out, err = await baton_json(a.config_path, "failover", NS, "--to", b.name)
        assert code == 0 and out["handover_finished"] is True, (out, err)
        assert (out["source"], out["target"]) == (a.name, b.name), out
        # region-a sends the write on to region-b, where the namespace is active
        await only_a.start_workflow(Counter, id="after", task_queue=QUEUE)
    # nothing left to finish: the failover to where the namespace is moves nothing, and
    # says so (a script retrying after a lost answer sees success)
    code, out, err = await baton_json(a.config_path, "failover", NS, "--to", b.name)
    assert code == 0 and out["already_active"] is True, (out, err)
    assert not out["handover_finished"] and out["target"] == b.name, out
