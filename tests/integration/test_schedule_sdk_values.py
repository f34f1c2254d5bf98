"""A schedule definition from the SDK with Python values, as a Temporal user
writes one: durations as ``timedelta``, times as ``datetime``, modes spelled
with underscores, also from the CLI."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.apps.scheduled import Report
from tests.conftest import Region
from tests.helpers import baton_json
from tests.integration.test_schedules import QUEUE
from worker import Client
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
