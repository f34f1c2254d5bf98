"""`workflow describe -o json` and `workflow history -o json` give each JSON
payload's value beside its base64 `data` (which stays, for the scripts and the
replayer that read it), the encrypted ones once the CLI's keys open them."""

from __future__ import annotations

import base64
import uuid
from datetime import timedelta
from typing import Any

import pytest

from tests.conftest import Region
from tests.helpers import baton_json, eventually
from worker import (
    AesGcmCodec,
    Client,
    DataConverter,
    Replayer,
    Worker,
    WorkflowHistory,
    activity,
    workflow,
)
from worker.codec import KEY_ENV_VAR, format_key_spec, generate_key

pytestmark = pytest.mark.integration
QUEUE = "valued"


@activity.defn(name="Beats")
async def beats(order: dict[str, Any]) -> None:
    activity.heartbeat({"done": 1, "of": order["items"]})
    raise RuntimeError("not yet")


@workflow.defn(name="Valued")
class Valued:
    @workflow.run
    async def run(self, order: dict[str, Any]) -> None:
        await workflow.execute_activity(beats, order, start_to_close_timeout=timedelta(seconds=10))


async def test_describe_and_history_json_give_each_payloads_value_beside_it(
    region: Region, monkeypatch: pytest.MonkeyPatch
) -> None:
    keys = {"k1": generate_key()}
    monkeypatch.setenv(KEY_ENV_VAR, format_key_spec(keys, active_key_id="k1"))
    codec = DataConverter(codec=AesGcmCodec(keys=keys, active_key_id="k1"))
    wid = f"valued-{uuid.uuid4().hex[:6]}"
    order = {"id": "o-1", "items": 3, "note": "ünïcode"}
    async with await Client.connect(region.url, data_converter=codec) as client:
        await client.create_namespace("default")
        async with Worker(client, task_queue=QUEUE, workflows=[Valued], activities=[beats]):
            await client.start_workflow(Valued, order, id=wid, task_queue=QUEUE)

            async def failed_once() -> dict[str, Any] | None:
                code, out, err = await baton_json(region.config_path, "workflow", "describe", wid)
                assert code == 0, err
                (pending,) = out["pending_activities"] or [None]
                return pending if pending and pending["last_failure"] else None

            pending = await eventually(failed_once, what="the activity's first failure")
            await client.get_workflow_handle(wid).terminate("enough")

    (beat,) = pending["heartbeat_details"]
    assert beat["value"] == {"done": 1, "of": 3}, beat
    assert beat["metadata"]["encoding"] == "json/plain"  # today's shape stays
    assert base64.b64decode(beat["data"]) == b'{"done":1,"of":3}'

    code, out, err = await baton_json(region.config_path, "workflow", "history", wid)
    assert code == 0, err
    (sent,) = out["events"][0]["attributes"]["input"]
    assert sent["value"] == order, sent
    assert sent["metadata"]["encoding"] == "json/plain"
    scheduled = [e for e in out["events"] if e["event_type"] == "ActivityTaskScheduled"]
    assert [e["attributes"]["input"][0]["value"] for e in scheduled] == [order]

    # what history -o json printed still replays
    history = WorkflowHistory.from_json(wid, out)
    await Replayer(workflows=[Valued]).replay_workflow(history)
