"""The schedule: a system workflow that fires its spec's actions.

A schedule ``S`` is the workflow ``schedule/S`` of type ``baton.schedule`` on
the ``baton.system`` task queue of its namespace, run by the servers' system
worker like a batch job. Everything it decides is history: it sleeps on a
durable timer until the next fire, so it replicates with its namespace and
only the active region fires it; after a failover the new region's timer
wakes it. Each action is one activity that starts the workflow
``S-<nominal time>`` (RFC 3339 UTC; a trigger's adds ``-trigger-<8 hex>``,
so it never lands on a fire's run) with a request id derived from that id,
so a fire started twice (an activity retried, a failover) is one run. A
watch activity per running action tells the schedule when it closed, for the
overlap policy (a paused action is still running).

Signals change it: ``update`` (a new definition), ``pause`` and ``unpause``
(optionally catching up the fires the pause passed over; those it does not
act on are counted by ``count`` activities, never in the workflow task, which
must not run for long), ``trigger`` (act now) and ``backfill`` (act on a past
range). Triggers and backfills act while the schedule is paused; only
scheduled fires wait for an unpause. After each pass that changed something
it records a snapshot (the ``report`` activity's input), which ``describe``
reads from history in any region.
"""

from __future__ import annotations

import contextlib
import itertools
from datetime import datetime, timedelta
from typing import Any

from scheduler import definition
from scheduler.definition import iso, parse_time
from scheduler.policy import (
    CatchUp,
    Counters,
    Fire,
    Overlap,
    ScheduleState,
    action_workflow_id,
    catch_up,
    on_action_closed,
    on_fire,
)
from scheduler.spec import ExclusionsTooWide, SpecError, fires, fires_until, jittered
from worker import RetryPolicy, workflow
from worker.errors import ActivityError

WORKFLOW_TYPE = "baton.schedule"
PREFIX = "schedule/"
START_ACTIVITY = "baton.schedule.start"
WATCH_ACTIVITY = "baton.schedule.watch"
CONTROL_ACTIVITY = "baton.schedule.control"
REPORT_ACTIVITY = "baton.schedule.report"
COUNT_ACTIVITY = "baton.schedule.count"
#: Actions and buffered fires a snapshot lists.
RECENT = 10
#: A fire acted on more than this after its time is late: its catch-up mode applies.
LATE_AFTER = timedelta(seconds=60)
#: Fires one pass looks at; more (a long outage of a frequent schedule) take more passes.
MAX_FIRES_PER_PASS = 2000
#: Passes per run before the schedule continues as new.
PASSES_PER_RUN = 200
#: Fires a backfill may cover.
MAX_BACKFILL = 10_000
#: Unpause's catch-up mode covers every fire the pause passed over, not only late ones.
PATCH_UNPAUSE_MODE = "schedule-unpause-mode-v1"
#: A trigger's action id carries a tag of its own.
PATCH_TRIGGER_TAG = "schedule-trigger-tag-v1"
#: A backfill's start asks for a run of its own, and a start that started no
#: run is not counted as an action.
PATCH_START_OUTCOME = "schedule-start-outcome-v1"
#: An update that keeps limited_actions keeps the actions left.
PATCH_UPDATE_KEEPS_REMAINING = "schedule-update-keeps-remaining-v1"
#: Unpause counts the fires its pause passed over in count activities, not in
#: the workflow task: after a long pause of a frequent schedule (a minutely one
#: paused for a year has 525,600) counting runs far past what a task may run.
PATCH_COUNT_IN_ACTIVITY = "schedule-count-in-activity-v1"

#: Scheduled fires waiting in the buffer count against limited_actions.
PATCH_LIMIT_BUFFERED = "schedule-limit-buffered-v1"
#: A scheduled fire waiting in the buffer does not start while the schedule is paused.
PATCH_PAUSED_BUFFER_WAITS = "schedule-paused-buffer-waits-v1"

_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    maximum_interval=timedelta(seconds=10),
    maximum_attempts=0,
)


def schedule_workflow_id(schedule_id: str) -> str:
    return f"{PREFIX}{schedule_id}"


def initial_state(
    now: datetime, policy: definition.Policy, *, paused: bool = False, note: str = ""
) -> dict[str, Any]:
    return {
        "paused": paused,
        "note": note,
        "paused_at": iso(now) if paused else None,
        "last_processed": iso(now),
        "catchup_override": None,
        "running": {},
        "buffer": [],
        "counters": vars(Counters()).copy(),
        "remaining_actions": policy.limited_actions,
        "recent": [],
    }


