"""Schedules on a real store, driven by the server's test clock: fires and
their workflow ids, each overlap policy, catch-up after an outage, backfill,
pause and unpause, and the refusals."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from scheduler.definition import iso
from scheduler.policy import action_workflow_id
from scheduler.workflow import WATCH_ACTIVITY
from tests.apps.scheduled import WORKFLOWS, Breaks, Hold, QuickWait, Report
from tests.conftest import Region
from tests.helpers import eventually
from worker import Client, ScheduleHandle, Worker
from worker.errors import (
    InvalidArgumentError,
    InvalidQueryError,
    ScheduleAlreadyExistsError,
    ScheduleNotFoundError,
    WorkflowNotRunningError,
)

pytestmark = pytest.mark.integration
QUEUE = "scheduled"


def worker(client: Client) -> Worker:
    return Worker(client, task_queue=QUEUE, workflows=WORKFLOWS)


def parse(t: str) -> datetime:
    return datetime.fromisoformat(t.replace("Z", "+00:00"))


async def now(client: Client) -> datetime:
    return parse((await client.server_time())["now"])


async def advance_to(client: Client, t: datetime) -> None:
    gap = (t - await now(client)).total_seconds()
    if gap > 0:
        await client.advance_test_clock(gap)


async def align(client: Client, every: timedelta) -> None:
    """Move the clock to a second past the next multiple of ``every`` (UTC).

    The test clock runs on from where it was moved, like real time: a schedule
    whose period is ``every`` and that a test creates now fires on its own only
    after ``every`` less a second, so the fires a test counts are the ones it
    makes with :func:`fire`."""
    t = await now(client)
    epoch = datetime(2000, 1, 1, tzinfo=t.tzinfo)
    boundary = epoch + every * ((t - epoch) // every + 1)
    await advance_to(client, boundary + timedelta(seconds=1))


async def processed(h: ScheduleHandle, t: datetime) -> None:
    """Wait until the schedule has looked at the fires up to ``t``."""
    wf = h.client.get_workflow_handle(f"schedule/{h.id}")

    async def done() -> bool:
        d = await h.describe()
        assert d.get("last_processed"), "nothing processed yet"
        if parse(d["last_processed"]) >= t:
            return True
        # what the schedule's workflow waits for, for the message of a timeout
        w = await wf.describe()
        acts = [(a["activity_type"], a["state"], a["attempt"]) for a in w["pending_activities"]]
        raise AssertionError(
            f"processed up to {d['last_processed']} at {await now(h.client)}; "
            f"workflow task {w['pending_workflow_task']}, timers {w['pending_timers']}, "
            f"activities {acts}"
        )

    await eventually(done, timeout=30, what=f"the schedule past {t}")


async def settled(client: Client, h: ScheduleHandle) -> None:
    """Wait until the schedule has nothing in flight but its timer and the
    watches of running actions: the clock may move then (a jump during a
    workflow task would start its timer late by the jump)."""
    wf = client.get_workflow_handle(f"schedule/{h.id}")

    async def quiet() -> bool:
        # each check says what is still going on, for the message of a timeout
        # no timer is due that has not fired yet (the timer loop is async);
        # looked at first: a timer that fires after this shows as a pending
        # workflow task below, not between the two looks
        timers: dict[str, datetime] = {}
        t = await now(client)
        for e in await wf.history():
            a = e["attributes"]
            if e["event_type"] == "TimerStarted":
                timers[a["timer_id"]] = parse(a["fire_at"])
            elif e["event_type"] in ("TimerFired", "TimerCanceled"):
                timers.pop(a["timer_id"], None)
        due = {k: at for k, at in timers.items() if at <= t}
        assert not due, f"timers due at {t}: {due}"
        d = await wf.describe()
        assert not d["pending_workflow_task"], f"workflow task {d['pending_workflow_task']}"
        assert d["execution"]["status"] == "running", d["execution"]["status"]
        busy = [a for a in d["pending_activities"] if a["activity_type"] != WATCH_ACTIVITY]
        assert not busy, f"activities {busy}"
        s = await h.describe()
        assert not s["pending_signals"], f"signals {s['pending_signals']}"
        assert all(r["status"] == "running" for r in s["running"]), f"actions {s['running']}"
        return True

    await eventually(quiet, timeout=30, what="the schedule settled")


async def fire(client: Client, h: ScheduleHandle) -> datetime:
    """Move the clock to the schedule's next fire; returns its nominal time."""
    await settled(client, h)
    nxt = parse((await h.describe())["next_fires"][0])
    await advance_to(client, nxt + timedelta(seconds=1))
    await processed(h, nxt)
    await settled(client, h)
    return nxt


