"""A jittered fire on a real store, driven by the server's test clock: from
its time until the time it acts, describe still shows it as to come."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from scheduler import definition
from scheduler.spec import jittered
from tests.apps.scheduled import Report
from tests.helpers import eventually
from worker import Client

pytestmark = pytest.mark.integration


def parse(t: str) -> datetime:
    return datetime.fromisoformat(t.replace("Z", "+00:00"))


async def now(client: Client) -> datetime:
    return parse((await client.server_time())["now"])


async def test_a_fire_waiting_out_its_jitter_is_still_the_next_one(clock_client: Client) -> None:
    sched = await clock_client.schedule_definition(
        workflow=Report, task_queue="jitter", args=["x"], cron="0 * * * *", spec={"jitter": "50m"}
    )
    spec = definition.load(sched).spec
    t = await now(clock_client)
    hour = t.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    # an id whose next fire acts well after its time (the jitter is a hash of both)
    sid = next(
        f"j{i}" for i in range(1000) if jittered(spec, f"j{i}", hour) - hour > timedelta(minutes=10)
    )
    acts = jittered(spec, sid, hour)
    h = await clock_client.create_schedule(sid, sched)
    d = await h.describe()
    assert (parse(d["next_fires"][0]), parse(d["next_action_times"][0])) == (hour, acts)

    # past its time, before it acts: it has not run, so it is still the next fire
    await clock_client.advance_test_clock((hour - await now(clock_client)).total_seconds() + 60)
    d = await h.describe()
    assert (parse(d["next_fires"][0]), parse(d["next_action_times"][0])) == (hour, acts)
    assert d["counters"]["actions"] == 0

    # once it has acted the next hour comes next
    await clock_client.advance_test_clock((acts - await now(clock_client)).total_seconds() + 1)

    async def acted() -> bool:
        d = await h.describe()
        return d["counters"]["actions"] == 1 and parse(d["next_fires"][0]) == hour + timedelta(
            hours=1
        )

    await eventually(acted, timeout=30, what="the jittered fire acted")
