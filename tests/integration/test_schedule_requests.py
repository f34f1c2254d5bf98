"""Schedule requests as a user sends them: actions the start would refuse are
refused when the schedule is made, retried calls act once, and an update
keeps what it does not change."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.apps.scheduled import Report
from tests.conftest import Region
from tests.helpers import eventually
from tests.integration.test_schedules import align, fire, settled, worker
from worker import Client
from worker.errors import InvalidArgumentError, ScheduleNotFoundError

pytestmark = pytest.mark.integration
QUEUE = "scheduled"


async def _definition(client: Client, **action: Any) -> dict[str, Any]:
    sched = await client.schedule_definition(
        workflow=Report, task_queue=QUEUE, args=["tick"], cron="0 0 1 1 *"
    )
    sched["action"].update(action)
    return sched


@pytest.mark.parametrize(
    ("action", "field"),
    [
        ({"input": [1, "x"]}, "action.input.0"),
        ({"task_timeout_s": 7200}, "action.task_timeout_s"),
        ({"run_timeout_s": 1e12}, "action.run_timeout_s"),
        ({"task_queue": "q" * 1001}, "action.task_queue"),
    ],
)
async def test_an_action_the_start_would_refuse_is_refused_at_create_and_update(
    clock_client: Client, action: dict[str, Any], field: str
) -> None:
    """Regression: these were stored, and every fire then failed as
    ``start-failed`` with the start's INVALID_ARGUMENT."""
    bad = await _definition(clock_client, **action)
    with pytest.raises(InvalidArgumentError, match=field) as caught:
        await clock_client.create_schedule("refused", bad)
    assert caught.value.details["problems"][0]["field"].startswith(field)
    assert await clock_client.list_schedules() == []
    h = await clock_client.create_schedule("kept", await _definition(clock_client), paused=True)
    before = (await h.describe())["schedule"]
    with pytest.raises(InvalidArgumentError, match=field):
        await h.update(bad)
    with pytest.raises(InvalidArgumentError, match=field):
        await clock_client.get_schedule_handle("upserted").update(bad, create=True)
    assert (await h.describe())["schedule"] == before
    assert [s["schedule_id"] for s in await clock_client.list_schedules()] == ["kept"]


@pytest.mark.parametrize(
    ("spec", "where"),
    [
        # named as given: not a spec.cron where only calendars were given
        ({"cron": ["0 0 31 2 *"]}, "schedule: spec.cron"),
        ({"calendars": [{"day": "2nd mon", "day_of_week": "sat"}]}, "schedule: spec.calendars"),
        ({"calendars": [{"month": "2", "day": "30"}]}, "schedule: spec.calendars"),
        (
            {"cron": ["0 0 * * *", "@every 1h"], "calendars": [{"month": "2", "day": "30"}]},
            "schedule: spec.calendars",
        ),
        ({"cron": ["0 0 30 2 *"], "calendars": [{"hour": "3"}]}, "schedule: spec.cron"),
        ({"cron": ["0 0 * * *"], "exclude": [{"day": "30", "month": "feb"}]}, "spec.exclude"),
    ],
)
async def test_a_calendar_that_names_no_date_is_refused_at_create_and_update(
    clock_client: Client, spec: dict[str, Any], where: str
) -> None:
    """Regression: these were stored, and every look for their next fire
    (describe, each pass of the schedule) had apscheduler search up to the
    year 9999, seconds of CPU on the server's event loop or in the
    schedule's workflow task, for a date that never comes."""
    bad = await _definition(clock_client)
    bad["spec"] = {**spec}
    with pytest.raises(InvalidArgumentError, match=f"{where} has a calendar that names no date"):
        await clock_client.create_schedule("refused", bad)
    assert await clock_client.list_schedules() == []
    h = await clock_client.create_schedule("kept", await _definition(clock_client), paused=True)
    before = (await h.describe())["schedule"]
    with pytest.raises(InvalidArgumentError, match="names no date"):
        await h.update(bad)
    assert (await h.describe())["schedule"] == before
    # a rare date is a date: February 29, and February 29 on a Monday (2044)
    rare = await _definition(clock_client)
    rare["spec"] = {"cron": ["0 0 29 2 *", "0 12 29 2 1"]}
    await clock_client.create_schedule("rare", rare, paused=True)


class LosesAReply:
    """A TCP relay to a server that, once armed with a request line's start,
    lets that request through and drops its reply: the client's transport sees
    the connection fail and sends the same request again."""

    def __init__(self, target: str) -> None:
        parts = urlsplit(target)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.armed: bytes | None = None
        self.dropped: list[bytes] = []

    async def _relay(self, cr: asyncio.StreamReader, cw: asyncio.StreamWriter) -> None:
        ur, uw = await asyncio.open_connection(self.host, self.port)
        drop = asyncio.Event()

        async def up() -> None:
            while data := await cr.read(65536):
                if self.armed is not None and data.startswith(self.armed):
                    self.dropped.append(self.armed)
                    self.armed = None
                    drop.set()
                uw.write(data)
                await uw.drain()
            uw.close()

        async def down() -> None:
            while data := await ur.read(65536):
                if drop.is_set():
                    cw.transport.abort()  # the request was served: its reply is lost
                    return
                cw.write(data)
                await cw.drain()
            cw.close()

        await asyncio.gather(up(), down(), return_exceptions=True)

    @contextlib.asynccontextmanager
    async def serving(self) -> AsyncIterator[str]:
        server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        try:
            yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
        finally:
            server.close()

    def lose_reply_of(self, method: str, path: str) -> None:
        self.armed = f"{method} {path}".encode()


