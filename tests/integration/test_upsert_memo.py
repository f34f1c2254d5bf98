"""A workflow changes its own memo with ``workflow.upsert_memo``, as in Temporal:
the change is a WorkflowPropertiesModified event, ``workflow.info().memo``,
``describe`` and a continue-as-new that keeps the memo see it, and it replays
(with the worker's cache and without it)."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import pytest

from ops.pg import PgCluster
from tests.conftest import Region, RegionPair
from tests.helpers import eventually
from tests.integration.test_encryption import contains_marker
from worker import (
    AesGcmCodec,
    Client,
    DataConverter,
    NamespaceNotActiveError,
    NamespaceNotFoundError,
    Replayer,
    Worker,
    WorkflowNotFoundError,
    workflow,
)
from worker.codec import generate_key
from worker.wire import EventType

pytestmark = pytest.mark.integration
QUEUE = "upsert-memo"


@workflow.defn
class Tracked:
    def __init__(self) -> None:
        self.go = False

    @workflow.run
    async def run(self, generation: int) -> dict[str, Any]:
        if generation == 0:
            workflow.upsert_memo({"stage": "reserved", "items": [1, 2], "owner": None})
            await workflow.wait_condition(lambda: self.go)
            workflow.upsert_memo({"stage": "charged", "customer": None})
            await workflow.sleep(timedelta(milliseconds=100))
            workflow.continue_as_new(args=[1])
        return {"memo": dict(workflow.info().memo)}

    @workflow.signal
    def proceed(self) -> None:
        self.go = True

    @workflow.query
    def memo(self) -> dict[str, Any]:
        return dict(workflow.info().memo)


@pytest.mark.parametrize("cache", [1000, 0])
async def test_a_workflow_upserts_its_memo(client: Client, cache: int) -> None:
    async with Worker(client, task_queue=QUEUE, workflows=[Tracked], max_cached_workflows=cache):
        h = await client.start_workflow(
            Tracked, 0, id=f"tracked-{cache}", task_queue=QUEUE, memo={"customer": "c-1"}
        )
        first_run = h.run_id

        async def upserted() -> bool:
            return (await h.describe()).memo.get("stage") == "reserved"

        for _ in range(100):
            if await upserted():
                break
            await asyncio.sleep(0.1)
        desc = await h.describe()
        assert dict(desc.memo) == {"customer": "c-1", "stage": "reserved", "items": [1, 2]}
        assert await h.query(Tracked.memo) == {
            "customer": "c-1",
            "stage": "reserved",
            "items": [1, 2],
        }

        await h.signal(Tracked.proceed)
        result = await h.result(timeout=30)
        # the continued run keeps the memo as the first run left it
        assert result["memo"] == {"stage": "charged", "items": [1, 2]}
        assert dict((await h.describe()).memo) == {"stage": "charged", "items": [1, 2]}

        first = client.get_workflow_handle(h.id, run_id=first_run)
        assert dict((await first.describe()).memo) == {"stage": "charged", "items": [1, 2]}
        history = await first.fetch_history()
        changes = [
            e["attributes"]["upserted_memo"]
            for e in history.events
            if e["event_type"] == EventType.WORKFLOW_PROPERTIES_MODIFIED.value
        ]
        assert [sorted(c) for c in changes] == [["items", "owner", "stage"], ["customer", "stage"]]
        assert changes[0]["owner"] is None
        await Replayer(workflows=[Tracked]).replay_workflow(history)


@dataclass
class Owner:
    name: str
    since: date


@workflow.defn
class Reads:
    @workflow.run
    async def run(self) -> list[Any]:
        workflow.upsert_memo({"owner": Owner("ann", date(2026, 1, 2)), "tier": None})
        try:
            workflow.memo_value("tier")
            missing = "no KeyError"
        except KeyError:
            missing = "KeyError"
        return [
            workflow.memo(),
            workflow.memo_value("owner", type_hint=Owner) == Owner("ann", date(2026, 1, 2)),
            workflow.memo_value("tier", "none"),
            missing,
        ]


async def test_workflow_code_reads_its_memo_as_in_temporal(client: Client) -> None:
    async with Worker(client, task_queue=QUEUE, workflows=[Reads]):
        h = await client.start_workflow(
            Reads, id="reads", task_queue=QUEUE, memo={"tier": 3, "plan": "gold"}
        )
        result = await h.result(timeout=20)
    assert result == [
        {"plan": "gold", "owner": {"name": "ann", "since": "2026-01-02"}},
        True,
        "none",
        "KeyError",
    ]


@workflow.defn
class Notes:
    @workflow.run
    async def run(self) -> None:
        await workflow.wait_condition(lambda: False)

    @workflow.signal
    def note(self, key: str, text: str) -> None:
        workflow.upsert_memo({key: text, "dropped": None})


async def test_a_standby_shows_the_upserted_memo(regions: RegionPair) -> None:
    rs = regions
    ns = "memos"
    async with await Client.connect([rs.a.url, rs.b.url], namespace=ns) as client:
        await client.create_namespace(ns, regions=[rs.a.name, rs.b.name], active_region=rs.a.name)
        async with (
            Worker(client, task_queue=QUEUE, workflows=[Notes]),
            await Client.connect(rs.b.url, namespace=ns, follow_failover=False) as in_b,
        ):
            h = await client.start_workflow(
                Notes, id="notes", task_queue=QUEUE, memo={"dropped": 1, "kept": 2}
            )
            standby = in_b.get_workflow_handle("notes")
            await h.signal(Notes.note, "small", "s")
            want = {"kept": 2, "small": "s"}

            async def shown() -> bool:
                try:
                    return dict((await standby.describe()).memo) == want
                except (NamespaceNotFoundError, NamespaceNotActiveError, WorkflowNotFoundError):
                    return False  # not replicated yet (the standby then names the active region)

            await eventually(shown, timeout=30, what="the standby's memo")
            # too large to travel in the replication message: read from history there
            big = "x" * 1_200_000
            await h.signal(Notes.note, "big", big)
            want = {"kept": 2, "small": "s", "big": big}
            await eventually(shown, timeout=30, what="the standby's large memo")
            await h.terminate("done")


async def test_a_reset_run_has_the_memo_of_its_reset_point(client: Client) -> None:
    async with Worker(client, task_queue=QUEUE, workflows=[Notes]):
        h = await client.start_workflow(
            Notes, id="notes-reset", task_queue=QUEUE, memo={"dropped": 1, "kept": 2}
        )
        await h.signal(Notes.note, "later", "l")

        async def upserted() -> bool:
            return "later" in (await h.describe()).memo

        await eventually(upserted, timeout=30, what="the upsert")
        new_run = await h.reset(reason="back", to="first-workflow-task", reapply="none")
        reset = client.get_workflow_handle(h.id, run_id=new_run)
        assert dict((await reset.describe()).memo) == {"dropped": 1, "kept": 2}
        await reset.terminate("done")


async def test_an_upserted_memo_is_encrypted_like_the_rest(region: Region, pg: PgCluster) -> None:
    marker = f"MARKER-{uuid.uuid4().hex}"
    codec = AesGcmCodec(keys={"k1": generate_key()}, active_key_id="k1")
    async with await Client.connect(
        region.url, data_converter=DataConverter(codec=codec)
    ) as client:
        await client.create_namespace("default")
        async with Worker(client, task_queue=QUEUE, workflows=[Notes]):
            h = await client.start_workflow(Notes, id="notes-secret", task_queue=QUEUE)
            await h.signal(Notes.note, "secret", marker)

            async def upserted() -> bool:
                return (await h.describe()).memo.get("secret") == marker

            await eventually(upserted, timeout=30, what="the upsert")
            await h.terminate("done")
    assert not contains_marker(pg.dump(region.dbname), marker)