def _fire_to_wire(f: Fire) -> dict[str, Any]:
    out = {"nominal": iso(f.nominal), "kind": f.kind}
    if f.tag:
        out["tag"] = f.tag
    return out


def _fire_of(d: dict[str, Any]) -> Fire:
    t = parse_time(d["nominal"], "nominal")
    assert t is not None
    return Fire(t, d["kind"], d.get("tag") or "")


@workflow.defn(name=WORKFLOW_TYPE)
class ScheduleWorkflow:
    def __init__(self) -> None:
        self.inbox: list[tuple[str, dict[str, Any]]] = []
        self.watches: dict[str, Any] = {}
        self.reported: dict[str, Any] | None = None
        #: watches started by this run (the same action may be watched again)
        self.watch_seq = 0
        #: signals this run has taken from its inbox: describe counts the rest
        #: as pending, even when one changed nothing
        self.signals_applied = 0

    @workflow.run
    async def run(self, inp: dict[str, Any]) -> dict[str, Any]:
        self.sid: str = inp["schedule_id"]
        self.ns: str = inp["namespace"]
        self.wire: dict[str, Any] = inp["schedule"]
        self.sched = definition.load(self.wire)
        # fires after the schedule was created count, even if its first task
        # runs later (the system worker picks a new namespace up in seconds)
        created = parse_time(inp.get("created_at"), "created_at") or workflow.now()
        self.state: dict[str, Any] = inp.get("state") or initial_state(
            created,
            self.sched.policy,
            paused=bool(inp.get("paused")),
            note=inp.get("note") or "",
        )
        passes = 0
        while True:
            now = workflow.now()
            self._closed_actions()
            todo = await self._take_inbox(now)
            more = False
            if not self.state["paused"]:
                due, more = self._due_fires(now)
                todo += due
            for fire, overlap in todo:
                await self._decide(fire, overlap)
            await self._start_buffered_if_idle()
            self._watch_running()
            await self._report()
            passes += 1
            long_enough = passes >= PASSES_PER_RUN or workflow.continue_as_new_suggested()
            if long_enough and not self.inbox:
                workflow.continue_as_new(
                    {
                        "schedule_id": self.sid,
                        "namespace": self.ns,
                        "schedule": self.wire,
                        "state": self.state,
                        # describe's created_at and list's start_time read it
                        # from the current run's input: the schedule's, not
                        # this continue-as-new's
                        "created_at": inp.get("created_at"),
                    }
                )
            wake = self._next_wake(workflow.now())
            if more or (wake is not None and wake <= 0):
                continue  # due already
            with contextlib.suppress(TimeoutError):  # the timer to the next fire
                await workflow.wait_condition(
                    lambda: bool(self.inbox) or any(w.done() for w in self.watches.values()),
                    timeout=wake,
                )

    # ------------------------------------------------------------------ signals

    @workflow.signal(name="update")
    def update(self, body: dict[str, Any]) -> None:
        self.inbox.append(("update", body))

    @workflow.signal(name="pause")
    def pause(self, body: dict[str, Any]) -> None:
        self.inbox.append(("pause", body))

    @workflow.signal(name="unpause")
    def unpause(self, body: dict[str, Any]) -> None:
        self.inbox.append(("unpause", body))

    @workflow.signal(name="trigger")
    def trigger(self, body: dict[str, Any]) -> None:
        self.inbox.append(("trigger", body))

    @workflow.signal(name="backfill")
    def backfill(self, body: dict[str, Any]) -> None:
        self.inbox.append(("backfill", body))

    @workflow.query(name="state")
    def query_state(self) -> dict[str, Any]:
        return self._snapshot()

    async def _take_inbox(self, now: datetime) -> list[tuple[Fire, Overlap]]:
        todo: list[tuple[Fire, Overlap]] = []
        while self.inbox:
            kind, body = self.inbox.pop(0)
            self.signals_applied += 1
            try:
                count = self._apply_signal(kind, body, now, todo)
            except (SpecError, KeyError, TypeError, ValueError, AttributeError):
                continue  # not sent by the schedule API (which checks first): ignored
            if count is not None:
                # before the signals after it, with the spec it had: as if counted here
                todo += await self._count_passed_over(now, latest=count)
        return todo

    def _apply_signal(
        self, kind: str, body: dict[str, Any], now: datetime, todo: list[tuple[Fire, Overlap]]
    ) -> bool | None:
        """Apply one signal; for an unpause whose passed-over fires are still
        to count, whether its mode is ``latest`` (else None)."""
        st = self.state
        if kind == "update":
            sched = definition.load(body["schedule"])
            limit = sched.policy.limited_actions
            # the same limit keeps what is left of it; a new one is a new budget
            if limit != self.sched.policy.limited_actions or not workflow.patched(
                PATCH_UPDATE_KEEPS_REMAINING
            ):
                st["remaining_actions"] = limit
            self.wire, self.sched = body["schedule"], sched
            if not st["paused"]:
                # the new spec fires from now on: what the old one passed stays passed
                st["last_processed"] = iso(max(now, self._last_processed()))
        elif kind == "pause":
            if not st["paused"]:
                st["paused_at"] = iso(now)
            st["paused"], st["note"] = True, body.get("note") or ""
        elif kind == "unpause" and st["paused"]:
            mode = CatchUp(body.get("catch_up") or CatchUp.NONE)
            st["paused"], st["note"], st["paused_at"] = False, body.get("note") or "", None
            if body.get("catch_up") and not workflow.patched(PATCH_UNPAUSE_MODE):
                st["catchup_override"] = body["catch_up"]  # as runs before the patch did
            elif mode == CatchUp.ALL:
                # acted on as an outage's fires are, a page per pass (_due_fires)
                st["catchup_override"] = mode.value
            else:
                st["catchup_override"] = None
                if workflow.patched(PATCH_COUNT_IN_ACTIVITY):
                    return mode == CatchUp.LATEST  # counted by _take_inbox, off this task
                todo += self._passed_over(now, latest=mode == CatchUp.LATEST)
        elif kind == "trigger" and body.get("tag"):
            # the API named the run to its caller by this time and tag: start it so
            overlap = Overlap(body.get("overlap") or self.sched.policy.overlap)
            at = parse_time(body["at"], "at")
            if at is None:
                raise ValueError("a trigger with a tag and no time")
            todo.append((Fire(at, "trigger", body["tag"]), overlap))
        elif kind == "trigger":  # sent by an earlier release
            overlap = Overlap(body.get("overlap") or self.sched.policy.overlap)
            # the tag keeps its run apart from a fire's or another trigger's in the same second
            tag = (
                f"trigger-{workflow.uuid4().hex[:8]}" if workflow.patched(PATCH_TRIGGER_TAG) else ""
            )
            todo.append((Fire(now.replace(microsecond=0), "trigger", tag), overlap))
        elif kind == "backfill":
            overlap = Overlap(body.get("overlap") or Overlap.BUFFER_ALL)
            start, end = parse_time(body["start"], "start"), parse_time(body["end"], "end")
            assert start is not None and end is not None
            for t in itertools.islice(
                fires_until(self.sched.spec, start - timedelta(microseconds=1), end), MAX_BACKFILL
            ):
                todo.append((Fire(t, "backfill"), overlap))
        return None

    # ------------------------------------------------------------------ fires

    def _last_processed(self) -> datetime:
        t = parse_time(self.state["last_processed"], "last_processed")
        assert t is not None
        return t

    def _passed_over(self, now: datetime, *, latest: bool) -> list[tuple[Fire, Overlap]]:
        """An unpause without catch-up (or with ``none``) or with ``latest``.

        Every fire the pause passed over is counted in ``missed_paused``, but
        for ``latest`` the most recent one, which is acted on if it is inside
        the catch-up window (else counted in ``missed_catchup``).
        """
        passed, last = 0, None
        for t in fires_until(self.sched.spec, self._last_processed(), now):
            passed, last = passed + 1, t
        return self._settle_passed_over(now, passed, last, latest=latest)

    async def _count_passed_over(
        self, now: datetime, *, latest: bool
    ) -> list[tuple[Fire, Overlap]]:
        """:meth:`_passed_over`, counted by count activities a slice at a time.

        Nothing of the count runs in the workflow task, so neither a long
        count nor a replay of it (the results are history) comes near what a
        task may run; the pass waits for it, fires and later signals after it.
        """
        spec, after = definition.spec_to_wire(self.sched.spec), self._last_processed()
        passed, last = 0, None
        while True:
            page: dict[str, Any] = await workflow.execute_activity(
                COUNT_ACTIVITY,
                spec,
                iso(after),
                iso(now),
                start_to_close_timeout=timedelta(seconds=60),
                retry_policy=_RETRY,
            )
            passed += page["count"]
            last = parse_time(page["last"], "last") or last
            if page["done"]:
                return self._settle_passed_over(now, passed, last, latest=latest)
            after = parse_time(page["resume"], "resume") or after

    def _settle_passed_over(
        self, now: datetime, passed: int, last: datetime | None, *, latest: bool
    ) -> list[tuple[Fire, Overlap]]:
        policy = self.sched.policy
        counters = self.state["counters"]
        self.state["last_processed"] = iso(now)
        todo: list[tuple[Fire, Overlap]] = []
        if latest and last is not None:
            passed -= 1
            if now - last <= policy.catchup_window:
                todo.append((Fire(last), policy.overlap))
            else:
                counters["missed_catchup"] += 1
        counters["missed_paused"] += passed
        return todo

    def _due_fires(self, now: datetime) -> tuple[list[tuple[Fire, Overlap]], bool]:
        """Spec fires whose (jittered) time has come, after the catch-up rules."""
        policy = self.sched.policy
        due: list[datetime] = []
        late: list[datetime] = []
        more = False
        try:
            for t in fires(self.sched.spec, self._last_processed()):
                at = jittered(self.sched.spec, self.sid, t)
                if at > now:
                    break
                due.append(t)
                if now - at > LATE_AFTER:
                    late.append(t)
                if len(due) >= MAX_FIRES_PER_PASS:
                    more = True
                    break
        except ExclusionsTooWide as exc:
            if not due and exc.last <= now:
                # every time up to it is excluded: the next pass looks on from there
                self.state["last_processed"] = iso(exc.last)
                return [], True
        if not due:
            return [], False
        self.state["last_processed"] = iso(due[-1])
        mode = CatchUp(self.state["catchup_override"] or policy.catchup)
        if not more:
            self.state["catchup_override"] = None
        on_time = due[len(late) :]  # fire times go up: the late ones come first
        counters = Counters(**self.state["counters"])
        acted = catch_up(
            late,
            now,
            window=policy.catchup_window,
            mode=CatchUp.NONE if on_time and mode == CatchUp.LATEST else mode,
            counters=counters,
        )
        self.state["counters"] = vars(counters).copy()
        return [(Fire(t), policy.overlap) for t in [*acted, *on_time]], more

    def _next_wake(self, now: datetime) -> float | None:
        if self.state["paused"]:
            return None
        try:
            nxt = next(fires(self.sched.spec, self._last_processed()), None)
        except ExclusionsTooWide as exc:
            # wake where the exclusions' run was cut: _due_fires walks on from there
            return (exc.last - now).total_seconds()
        if nxt is None:
            return None  # the spec has ended: signals and watches still wake it
        at = jittered(self.sched.spec, self.sid, nxt)
        return (at - now).total_seconds()

    # ------------------------------------------------------------------ decisions

    def _policy_state(self) -> ScheduleState:
        st = self.state
        return ScheduleState(
            running=bool(st["running"]),
            buffer=[_fire_of(b) for b in st["buffer"]],
            counters=Counters(**st["counters"]),
            remaining_actions=st["remaining_actions"],
            limit_buffered=st["remaining_actions"] is not None
            and workflow.patched(PATCH_LIMIT_BUFFERED),
        )

    def _keep(self, ps: ScheduleState) -> None:
        st = self.state
        st["buffer"] = [_fire_to_wire(f) for f in ps.buffer]
        st["counters"] = vars(ps.counters).copy()
        st["remaining_actions"] = ps.remaining_actions

    async def _decide(self, fire: Fire, overlap: Overlap) -> None:
        ps = self._policy_state()
        decision = on_fire(overlap, ps, fire)
        self._keep(ps)
        if decision.cancel_running or decision.terminate_running:
            op = "terminate" if decision.terminate_running else "cancel"
            for wid, info in list(self.state["running"].items()):
                await workflow.execute_activity(  # retried without end
                    CONTROL_ACTIVITY,
                    self.ns,
                    wid,
                    info["run_id"],
                    op,
                    f"schedule {self.sid}: overlap policy {overlap.value}",
                    start_to_close_timeout=timedelta(seconds=30),
                    retry_policy=_RETRY,
                )
        if decision.start:
            await self._start(fire)

    async def _start_buffered_if_idle(self) -> None:
        while not self.state["running"] and self.state["buffer"]:
            ps = self._policy_state()
            if (
                self.state["paused"]
                and ps.buffer[0].scheduled
                and workflow.patched(PATCH_PAUSED_BUFFER_WAITS)
            ):
                # a paused schedule's own fires wait in the buffer for the
                # unpause; a trigger or backfill waiting behind them goes now
                manual = [i for i, f in enumerate(ps.buffer) if not f.scheduled]
                if not manual:
                    return
                ps.buffer.insert(0, ps.buffer.pop(manual[0]))
            fire = on_action_closed(ps)
            self._keep(ps)
            if fire is None:
                return
            await self._start(fire)

    async def _start(self, fire: Fire) -> None:
        wid = action_workflow_id(self.sid, fire.nominal, fire.tag)
        outcome_patch = workflow.patched(PATCH_START_OUTCOME)
        # A backfill's start carries a request id of its own: over a time that
        # already ran, it then finds that run taken (already-started) instead of
        # taking it for its own start repeated. Retries keep the same id.
        request = (
            [f"backfill-{workflow.uuid4().hex[:8]}"]
            if outcome_patch and fire.kind == "backfill"
            else []
        )
        res: dict[str, Any] = await workflow.execute_activity(
            START_ACTIVITY,
            self.ns,
            self.sid,
            self.sched.action,
            wid,
            iso(fire.nominal),
            *request,
            start_to_close_timeout=timedelta(seconds=60),
            retry_policy=_RETRY,
        )
        entry = {
            "nominal": iso(fire.nominal),
            "kind": fire.kind,
            "workflow_id": wid,
            "run_id": res.get("run_id"),
            "started_at": iso(workflow.now()),
            "outcome": res["outcome"],
        }
        if res.get("error"):
            entry["error"] = res["error"]
        self.state["recent"] = [*self.state["recent"], entry][-RECENT:]
        if res["outcome"] != "running" and outcome_patch:
            self.state["counters"]["actions"] -= 1  # counted when decided: no run started
        if res["outcome"] == "running":
            self.state["running"][wid] = {"run_id": res["run_id"], "nominal": iso(fire.nominal)}
        elif self.sched.policy.pause_on_failure:
            self._pause_for(f"action {wid} could not start: {res.get('error')}")

    def _pause_for(self, note: str) -> None:
        st = self.state
        if not st["paused"]:
            st["paused"], st["paused_at"] = True, iso(workflow.now())
        st["note"] = note

    # ------------------------------------------------------------------ running actions

    def _watch_running(self) -> None:
        for wid, info in self.state["running"].items():
            if wid not in self.watches:
                self.watch_seq += 1
                self.watches[wid] = workflow.start_activity(
                    WATCH_ACTIVITY,
                    self.ns,
                    wid,
                    info["run_id"],
                    activity_id=f"watch:{self.watch_seq}:{wid}",
                    start_to_close_timeout=timedelta(days=3650),
                    heartbeat_timeout=timedelta(seconds=60),
                    retry_policy=_RETRY,
                )

    def _closed_actions(self) -> None:
        for wid, handle in list(self.watches.items()):
            if not handle.done():
                continue
            del self.watches[wid]
            try:
                result = handle.result()
            except ActivityError:
                continue  # retried without end: only a cancel gets here; watch again
            self.state["running"].pop(wid, None)
            for entry in self.state["recent"]:
                if entry["workflow_id"] == wid:
                    entry["outcome"] = result["status"]
                    entry["closed_at"] = iso(workflow.now())
            if self.sched.policy.pause_on_failure and result["status"] in ("failed", "timed_out"):
                self._pause_for(f"action {wid} {result['status'].replace('_', ' ')}")

    # ------------------------------------------------------------------ describe

    def _snapshot(self) -> dict[str, Any]:
        st = self.state
        return {
            "schedule_id": self.sid,
            "schedule": self.wire,
            "paused": st["paused"],
            "note": st["note"],
            "paused_at": st["paused_at"],
            "last_processed": st["last_processed"],
            "running": [
                {"workflow_id": w, **i} for w, i in itertools.islice(st["running"].items(), 100)
            ],
            "running_count": len(st["running"]),
            "buffer": st["buffer"][:RECENT],
            "buffered": len(st["buffer"]),
            # they use up actions left: describe shows no more next fires than remain
            "buffered_scheduled": sum(1 for b in st["buffer"] if b["kind"] == "scheduled"),
            "counters": st["counters"],
            "remaining_actions": st["remaining_actions"],
            "recent": st["recent"],
            "signals_applied": self.signals_applied,
        }

    async def _report(self) -> None:
        snap = self._snapshot()
        if snap == self.reported:
            return
        self.reported = snap
        # its input is the record describe reads; the metrics it writes can lag
        with contextlib.suppress(ActivityError):
            await workflow.execute_activity(
                REPORT_ACTIVITY,
                self.ns,
                self.sid,
                snap,
                start_to_close_timeout=timedelta(seconds=30),
                retry_policy=RetryPolicy(maximum_attempts=3),
            )


__all__ = ["ScheduleWorkflow", "schedule_workflow_id"]
