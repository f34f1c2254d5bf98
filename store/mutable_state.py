"""One history write to one workflow run, gathered and then written at once.

A :class:`RunTxn` is opened on a locked execution row. Operations add events,
task rows, timers and execution changes to it; :meth:`RunTxn.write_txn` then
writes them all with a handful of batched statements, together with the
outbox row, inside the caller's transaction (ARCHITECTURE invariant 1).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, ClassVar

import asyncpg

from store.clock import utcnow as utcnow
from store.errors import StoreError
from store.namespaces import Namespace
from store.run_cache import CachedRun, RunCache
from store.run_close import close_outcome
from store.run_write import VERSIONING_COLUMNS as VERSIONING_COLUMNS
from store.run_write import as_uuid as _uuid
from store.run_write import event_to_wire as event_to_wire
from store.run_write import run_not_found as _not_found
from store.run_write import write_run
from store.sql import QUERIES as Q
from store.update_tasks import speculative_events, suggest_can
from versioning import routing
from versioning.rules import Override
from worker.wire import EventType

# Timer kinds.
USER_TIMER = "user"
ACTIVITY_RETRY = "activity_retry"
ACTIVITY_SCHEDULE_TO_START = "activity_schedule_to_start"
ACTIVITY_SCHEDULE_TO_CLOSE = "activity_schedule_to_close"
ACTIVITY_START_TO_CLOSE = "activity_start_to_close"
ACTIVITY_HEARTBEAT = "activity_heartbeat"
WT_TIMEOUT = "workflow_task_timeout"
WT_RETRY = "workflow_task_retry"
WT_STICKY = "workflow_task_sticky"
RUN_TIMEOUT = "run_timeout"


# --------------------------------------------------------------------------- the run txn


@dataclass
class RunTxn:
    """Changes to one run, written together by :meth:`write_txn`."""

    #: Inputs that may wait behind one started workflow task (the server sets
    #: it from ``buffered_inputs_max``); past it the task is failed and they
    #: are written, so a flood never grows a run's buffer without bound.
    buffered_inputs_max: ClassVar[int] = 1_000
    #: History length from which a started task suggests continue-as-new (the
    #: server sets it), for a speculative task's started event.
    suggest_continue_as_new_events: ClassVar[int] = 10_240

    conn: asyncpg.Connection
    ns: Namespace
    exe: dict[str, Any]
    now: datetime = field(default_factory=utcnow)
    events: list[tuple[int, str, dict[str, Any]]] = field(default_factory=list)
    tasks: list[tuple[str, str, str, int]] = field(
        default_factory=list
    )  # kind, queue, ref, attempt
    timers: list[tuple[str, str, int, datetime]] = field(default_factory=list)
    timer_deletes: list[tuple[str, str]] = field(default_factory=list)
    activity_deletes: list[int] = field(default_factory=list)
    activity_inserts: list[dict[str, Any]] = field(default_factory=list)
    #: Buffered inputs added by this write: {"seq", "event_type", "attributes"}.
    buffer_inserts: list[dict[str, Any]] = field(default_factory=list)
    #: Request ids this write acted on: (request id, kind).
    request_ids: list[tuple[str, str]] = field(default_factory=list)
    #: Buffered rows stored before this write: seqs in (flushed, last].
    stored_buffer: tuple[int, int] = (0, 0)
    #: The workflow task this write scheduled, if any.
    scheduled_here: int | None = None
    is_new: bool = False
    notify_close: bool = False
    #: The run's deployment, build or versioning changed: the write sets them.
    versioning_changed: bool = False
    #: The run was paused or unpaused: the write sets its pause_info.
    pause_changed: bool = False
    #: Read without locks (:meth:`read_unlocked`): the xmin of the run's row and
    #: of its namespace's row then, against which the write is checked.
    expect_xmin: tuple[int, int] | None = None
    #: A new run started unlocked: the workflow id's current run when read
    #: (None: it had none), against which the write is checked.
    expect_current_run: str | None = None
    #: The failure the write rejects a closing run's open updates with.
    fail_updates: dict[str, Any] | None = None
    #: A workflow task was started by this write; the write returns its view.
    started_here: bool = False
    task_view: dict[str, Any] | None = None
    #: Where this process remembers runs (store/run_cache.py): an unlocked
    #: write of the run is kept there; ``cached`` is the entry this txn was
    #: made from instead of a read, and ``act_check`` the remembered activity
    #: (scheduled event id, row xmin) the write is also checked against.
    cache: RunCache | None = None
    cached: CachedRun | None = None
    act_check: tuple[int, int] | None = None
    #: :meth:`write_txn` ran to its end.
    written: bool = False
    #: Locked by :meth:`lock`: its namespace row's xmin (the namespace's fence
    #: is held shared until the transaction ends). With ``cache`` set, the write keeps the run as it
    #: left it in ``after_commit``, which the caller remembers once the
    #: transaction committed (the first workflow task of a run).
    locked_ns_xmin: int | None = None
    after_commit: CachedRun | None = None

    @classmethod
    async def lock(
        cls,
        conn: asyncpg.Connection,
        namespace: str,
        workflow_id: str,
        run_id: str | None,
        *,
        region: str,
        region_urls: dict[str, str],
        write: bool = True,
    ) -> RunTxn:
        """Lock a run (the current one when ``run_id`` is None) for a history write."""
        if run_id is None:
            row = await conn.fetchrow(Q["lock_current_execution"], namespace, workflow_id)
            for _ in range(3):
                if row is None or row["status"] == "running":
                    break
                # A continue-as-new or a reset that committed while this waited
                # for the run's lock made another run current, but the statement
                # joined the workflow's current run as its snapshot had it: ask
                # again (a new statement sees the commit).
                again = await conn.fetchrow(Q["lock_current_execution"], namespace, workflow_id)
                if again is None or again["run_id"] == row["run_id"]:
                    break
                row = again
        else:
            row = await conn.fetchrow(Q["lock_execution"], namespace, workflow_id, _uuid(run_id))
        if row is None:
            await _not_found(conn, namespace, workflow_id, run_id)
        return await cls.from_locked_row(
            conn, namespace, row, region=region, region_urls=region_urls, write=write
        )

    @classmethod
    async def from_locked_row(
        cls,
        conn: asyncpg.Connection,
        namespace: str,
        row: Mapping[str, Any],
        *,
        region: str,
        region_urls: dict[str, str],
        write: bool = True,
    ) -> RunTxn:
        """The run of a row with ``lock_execution``'s columns, read and locked
        by this transaction (:meth:`lock`, or a statement that also did more)."""
        rt = await cls._from_row(conn, namespace, row, region, region_urls, write)
        if row.get("x_ns_xmin") is not None:
            rt.locked_ns_xmin = int(row["x_ns_xmin"])
        return rt

    @classmethod
    async def read_unlocked(
        cls,
        conn: asyncpg.Connection,
        namespace: str,
        workflow_id: str,
        run_id: str,
        *,
        region: str,
        region_urls: dict[str, str],
        activity: int | None = None,
        cache: RunCache | None = None,
    ) -> tuple[RunTxn, dict[str, Any] | None]:
        """Read a run for a write without a transaction or a lock (one round trip).

        ``conn`` is in no transaction: the write (:meth:`write_txn`, one call of
        its own) locks the run and its namespace and is refused as a
        :class:`~store.errors.Conflict` if either changed since this read, so a
        caller retries from the read. Only writes whose every change goes
        through the :class:`RunTxn` may be made this way. With ``activity``, the
        activity of that scheduled event id is read too (None if it is gone).

        With ``cache``, a run this process wrote last is taken from there
        without a round trip (and the write is checked against it instead),
        and the write is remembered there.
        """
        entry = None if cache is None else cache.lookup((namespace, workflow_id, run_id), activity)
        if cache is not None and entry is not None:
            try:
                entry.ns.require_writable(region, region_urls)
            except StoreError:
                # as remembered, the namespace refuses: read what it is now
                cache.forget((namespace, workflow_id, run_id))
            else:
                return cls._remembered(conn, entry, cache, activity)
        row = await conn.fetchrow(
            Q["read_execution"], namespace, workflow_id, _uuid(run_id), activity
        )
        if row is None:
            await _not_found(conn, namespace, workflow_id, run_id)
        rt = await cls._from_row(conn, namespace, row, region, region_urls, True)
        rt.expect_xmin = (int(row["x_run_xmin"]), int(row["x_ns_xmin"]))
        rt.cache = cache
        act = None
        if activity is not None and row["x_act_state"] is not None:
            act = {
                "scheduled_event_id": activity,
                "attempt": row["x_act_attempt"],
                "state": row["x_act_state"],
                "started_identity": row["x_act_started_identity"],
                "last_failure": row["x_act_last_failure"],
            }
        return rt, act

    @classmethod
    def _remembered(
        cls,
        conn: asyncpg.Connection,
        entry: CachedRun,
        cache: RunCache | None,
        activity: int | None,
    ) -> tuple[RunTxn, dict[str, Any] | None]:
        exe = dict(entry.exe)
        exe["buffered_events"] = []
        rt = cls(
            conn=conn,
            ns=entry.ns,
            exe=exe,
            stored_buffer=(int(exe["buffered_flushed_seq"]), int(exe["buffered_seq"])),
            expect_xmin=(entry.run_xmin, entry.ns_xmin),
            cache=cache,
            cached=entry,
        )
        act = None
        if activity is not None:
            act_xmin, act_row = entry.activities[activity]
            act = dict(act_row)
            rt.act_check = (activity, act_xmin)
        return rt, act

    @classmethod
    async def _from_row(
        cls,
        conn: asyncpg.Connection,
        namespace: str,
        row: Mapping[str, Any],
        region: str,
        region_urls: dict[str, str],
        write: bool,
    ) -> RunTxn:
        ns = Namespace(
            name=namespace,
            regions=list(row["ns_regions"]),
            active_region=row["ns_active_region"],
            failover_version=row["ns_failover_version"],
            state=row["ns_state"],
            retention_days=row["ns_retention_days"],
            description="",
            deployments=row["ns_deployments"] or {},
        )
        if write:
            ns.require_writable(region, region_urls)
        exe = {k: v for k, v in row.items() if not k.startswith(("ns_", "x_"))}
        if row["ns_sticky_closed"]:
            # its worker shut down: the run's next tasks go to its own queue
            exe["sticky_queue"] = exe["sticky_timeout_s"] = None
        exe["buffered_events"] = []
        if exe["buffered_seq"] > exe["buffered_flushed_seq"]:
            # read after the run is locked: the rows of the write we waited for
            exe["buffered_events"] = [
                [b["event_type"], b["attributes"], b["seq"]]
                for b in await conn.fetch(
                    Q["buffered_of_run"],
                    namespace,
                    exe["workflow_id"],
                    row["run_id"],
                    exe["buffered_flushed_seq"],
                )
            ]
        return cls(
            conn=conn,
            ns=ns,
            exe=exe,
            stored_buffer=(int(exe["buffered_flushed_seq"]), int(exe["buffered_seq"])),
        )

    # ---------------------------------------------------------------- reading state

    @property
    def namespace(self) -> str:
        return str(self.exe["namespace"])

    @property
    def workflow_id(self) -> str:
        return str(self.exe["workflow_id"])

    @property
    def run_id(self) -> str:
        return str(self.exe["run_id"])

    @property
    def running(self) -> bool:
        return bool(self.exe["status"] == "running")

    @property
    def wt_started(self) -> bool:
        return self.exe["wt_started_event_id"] is not None

    @property
    def wt_pending(self) -> bool:
        return self.exe["wt_scheduled_event_id"] is not None

    @property
    def wt_speculative(self) -> bool:
        """A workflow task scheduled for updates alone, kept out of history.

        See :mod:`store.update_tasks`: its events are not written until
        another event of the run is (:meth:`add_event` writes them first).
        """
        scheduled = self.exe["wt_scheduled_event_id"]
        return scheduled is not None and int(scheduled) >= int(self.exe["next_event_id"])

    def _materialize_speculative(self) -> None:
        """Write the speculative task's events: something else enters history."""
        for event_type, attributes in speculative_events(
            self.exe, self.suggest_continue_as_new_events
        ):
            self._append_event(event_type, attributes)

    async def cancel_request(self) -> dict[str, Any] | None:
        """The attributes of the first cancel request this run recorded, holds
        buffered or is writing (None: it was never asked to cancel)."""
        row = await self.conn.fetchrow(
            Q["cancel_request_of_run"], self.namespace, self.workflow_id, _uuid(self.run_id)
        )
        if row is not None:
            return {"reason": row["reason"]}
        kind = EventType.WORKFLOW_EXECUTION_CANCEL_REQUESTED.value
        pending = [(t, a) for t, a, _seq in self.exe["buffered_events"]]
        pending += [(t, a) for _id, t, a in self.events]
        return next((dict(a) for t, a in pending if t == kind), None)

    # ---------------------------------------------------------------- changing state

    def add_event(self, event_type: EventType, attributes: dict[str, Any]) -> int:
        if self.wt_speculative:
            self._materialize_speculative()
        return self._append_event(event_type, attributes)

    def _append_event(self, event_type: EventType, attributes: dict[str, Any]) -> int:
        event_id = int(self.exe["next_event_id"])
        self.events.append((event_id, event_type.value, attributes))
        self.exe["next_event_id"] = event_id + 1
        return event_id

    def add_input_event(self, event_type: EventType, attributes: dict[str, Any]) -> None:
        """An event from outside the workflow task (signal, activity result, timer).

        While a workflow task is started its events must stay contiguous
        (WorkflowTaskStarted is followed by its completion), so events that
        arrive then wait in the buffer and are written after the completion.
        A speculative task becomes an ordinary one first: the input must reach
        history even if that task then only rejects updates.
        """
        if self.wt_speculative:
            self._materialize_speculative()
        if self.wt_started and len(self.exe["buffered_events"]) >= self.buffered_inputs_max:
            # The worker holding the task gets TASK_NOT_FOUND when it completes;
            # the next task sees everything that waited.
            self.add_event(
                EventType.WORKFLOW_TASK_FAILED,
                {
                    "scheduled_event_id": self.exe["wt_scheduled_event_id"],
                    "started_event_id": self.exe["wt_started_event_id"],
                    "cause": "BufferedInputsOverflow",
                    "failure": {
                        "message": f"more than {self.buffered_inputs_max} inputs arrived while "
                        "the workflow task ran; it is retried with them",
                        "type": "BufferedInputsOverflow",
                    },
                    "identity": "server",
                },
            )
            self.clear_workflow_task()
            self.flush_buffered()
        if self.wt_started:
            seq = int(self.exe["buffered_seq"]) + 1
            self.exe["buffered_seq"] = seq
            self.exe["buffered_events"] = [
                *self.exe["buffered_events"],
                [event_type.value, attributes, seq],
            ]
            self.buffer_inserts.append(
                {"seq": seq, "event_type": event_type.value, "attributes": attributes}
            )
        else:
            self.add_event(event_type, attributes)

    def drop_buffered(self, keep: Any = None) -> None:
        """Forget buffered inputs: all, or those ``keep(event_type, attributes)`` refuses.

        Dropping some leaves their stored rows in place: the caller flushes
        (or closes the run) in the same write, which removes every row.
        """
        if keep is None:
            self.exe["buffered_events"] = []
            self.buffer_inserts = []
            self.exe["buffered_flushed_seq"] = self.exe["buffered_seq"]
            return
        kept = [b for b in self.exe["buffered_events"] if keep(b[0], b[1])]
        seqs = {b[2] for b in kept}
        self.exe["buffered_events"] = kept
        self.buffer_inserts = [b for b in self.buffer_inserts if b["seq"] in seqs]

    @property
    def _buffer_delete_upto(self) -> int:
        """Stored buffered rows this write removes: those with seq up to this (0: none)."""
        flushed_before, last_stored = self.stored_buffer
        flushed = int(self.exe["buffered_flushed_seq"])
        return flushed if last_stored > flushed_before and flushed > flushed_before else 0

    def flush_buffered(self) -> int:
        """Write the buffered inputs as events, in the order they arrived."""
        buffered = list(self.exe["buffered_events"])
        for event_type, attributes, _seq in buffered:
            self.add_event(EventType(event_type), attributes)
        # the rows go (every seq so far), and those of this write are never stored
        self.drop_buffered()
        return len(buffered)

    def seen_request(self, request_id: str | None, kind: str) -> None:
        """Record that this write acts on ``request_id`` (deduplicated from now on)."""
        if request_id:
            self.request_ids.append((request_id, kind))

    def add_task(self, kind: str, task_queue: str, ref: str | int, attempt: int = 1) -> None:
        self.tasks.append((kind, task_queue, str(ref), attempt))

    def add_timer(self, kind: str, ref: str | int, fire_at: datetime, attempt: int = 0) -> None:
        self.timers.append((kind, str(ref), attempt, fire_at))

    def delete_timers(self, kind: str, ref: str | int) -> None:
        # also one added earlier in this transaction (a timer started and
        # canceled by one workflow task): its row is not written yet
        self.timers = [t for t in self.timers if (t[0], t[1]) != (kind, str(ref))]
        self.timer_deletes.append((kind, str(ref)))

    def schedule_workflow_task(
        self, *, dispatch: bool = True, speculative: bool = False
    ) -> int | None:
        """Schedule a workflow task unless one is pending, the run is closed, paused
        (unpause schedules the one that waited) or a retry in its backoff (attempt
        0, store/workflow_retry.py). ``speculative``: for updates alone, unless
        this write adds events or the run's last task failed."""
        attempt = int(self.exe["wt_attempt"])
        if not self.running or self.wt_pending or self.exe["paused"] or not attempt:
            return None
        timeout = float(self.exe["task_timeout_s"])
        if speculative and not self.events and attempt == 1 and not self.exe["buffered_events"]:
            event_id = int(self.exe["next_event_id"])  # its id once written; not written yet
        else:
            event_id = self.add_event(
                EventType.WORKFLOW_TASK_SCHEDULED,
                {"task_queue": self.exe["task_queue"], "attempt": attempt, "timeout_s": timeout},
            )
        self.exe["wt_scheduled_event_id"] = event_id
        self.exe["wt_started_event_id"] = None
        self.scheduled_here = event_id
        if dispatch:
            sticky = self.exe.get("sticky_queue")
            if (
                sticky
                and self.ns.deployments
                and routing.workflow_task_tag(self.ns.deployments, self.exe)
                != routing.tag(self.exe.get("deployment"), self.exe.get("build_id"))
            ):
                # the task moves to another version: the caching worker is not it
                self.clear_sticky()
                sticky = None
            if sticky:
                # The worker that caches the run gets it first; if none of its
                # pollers takes it in time, it moves to the run's own queue.
                self.add_task("workflow", sticky, event_id, attempt)
                self.add_timer(
                    WT_STICKY,
                    event_id,
                    self.now + timedelta(seconds=float(self.exe["sticky_timeout_s"] or 5.0)),
                )
            else:
                self.add_task("workflow", self.exe["task_queue"], event_id, attempt)
        return event_id

    def clear_sticky(self) -> None:
        """Send the run's next workflow tasks to its own task queue."""
        self.exe["sticky_queue"] = None
        self.exe["sticky_timeout_s"] = None

    def set_versioning_override(self, override: Override | None) -> None:
        """Set (or clear) the run's versioning override.

        The worker caching the run may be of a version the override moves it
        off, and the row no longer says which (a pin rewrites ``build_id``):
        the next task goes to the run's own queue, where a worker of the
        version it routes to takes it at once, rather than to the sticky
        queue it would wait out the sticky timeout on.
        """
        routing.set_override(self.exe, override)
        self.versioning_changed = True
        self.clear_sticky()

    def start_workflow_task(self, identity: str, suggest_at: int) -> int:
        """Record that a poller took the scheduled workflow task."""
        assert self.wt_pending and not self.wt_started
        if self.wt_speculative:
            # not written: store.update_tasks.speculative_events() gives it to the worker
            event_id = int(self.exe["wt_scheduled_event_id"]) + 1
        else:
            history_length = int(self.exe["next_event_id"])  # counting the Started event itself
            event_id = self.add_event(
                EventType.WORKFLOW_TASK_STARTED,
                {
                    "scheduled_event_id": self.exe["wt_scheduled_event_id"],
                    "identity": identity,
                    "history_length": history_length,
                    "suggest_continue_as_new": suggest_can(self.exe, history_length, suggest_at),
                },
            )
        self.exe["wt_started_event_id"] = event_id
        self.started_here = True
        self.exe["wt_started_at"] = self.now
        self.exe["wt_identity"] = identity
        scheduled = self.exe["wt_scheduled_event_id"]
        if scheduled == self.scheduled_here:
            self.timers = [t for t in self.timers if t[0] != WT_STICKY]
        elif self.exe.get("sticky_queue"):
            self.delete_timers(WT_STICKY, scheduled)  # taken from the sticky queue in time
        self.add_timer(
            WT_TIMEOUT,
            self.exe["wt_scheduled_event_id"],
            self.now + timedelta(seconds=float(self.exe["task_timeout_s"])),
            attempt=event_id,
        )
        return event_id

    def clear_workflow_task(self) -> None:
        if self.exe["wt_scheduled_event_id"] is not None:
            self.delete_timers(WT_TIMEOUT, self.exe["wt_scheduled_event_id"])
        self.exe["wt_scheduled_event_id"] = None
        self.exe["wt_started_event_id"] = None
        self.exe["wt_started_at"] = None
        self.exe["wt_identity"] = None

    def close(self, event_type: EventType, attributes: dict[str, Any]) -> None:
        """Close the run with its closing event: drop everything pending that belonged to it."""
        self.add_event(event_type, attributes)
        status, result, failure = close_outcome(event_type.value, attributes)
        self.exe["status"] = status
        self.exe["close_time"] = self.now
        self.exe["result"] = result
        self.exe["failure"] = failure
        if self.fail_updates is None:
            # the write rejects the updates the run leaves open; a caller may
            # give its own reason (terminate, reset) after this
            self.fail_updates = {
                "message": f"workflow {status} before the update completed",
                "type": "WorkflowClosed",
            }
        self.drop_buffered()
        self.clear_workflow_task()
        if self.exe["paused"]:
            # A closed run is not paused: `Paused = true` finds what waits for
            # an unpause, and a pause that was still buffered behind the
            # closing task is dropped with it (its event is never written).
            # A continue-as-new carried the pause over before this.
            self.exe["paused"] = False
            self.exe["pause_info"] = None
            self.pause_changed = True
        self.notify_close = True

    # ---------------------------------------------------------------- writing

    async def write_txn(self) -> None:
        """Write every gathered change inside the caller's transaction (one round
        trip, :func:`store.run_write.write_run`).

        A run read by :meth:`read_unlocked` is written by this one call alone
        (its own transaction), checked against what was read.
        """
        await write_run(self)
        self.written = True

    def insert_activity(self, row: dict[str, Any]) -> None:
        self.activity_inserts.append(row)