async def started_ids(client: Client, schedule_id: str) -> list[str]:
    runs = [r async for r in client.list_workflows(f"ScheduledById = '{schedule_id}'")]
    return sorted(r.workflow_id for r in runs)


async def definition(client: Client, workflow: type, policy: dict[str, Any], **kw: Any) -> Any:
    kw.setdefault("cron", "* * * * *")
    return await client.schedule_definition(
        workflow=workflow, task_queue=QUEUE, args=["tick"], policy=policy, **kw
    )


async def test_a_minutely_schedule_starts_one_run_per_fire_named_by_its_nominal_time(
    clock_client: Client, clock_region: Region
) -> None:
    async with worker(clock_client):
        sched = await definition(clock_client, Report, {"overlap": "allow-all"})
        await align(clock_client, timedelta(minutes=1))
        h = await clock_client.create_schedule("every-minute", sched)
        d = await h.describe()
        nexts = [parse(t) for t in d["next_fires"]]
        assert len(nexts) == 10
        assert all(b - a == timedelta(minutes=1) for a, b in itertools.pairwise(nexts))
        fired = [await fire(clock_client, h) for _ in range(3)]
        await h.pause("no more fires while the test looks")  # real time runs on
        assert fired == nexts[:3]
        expected = [action_workflow_id("every-minute", t) for t in fired]
        assert expected[0] == "every-minute-" + fired[0].strftime("%Y-%m-%dT%H:%M:%SZ")

        async def all_started() -> bool:
            return await started_ids(clock_client, "every-minute") == expected

        await eventually(all_started, timeout=30, what="three runs")
        result = await clock_client.get_workflow_handle(expected[0]).result(timeout=30)
        assert result["scheduled"] == fired[0].strftime("%Y-%m-%dT%H:%M:%SZ")

        async def all_done() -> bool:
            d = await h.describe()
            return [a["outcome"] for a in d["recent"]] == ["completed"] * 3

        await eventually(all_done, timeout=30, what="the outcomes recorded")
        d = await h.describe()
        assert d["counters"]["actions"] == 3 and d["counters"]["skipped"] == 0
        assert [a["workflow_id"] for a in d["recent"]] == expected
        async with httpx.AsyncClient() as http:
            text = (await http.get(f"{clock_region.url}/metrics")).text
        assert (
            'baton_schedule_fires{region="region-a",namespace="default",'
            'schedule="every-minute",outcome="actions"} 3'
        ) in text
        listed = await clock_client.list_schedules()
        assert [s["schedule_id"] for s in listed] == ["every-minute"]
        with pytest.raises(ScheduleAlreadyExistsError):
            await clock_client.create_schedule("every-minute", sched)
        await h.delete()
        with pytest.raises(ScheduleNotFoundError):
            await h.describe()
        assert await clock_client.list_schedules() == []


async def statuses(client: Client, ids: list[str]) -> dict[str, str]:
    out = {}
    for wid in ids:
        d = await client.get_workflow_handle(wid).describe()
        out[wid] = d["execution"]["status"]
    return out


async def release_until(client: Client, schedule_id: str, n: int) -> list[str]:
    """Release every running Hold until ``n`` actions have started and all closed."""

    async def all_closed() -> bool:
        ids = await started_ids(client, schedule_id)
        st = await statuses(client, ids)
        for wid, status in st.items():
            if status == "running":
                # a release sent on the last pass may close it after the read above
                with contextlib.suppress(WorkflowNotRunningError):
                    await client.get_workflow_handle(wid).signal("release")
        return len(ids) == n and all(v != "running" for v in st.values())

    await eventually(all_closed, timeout=60, what=f"{n} actions closed")
    return await started_ids(client, schedule_id)


