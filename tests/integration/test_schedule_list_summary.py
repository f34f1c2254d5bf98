"""`schedule list` folds only what it shows of each schedule's history (its
start, its last report, its signals): each entry says what describe says."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.helpers import eventually
from worker import Client

pytestmark = pytest.mark.integration


def _as_describe_says(d: dict[str, Any]) -> dict[str, Any]:
    return {
        "schedule_id": d["schedule_id"],
        "paused": d["paused"],
        "note": d["note"],
        "workflow_type": d["schedule"]["action"]["workflow_type"],
        "overlap": d["schedule"]["policy"]["overlap"],
        "next_fire": (d["next_fires"] or [None])[0],
        "running": d["running_count"],
        "actions": d["counters"]["actions"],
    }


async def test_each_listed_schedule_reads_as_its_describe(client: Client) -> None:
    """A schedule that fired many times (many reports), one paused after it
    fired, one updated, one paused from creation and one with no actions left."""

    async def make(sid: str, every: float, **kw: Any) -> Any:
        sched = await client.schedule_definition(
            workflow="Nobody",
            task_queue="nobody-polls",
            spec={"intervals": [{"every": every}]},
            policy={"overlap": "allow-all", **kw.pop("policy", {})},
        )
        return await client.create_schedule(sid, sched, **kw)

    busy = await make("busy", 1)
    stopped = await make("stopped", 1)
    changed = await make("changed", 1)
    await make("held", 3600, paused=True, note="from the start")
    await make("spent", 1, policy={"limited_actions": 2})

    async def fired() -> bool:
        ds = [await h.describe() for h in (busy, stopped, changed)]
        return all(d["counters"]["actions"] >= 3 for d in ds)

    await eventually(fired, timeout=60, what="three fires of each")
    await stopped.pause("enough")
    sched = (await changed.describe())["schedule"]
    await changed.update({**sched, "policy": {**sched["policy"], "overlap": "skip"}})
    await changed.pause("stop for a stable read")
    await busy.pause("stop for a stable read")  # its history stays long
    await asyncio.sleep(1.5)  # the spent one has used its two actions

    ids = ["busy", "changed", "held", "spent", "stopped"]
    listed = sorted(await client.list_schedules(), key=lambda s: s["schedule_id"])
    described = [await client.get_schedule_handle(i).describe() for i in ids]
    assert [s["schedule_id"] for s in listed] == ids
    for got, d in zip(listed, described, strict=True):
        want = _as_describe_says(d)
        if d["schedule_id"] in ("busy", "changed", "stopped"):
            # every second's fire: the next one moves on with the clock, paused or not
            assert got["next_fire"] <= want.pop("next_fire"), (got, d)
        assert {k: got[k] for k in want} == want, got
        assert got["start_time"].startswith(d["created_at"].removesuffix("Z")[:19]), (got, d)
    by_id = {s["schedule_id"]: s for s in listed}
    assert (by_id["stopped"]["paused"], by_id["stopped"]["note"]) == (True, "enough")
    assert by_id["changed"]["overlap"] == "skip"
    assert (by_id["held"]["paused"], by_id["held"]["note"]) == (True, "from the start")
    assert by_id["spent"]["next_fire"] is None and by_id["spent"]["actions"] == 2
    assert by_id["busy"]["actions"] >= 3
