"""A schedule definition from the SDK with Python values, as a Temporal user
writes one: durations as ``timedelta``, times as ``datetime``, modes spelled
with underscores, also from the CLI."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from tests.apps.scheduled import Report
from tests.conftest import Region
from tests.helpers import baton_json, eventually
from tests.integration.test_schedules import QUEUE
from worker import AesGcmCodec, Client, DataConverter
from worker.codec import generate_key
from worker.errors import InvalidArgumentError

pytestmark = pytest.mark.integration


async def test_durations_given_as_timedelta_are_taken_as_their_seconds(client: Client) -> None:
    """Regression: a timedelta in the spec or policy was refused with "Type is
    not JSON serializable: datetime.timedelta" before anything was sent."""
    start = datetime(2030, 1, 1, tzinfo=UTC)
    sched = await client.schedule_definition(
        workflow=Report,
        task_queue=QUEUE,
        args=["tick"],
        spec={
            "intervals": [{"every": timedelta(hours=1), "phase": timedelta(minutes=15)}],
            "jitter": timedelta(seconds=30),
            "start_at": start,
        },
        policy={"catchup_window": timedelta(hours=2), "overlap": "buffer_all"},
    )
    h = await client.create_schedule("durations", sched)
    d = await h.describe()
    spec, policy = d["schedule"]["spec"], d["schedule"]["policy"]
    assert spec["intervals"] == [{"every": 3600.0, "phase": 900.0}]
    assert (spec["jitter"], spec["start_at"]) == (30.0, "2030-01-01T00:00:00Z")
    assert (policy["catchup_window"], policy["overlap"]) == (7200.0, "buffer-all")
    assert d["next_fires"][0] == "2030-01-01T00:15:00Z"
    # update takes them too, and a hand-built definition as well
    sched["spec"] = {"intervals": [{"every": timedelta(minutes=30)}]}
    await h.update(sched)
    with pytest.raises(InvalidArgumentError, match="no UTC offset"):
        await h.backfill(datetime(2030, 1, 1), datetime(2030, 1, 2))  # noqa: DTZ001


async def test_the_cli_takes_a_mode_spelled_with_underscores(
    client: Client, region: Region
) -> None:
    code, out, err = await baton_json(
        region.config_path,
        *("schedule", "create", "spelled", "-t", "Report", "-q", QUEUE, "--cron", "@yearly"),
        *("--overlap", "terminate_other", "--catchup", "LATEST"),
    )
    assert code == 0, (out, err)
    policy = (await client.get_schedule_handle("spelled").describe())["schedule"]["policy"]
    assert (policy["overlap"], policy["catchup"]) == ("terminate-other", "latest")
    code, out, err = await baton_json(
        region.config_path, "schedule", "trigger", "spelled", "--overlap", "buffer_one"
    )
    assert code == 0, (out, err)


async def test_a_definition_read_back_by_describe_is_updated_with_its_memo_encrypted(
    region: Region, client: Client
) -> None:
    """Regression: describe gives the action's memo as values, and an update
    of that definition (read, change, write) stored them as plain JSON, where
    an encrypting client's memo is only ever ciphertext on the server."""
    codec = AesGcmCodec(keys={"k1": generate_key()}, active_key_id="k1")
    secret = await Client.connect(
        region.url, namespace="default", data_converter=DataConverter(codec=codec)
    )
    try:
        sched = await secret.schedule_definition(
            workflow=Report, task_queue=QUEUE, cron="@yearly", memo={"card": "4111-secret"}
        )
        h = await secret.create_schedule("secretive", sched)
        d = (await h.describe())["schedule"]
        assert d["action"]["memo"] == {"card": "4111-secret"}
        d["policy"]["overlap"] = "allow-all"
        await h.update(d)

        async def stored() -> dict[str, object] | None:
            raw = await client.call("GET", "/api/v1/namespaces/default/schedules/secretive")
            done = raw["schedule"]["policy"]["overlap"] == "allow-all"
            return raw["schedule"]["action"] if done else None

        action = await eventually(stored, what="the update applied")
        assert "4111-secret" not in json.dumps(action), action
        assert (await h.describe())["schedule"]["action"]["memo"] == {"card": "4111-secret"}
    finally:
        await secret.close()


async def test_list_schedules_is_a_list_and_takes_async_for(client: Client) -> None:
    """Regression: ``async for s in await client.list_schedules()``, as a
    Temporal user writes it, raised TypeError (a plain list has no __aiter__)."""
    sched = await client.schedule_definition(workflow=Report, task_queue=QUEUE, cron="@yearly")
    for name in ("listed-a", "listed-b"):
        await client.create_schedule(name, sched)
    found = await client.list_schedules()
    assert sorted(s["schedule_id"] for s in found) == ["listed-a", "listed-b"]
    walked = [s async for s in await client.list_schedules("WorkflowId = 'schedule/listed-b'")]
    assert [s["schedule_id"] for s in walked] == ["listed-b"]