# overlap policy -> (actions started, their final statuses in order, counters)
OVERLAP = {
    "skip": (1, ["completed"], {"skipped": 2}),
    "buffer-one": (2, ["completed", "completed"], {"skipped": 1, "buffer_dropped": 0}),
    "buffer-all": (3, ["completed"] * 3, {}),
    "cancel-other": (3, ["canceled", "canceled", "completed"], {"buffer_dropped": 0}),
    "terminate-other": (3, ["terminated", "terminated", "completed"], {}),
    "allow-all": (3, ["completed"] * 3, {}),
}


@pytest.mark.parametrize("overlap", list(OVERLAP))
async def test_each_overlap_policy_as_temporal_defines_it(
    clock_client: Client, overlap: str
) -> None:
    n, final, counters = OVERLAP[overlap]
    sid = f"o-{overlap}"
    async with worker(clock_client):
        # hourly: no fire of its own comes while the test releases the actions
        sched = await definition(clock_client, Hold, {"overlap": overlap}, cron="0 * * * *")
        await align(clock_client, timedelta(hours=1))
        h = await clock_client.create_schedule(sid, sched)
        first = await fire(clock_client, h)
        if overlap == "skip":
            # a paused action is still running: the next fires are skipped
            await clock_client.get_workflow_handle(action_workflow_id(sid, first)).pause("look")
        fires_ = [first, await fire(clock_client, h), await fire(clock_client, h)]
        if overlap == "skip":
            await clock_client.get_workflow_handle(action_workflow_id(sid, first)).unpause()
        ids = await release_until(clock_client, sid, n)
        st = await statuses(clock_client, ids)
        assert [st[w] for w in ids] == final
        if overlap == "buffer-one":
            assert ids == [action_workflow_id(sid, t) for t in fires_[:2]]
        elif overlap != "skip":
            assert ids == [action_workflow_id(sid, t) for t in fires_]

        async def counted() -> bool:
            c = (await h.describe())["counters"]
            return c["actions"] == n and all(c[k] == v for k, v in counters.items())

        await eventually(counted, timeout=30, what="the counters")


async def test_backfill_starts_exactly_the_fires_of_the_range_once(clock_client: Client) -> None:
    async with worker(clock_client):
        sched = await definition(clock_client, Report, {}, cron="0 3 * * *")
        # paused: backfills act all the same, and no fire of its own comes
        h = await clock_client.create_schedule("daily", sched, paused=True)
        out = await h.backfill("2026-01-01T00:00:00Z", "2026-01-04T03:00:00Z")
        assert out["fires"] == 4 and out["overlap"] == "buffer-all"
        want = [f"daily-2026-01-0{d}T03:00:00Z" for d in (1, 2, 3, 4)]

        async def all_four() -> bool:
            return await started_ids(clock_client, "daily") == want

        await eventually(all_four, timeout=60, what="four backfilled runs")
        await settled(clock_client, h)
        await h.backfill("2026-01-02T00:00:00Z", "2026-01-02T23:59:59Z")  # one again
        await settled(clock_client, h)
        assert await started_ids(clock_client, "daily") == want
        # the time ran already: no run started and no action counted, and it says so
        d = await h.describe()
        assert d["counters"]["actions"] == 4
        again = d["recent"][-1]
        assert (again["workflow_id"], again["kind"], again["outcome"]) == (
            want[1],
            "backfill",
            "already-started",
        )
        assert again["run_id"] is None
        with pytest.raises(InvalidArgumentError, match="before start"):
            await h.backfill("2026-01-05T00:00:00Z", "2026-01-01T00:00:00Z")


