"""What a schedule does at a fire: overlap policies, catch-up, and its counters.

Pure rules over plain data, as Temporal defines them; the schedule workflow
applies them at each nominal fire time.

Overlap, when a fire comes while the schedule's last action workflow is still
running (a paused one counts as running):

* ``skip`` (default): the fire does nothing (counted in ``skipped``).
* ``buffer-one``: the fire waits for the running one to close; at most one
  waits, a later fire while one waits is dropped (``buffer_dropped``).
* ``buffer-all``: every fire waits, and they start one after another.
* ``cancel-other``: the running one is asked to cancel; the new one starts
  once it has closed.
* ``terminate-other``: the running one is terminated and the new one starts.
* ``allow-all``: the new one starts alongside.

Catch-up, for fires that passed while the schedule could not act (its region
was down, the schedule paused): fires older than the catch-up window (default
one year, as Temporal) are missed (``missed_catchup``); of those inside it,
``all`` runs each, ``latest`` only the newest, ``none`` none.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum


class Overlap(StrEnum):
    SKIP = "skip"
    BUFFER_ONE = "buffer-one"
    BUFFER_ALL = "buffer-all"
    CANCEL_OTHER = "cancel-other"
    TERMINATE_OTHER = "terminate-other"
    ALLOW_ALL = "allow-all"


class CatchUp(StrEnum):
    ALL = "all"
    LATEST = "latest"
    NONE = "none"


DEFAULT_CATCHUP_WINDOW = timedelta(days=365)


@dataclass
class Counters:
    actions: int = 0
    skipped: int = 0
    buffer_dropped: int = 0
    missed_catchup: int = 0
    #: Fires that passed while the schedule was paused and were not caught up.
    missed_paused: int = 0


@dataclass(frozen=True)
class Fire:
    """One nominal time to act on."""

    nominal: datetime
    #: ``scheduled`` (a fire of the spec), ``trigger`` (trigger now) or
    #: ``backfill``; only scheduled fires use up limited actions.
    kind: str = "scheduled"
    #: Set on a trigger and appended to its action's workflow id: a trigger
    #: starts its own run even in the second of a fire or of another trigger.
    tag: str = ""

    @property
    def scheduled(self) -> bool:
        return self.kind == "scheduled"


@dataclass(frozen=True)
class Decision:
    """What to do now with one fire."""

    start: bool = False
    #: Wait in the buffer until the running action closes.
    buffer: bool = False
    cancel_running: bool = False
    terminate_running: bool = False


@dataclass
class ScheduleState:
    """What the schedule workflow keeps between fires."""

    running: bool = False
    buffer: list[Fire] = field(default_factory=list)
    counters: Counters = field(default_factory=Counters)
    #: Fires left (None: no limit); only scheduled fires use them up.
    remaining_actions: int | None = None
    #: Scheduled fires waiting in the buffer are actions promised: one is
    #: buffered only while the limit has room for it, and one the limit has no
    #: room for when its turn comes is dropped, so a buffering schedule never
    #: starts more than ``limited_actions`` (off for a schedule that ran
    #: before, which replays as it ran).
    limit_buffered: bool = False


def on_fire(policy: Overlap, state: ScheduleState, fire: Fire | datetime) -> Decision:
    """Apply the overlap policy to ``fire`` (updates ``state``)."""
    if isinstance(fire, datetime):
        fire = Fire(fire)
    if fire.scheduled and state.remaining_actions is not None and state.remaining_actions <= 0:
        return Decision()
    if not state.running and not state.buffer:
        return _started(state, fire)
    if policy == Overlap.ALLOW_ALL:
        return _started(state, fire)
    if policy == Overlap.SKIP:
        state.counters.skipped += 1
        return Decision()
    if policy == Overlap.TERMINATE_OTHER:
        was_running = state.running
        state.counters.buffer_dropped += len(state.buffer)
        state.buffer.clear()
        _started(state, fire)
        return Decision(start=True, terminate_running=was_running)
    if policy == Overlap.BUFFER_ONE and state.buffer:
        # as Temporal counts it: an overlap skip (buffer_dropped is for a full buffer)
        state.counters.skipped += 1
        return Decision()
    if policy == Overlap.CANCEL_OTHER:
        # only the newest waits for the cancel: earlier waiting fires are replaced
        state.counters.buffer_dropped += len(state.buffer)
        state.buffer[:] = [fire]
        return Decision(buffer=True, cancel_running=state.running)
    if fire.scheduled and not _room_to_buffer(state):
        return Decision()  # the waiting fires use up the actions left
    state.buffer.append(fire)
    return Decision(buffer=True)


def _room_to_buffer(state: ScheduleState) -> bool:
    if not state.limit_buffered or state.remaining_actions is None:
        return True
    waiting = sum(1 for f in state.buffer if f.scheduled)
    return state.remaining_actions - waiting > 0


def _started(state: ScheduleState, fire: Fire) -> Decision:
    state.running = True
    state.counters.actions += 1
    if fire.scheduled and state.remaining_actions is not None:
        state.remaining_actions -= 1
    return Decision(start=True)


def on_action_closed(state: ScheduleState) -> Fire | None:
    """The running action closed: the buffered fire to start now, if any."""
    state.running = False
    while state.buffer:
        fire = state.buffer.pop(0)
        if (
            state.limit_buffered
            and fire.scheduled
            and state.remaining_actions is not None
            and state.remaining_actions <= 0
        ):
            continue  # no action left for it (an update lowered the limit)
        _started(state, fire)
        return fire
    return None


def catch_up(
    missed: Sequence[datetime],
    now: datetime,
    *,
    window: timedelta = DEFAULT_CATCHUP_WINDOW,
    mode: CatchUp = CatchUp.ALL,
    counters: Counters | None = None,
) -> list[datetime]:
    """Of the fires that passed unacted (ascending), those to act on now."""
    inside = [t for t in missed if now - t <= window]
    lost = len(missed) - len(inside)
    if mode == CatchUp.LATEST:
        lost += max(len(inside) - 1, 0)
        inside = inside[-1:]
    elif mode == CatchUp.NONE:
        lost += len(inside)
        inside = []
    if counters is not None:
        counters.missed_catchup += lost
    return inside


def action_workflow_id(schedule_id: str, nominal: datetime, tag: str = "") -> str:
    """The action workflow's id: the same fire can never start twice.

    A fire's id is ``ID-<nominal time>``; a tagged fire's (a trigger's) is
    ``ID-<nominal time>-<tag>``, so it never meets a fire's or another trigger's.
    """
    stamp = nominal.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    return f"{schedule_id}-{stamp}-{tag}" if tag else f"{schedule_id}-{stamp}"