async def test_each_schedule_call_whose_reply_is_lost_acts_once(
    clock_client: Client, clock_region: Region
) -> None:
    """Regression: the SDK's schedule calls sent no request id, so the server
    drew one per attempt and a retried call acted again: a create whose reply
    was lost answered SCHEDULE_ALREADY_EXISTS, a trigger or a pause was
    applied twice, a delete answered SCHEDULE_NOT_FOUND."""
    relay = LosesAReply(clock_region.url)
    async with relay.serving() as url:
        c = await Client.connect(url, namespace="default")
        base = "/api/v1/namespaces/default/schedules"
        try:
            relay.lose_reply_of("POST", f"{base} ")
            h = await c.create_schedule("retried", await _definition(c), paused=True)
            # the retry found the request id this call drew: its own create
            assert h.created is True
            relay.lose_reply_of("POST", f"{base}/retried/trigger ")
            await h.trigger(overlap="allow-all")
            relay.lose_reply_of("POST", f"{base}/retried/pause ")
            await h.pause("held")
            relay.lose_reply_of("PUT", f"{base}/retried ")
            await h.update(await _definition(c), request_id="upd-1")
            relay.lose_reply_of("POST", f"{base}/retried/backfill ")
            await h.backfill("2026-01-01T00:00:00Z", "2026-01-01T00:00:00Z")
            assert len(relay.dropped) == 5 and relay.armed is None

            async def settled() -> bool:
                d = await h.describe()
                assert d["pending_signals"] == 0, d["pending_signals"]
                return True

            await eventually(settled, timeout=30, what="the signals applied")
            wf = c.get_workflow_handle("schedule/retried")
            signals = [
                e["attributes"]["signal_name"]
                for e in await wf.history()
                if e["event_type"] == "WorkflowExecutionSignaled"
            ]
            assert signals == ["trigger", "pause", "update", "backfill"]
            d = await h.describe()
            # one trigger started (no worker runs it), one backfilled fire waits for it
            assert [a["kind"] for a in d["recent"]] == ["trigger"], d["recent"]
            assert d["buffered"] == 1 and d["counters"]["actions"] == 1, d
            relay.lose_reply_of("PUT", f"{base}/made-by-update ")
            made = await c.get_schedule_handle("made-by-update").update(
                await _definition(c), create=True
            )
            assert made["created"] is True, made  # its own retry found the id it drew
            relay.lose_reply_of("DELETE", f"{base}/retried?")
            assert (await h.delete())["deleted"] is True
            with pytest.raises(ScheduleNotFoundError):
                await h.describe()
        finally:
            await c.close()


async def test_an_update_that_keeps_limited_actions_keeps_the_actions_left(
    clock_client: Client,
) -> None:
    """Regression: every update reset the actions left to ``limited_actions``,
    so changing only the cron (``update --file describe.json --cron ...``)
    gave a schedule that had used 1 of 2 actions two more."""
    async with worker(clock_client):
        sched = await clock_client.schedule_definition(
            workflow=Report,
            task_queue=QUEUE,
            args=["x"],
            cron="0 * * * *",
            policy={"limited_actions": 2, "overlap": "allow-all"},
        )
        await align(clock_client, timedelta(hours=1))
        h = await clock_client.create_schedule("limited", sched)
        await fire(clock_client, h)
        assert (await h.describe())["remaining_actions"] == 1
        other_cron = {**sched, "spec": {"cron": ["30 * * * *"]}}
        await h.update(other_cron)
        await settled(clock_client, h)
        d = await h.describe()
        assert d["schedule"]["spec"]["calendars"][0]["minute"] == "30"
        assert d["remaining_actions"] == 1
        await fire(clock_client, h)
        d = await h.describe()
        assert d["remaining_actions"] == 0 and d["next_fires"] == []
        # a new limit is a new budget
        await h.update({**other_cron, "policy": {**sched["policy"], "limited_actions": 3}})
        await settled(clock_client, h)
        assert (await h.describe())["remaining_actions"] == 3


async def test_describe_shows_no_more_next_fires_than_actions_left(
    clock_client: Client,
) -> None:
    """Regression: a schedule with 2 actions left showed 10 next fires, and one
    made with none left showed fires until its first workflow task ran."""
    sched = await clock_client.schedule_definition(
        workflow=Report,
        task_queue=QUEUE,
        args=["x"],
        cron="0 * * * *",
        policy={"limited_actions": 2},
    )
    h = await clock_client.create_schedule("two-left", sched)
    for _ in range(2):  # just made, and once its workflow has taken it over
        d = await h.describe()
        assert d["remaining_actions"] == 2 and len(d["next_fires"]) == 2, d
        await settled(clock_client, h)
    none_left = {**sched, "policy": {"limited_actions": 0}}
    h = await clock_client.create_schedule("none-left", none_left)
    d = await h.describe()
    assert d["remaining_actions"] == 0 and d["next_fires"] == [], d