async def test_a_berlin_daily_0230_across_both_2026_changes_fires_as_its_policy_says(
    clock_client: Client,
) -> None:
    """Backfilled through the server: 02:30 does not exist on 2026-03-29 (shifted
    to 03:30 CEST) and happens twice on 2026-10-25 (``repeated: both``)."""
    async with worker(clock_client):
        sched = await definition(
            clock_client,
            Report,
            {"overlap": "allow-all"},
            cron="30 2 * * *",
            spec={"timezone": "Europe/Berlin", "dst": {"missing": "shift", "repeated": "both"}},
        )
        h = await clock_client.create_schedule("berlin", sched, paused=True)
        await h.backfill("2026-03-28T00:00:00Z", "2026-03-30T23:59:59Z")
        await h.backfill("2026-10-24T00:00:00Z", "2026-10-26T23:59:59Z")
        stamps = [
            "2026-03-28T01:30:00Z",  # 02:30 CET
            "2026-03-29T01:30:00Z",  # 02:30 does not exist: 03:30 CEST
            "2026-03-30T00:30:00Z",  # 02:30 CEST
            "2026-10-24T00:30:00Z",  # 02:30 CEST
            "2026-10-25T00:30:00Z",  # 02:30 CEST, the first time
            "2026-10-25T01:30:00Z",  # 02:30 CET, the second time
            "2026-10-26T01:30:00Z",  # 02:30 CET
        ]
        want = [f"berlin-{t}" for t in stamps]

        async def all_started() -> bool:
            return await started_ids(clock_client, "berlin") == want

        await eventually(all_started, timeout=60, what="the seven Berlin fires")


async def test_pause_with_a_note_and_unpause_with_and_without_catch_up(
    clock_client: Client,
) -> None:
    async with worker(clock_client):
        sched = await definition(clock_client, Report, {"overlap": "allow-all"}, cron="0 * * * *")
        await align(clock_client, timedelta(hours=1))
        h = await clock_client.create_schedule("paused", sched)
        await settled(clock_client, h)
        await h.pause("deploy window")
        await settled(clock_client, h)
        await h.pause("deploy window")  # changes nothing, and is not left pending
        await settled(clock_client, h)
        d = await h.describe()
        assert d["paused"] and d["note"] == "deploy window" and d["pending_signals"] == 0
        start = await now(clock_client)
        await advance_to(clock_client, start + timedelta(hours=3))
        await settled(clock_client, h)
        assert await started_ids(clock_client, "paused") == []
        await h.unpause()  # the three fires it passed over are counted, not run
        await settled(clock_client, h)
        d = await h.describe()
        assert not d["paused"] and d["counters"]["missed_paused"] == 3
        assert await started_ids(clock_client, "paused") == []
        await h.pause("again")
        await settled(clock_client, h)
        t0 = await now(clock_client)
        await advance_to(clock_client, t0 + timedelta(hours=2))
        await settled(clock_client, h)
        await h.unpause(catch_up="all")

        async def caught_up() -> bool:
            return len(await started_ids(clock_client, "paused")) == 2

        await eventually(caught_up, timeout=30, what="two fires caught up")


async def test_unpause_catch_up_covers_every_fire_the_pause_passed_over(
    clock_client: Client,
) -> None:
    """The mode covers the fires less than a minute late too: ``none`` starts
    none (counted as a plain unpause counts them), ``latest`` the most recent
    only, ``all`` each."""
    async with worker(clock_client):
        # three fires ten seconds apart, once an hour: all passed over within 30 s
        sched = await definition(
            clock_client, Report, {"overlap": "allow-all"}, cron="0,10,20 30 * * * *"
        )
        await align(clock_client, timedelta(hours=1))
        hour = (await now(clock_client)).replace(minute=0, second=0, microsecond=0)
        h = await clock_client.create_schedule("catching", sched, paused=True, note="p")
        expected: list[str] = []
        for n, (mode, acted) in enumerate([("none", []), ("latest", [20]), ("all", [0, 10, 20])]):
            at = hour + timedelta(hours=n, minutes=30)
            await settled(clock_client, h)
            await advance_to(clock_client, at + timedelta(seconds=25))
            await settled(clock_client, h)
            await h.unpause(catch_up=mode)
            expected += [action_workflow_id("catching", at + timedelta(seconds=s)) for s in acted]

            want = sorted(expected)

            async def caught_up(want: list[str] = want) -> bool:
                return await started_ids(clock_client, "catching") == want

            await eventually(caught_up, timeout=30, what=f"the fires {mode} acts on")
            await settled(clock_client, h)
            d = await h.describe()
            assert d["counters"]["missed_paused"] == [3, 5, 5][n], mode
            assert d["counters"]["missed_catchup"] == 0
            assert d["counters"]["actions"] == len(expected)
            await h.pause("again")
        assert await started_ids(clock_client, "catching") == sorted(expected)


async def test_pause_on_failure_then_update_limited_actions_and_trigger(
    clock_client: Client,
) -> None:
    """A failed action pauses the schedule with a note; an update (the fixed
    action, two actions left) and an unpause let it go on; a trigger acts
    without using up an action; after the last one the spec's fires start nothing."""
    async with worker(clock_client):
        policy = {"pause_on_failure": True, "overlap": "allow-all"}
        sched = await definition(clock_client, Breaks, policy, cron="0 * * * *")
        await align(clock_client, timedelta(hours=1))
        h = await clock_client.create_schedule("fragile", sched)
        broke = await fire(clock_client, h)
        broke_id = action_workflow_id("fragile", broke)

        async def paused_by_failure() -> dict[str, Any] | None:
            d = await h.describe()
            return d if d["paused"] else None

        d = await eventually(paused_by_failure, timeout=30, what="paused by the failure")
        assert d["note"] == f"action {broke_id} failed"
        assert d["recent"][-1]["outcome"] == "failed"
        fixed = await definition(
            clock_client, Report, {**policy, "limited_actions": 2}, cron="0 * * * *"
        )
        await h.update(fixed)
        await h.unpause()
        await settled(clock_client, h)
        assert (await h.describe())["remaining_actions"] == 2
        one = await fire(clock_client, h)
        await h.trigger()
        await settled(clock_client, h)
        two = await fire(clock_client, h)
        d = await h.describe()
        assert d["remaining_actions"] == 0 and d["counters"]["actions"] == 4
        await advance_to(clock_client, two + timedelta(hours=3))
        await processed(h, two + timedelta(hours=3))
        await settled(clock_client, h)
        ids = await started_ids(clock_client, "fragile")
        scheduled = {action_workflow_id("fragile", t) for t in (broke, one, two)}
        triggered = [w for w in ids if w not in scheduled]
        assert len(ids) == 4 and len(triggered) == 1
        d = await h.describe()
        assert d["counters"]["actions"] == 4
        # no action left: no fire to show
        assert d["remaining_actions"] == 0 and d["next_fires"] == []
        [listed] = await clock_client.list_schedules()
        assert listed["schedule_id"] == "fragile" and listed["next_fire"] is None
        # no limit any more, but the spec has ended: still none
        end = {"end_at": iso(await now(clock_client))}
        await h.update(await definition(clock_client, Report, policy, cron="0 * * * *", spec=end))
        await settled(clock_client, h)
        d = await h.describe()
        assert d["remaining_actions"] is None and d["next_fires"] == []


async def test_triggers_in_one_second_each_start_a_run_of_their_own(clock_client: Client) -> None:
    """A trigger's id carries a tag: triggers in the same second as each other
    (or as a fire) never land on one run."""
    async with worker(clock_client):
        sched = await definition(clock_client, Report, {"overlap": "allow-all"}, cron="0 * * * *")
        await align(clock_client, timedelta(hours=1))
        h = await clock_client.create_schedule("poked", sched)
        await settled(clock_client, h)
        answers = await asyncio.gather(*(h.trigger() for _ in range(3)))
        assert all(a["triggered"] for a in answers)

        async def three() -> list[str] | None:
            ids = await started_ids(clock_client, "poked")
            return ids if len(ids) == 3 else None

        ids = await eventually(three, timeout=30, what="three triggered runs")
        assert all(w.startswith("poked-") and "-trigger-" in w for w in ids)
        await settled(clock_client, h)
        d = await h.describe()
        assert d["counters"]["actions"] == 3
        assert sorted(a["workflow_id"] for a in d["recent"]) == ids
        assert len({a["run_id"] for a in d["recent"]}) == 3


async def test_bad_schedules_are_refused_and_store_nothing(clock_client: Client) -> None:
    bad = [
        {"cron": ["61 * * * *"]},
        {"cron": ["* * * *"]},
        {"timezone": "Mars/Base"},
        {"intervals": [{"every": "0s"}]},
        # these crashed the API (500 INTERNAL) instead of being refused
        {"jitter": "99999999999d"},
        {"end_at": "9999-12-31T23:59:59-05:00"},
        {"calendars": [{"day_of_week": "mon/x"}]},
    ]
    for spec in bad:
        sched = await clock_client.schedule_definition(
            workflow=Report, task_queue=QUEUE, spec={"cron": ["@daily"], **spec}
        )
        with pytest.raises(InvalidArgumentError):
            await clock_client.create_schedule("bad", sched)
    sched = await definition(clock_client, Report, {"overlap": "sometimes"})
    with pytest.raises(InvalidArgumentError, match="overlap"):
        await clock_client.create_schedule("bad", sched)
    sched = await definition(clock_client, Report, {}, search_attributes={"Nope": "x"})
    with pytest.raises(InvalidArgumentError, match="not registered"):
        await clock_client.create_schedule("bad", sched)
    with pytest.raises(InvalidArgumentError):
        await clock_client.create_schedule("with/slash", await definition(clock_client, Report, {}))
    assert await clock_client.list_schedules() == []
    with pytest.raises(ScheduleNotFoundError):
        await clock_client.get_schedule_handle("bad").pause("x")


async def test_a_timer_started_and_canceled_in_one_task_never_fires(clock_client: Client) -> None:
    """Regression: the timer row of a timer canceled by the task that started it
    was written anyway, and its firing broke the workflow's replay."""
    async with Worker(clock_client, task_queue=QUEUE, workflows=[QuickWait]):
        h = await clock_client.start_workflow(QuickWait, id="quick", task_queue=QUEUE)

        async def waiting() -> bool:
            return "TimerStarted" in [e["event_type"] for e in await h.history()]

        await eventually(waiting, timeout=20, what="the second timer")
        await clock_client.advance_test_clock(61)
        await clock_client.advance_test_clock(120)
        assert await h.result(timeout=30) == "slept"
        kinds = [e["event_type"] for e in await h.history()]
        assert kinds.count("TimerFired") == 1 and "WorkflowTaskFailed" not in kinds


async def test_the_test_clock_is_off_unless_configured(client: Client) -> None:
    from worker.errors import TestClockOffError

    assert not (await client.server_time())["test_clock"]
    with pytest.raises(TestClockOffError):
        await client.advance_test_clock(60)


async def test_a_schedule_list_query_may_say_its_order(clock_client: Client) -> None:
    """`schedule list --query` narrows the schedules' own list by the query: its
    ORDER BY orders them, as in `workflow list`, and an error points into it."""
    for sid in ("first", "second"):
        await clock_client.create_schedule(
            sid, await definition(clock_client, Report, {}), paused=True
        )
    listed = await clock_client.list_schedules("ORDER BY StartTime ASC")
    assert [s["schedule_id"] for s in listed] == ["first", "second"]
    listed = await clock_client.list_schedules("WorkflowId != 'x' order by WorkflowId desc")
    assert [s["schedule_id"] for s in listed] == ["second", "first"]
    with pytest.raises(InvalidQueryError) as caught:
        await clock_client.list_schedules("WorkflowId = 'x' ORDER BY Nope")
    assert caught.value.details == {"position": 26, "token": "Nope"}


async def test_an_update_that_created_the_schedule_retried_with_its_request_id_answers_created(
    clock_client: Client,
) -> None:
    """The retry of ``update --create-if-missing`` finds the create's request
    id (a start's), not an update's: it answers that nothing more was done,
    rather than refusing the id as another kind of request's."""
    sched = await definition(clock_client, Report, {"overlap": "allow-all"})
    h = clock_client.get_schedule_handle("made-by-update")
    body = {"schedule": dict(sched), "create": True, "request_id": "upsert-1"}
    first = await clock_client.call("PUT", h._path(), body)
    assert first == {"schedule_id": "made-by-update", "updated": False, "created": True}
    again = await clock_client.call("PUT", h._path(), body)
    assert again == {"schedule_id": "made-by-update", "updated": False, "created": False}
    assert (await h.describe())["schedule"]["spec"]
