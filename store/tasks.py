"""Task dispatch: polls, completions and heartbeats of workflow and activity tasks.

Polls take a task row with ``FOR UPDATE SKIP LOCKED`` and wait on
LISTEN/NOTIFY when the queue is empty; while one waits, a start in this
process may hand it the run's first task (:mod:`store.matching`).
Completions check that the task token still names the open task and write
everything the completion causes in one write of the run: read without a
lock and checked as it is written, or under the run's lock.
"""

from __future__ import annotations

import contextlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator, Mapping
from datetime import timedelta
from typing import Any, TypeVar

import asyncpg

from store.client_watch import ClientWatch
from store.commands import apply_commands, retries_beside, writes_only_the_run
from store.context import Store
from store.deployments import register_poller
from store.errors import StaleRun, StoreError, TaskNotFound, WorkflowNotFound
from store.mutable_state import (
    WT_RETRY,
    RunTxn,
    utcnow,
)
from store.namespaces import require_active_here
from store.notify import wait_event
from store.pause import failure_reason, pause_run
from store.retry import workflow_task_retry_delay
from store.sql import QUERIES as Q
from store.task_queues import touch_queue_poller
from store.task_token import TaskToken
from store.task_views import build_workflow_task
from store.workflows import terminate_txn
from versioning import routing
from worker import wire
from worker.wire import EventType

log = logging.getLogger("baton.tasks")

T = TypeVar("T")

STALE = object()  # a task row whose task is no longer open; take the next one
#: Most queues a process remembers as found empty (Notifier.found_empty).
EMPTY_QUEUES_MAX = 4096
#: How long a poll arriving at a queue found empty trusts that, with no
#: notification of the queue since, and goes to sleep without reading it. A
#: take that another process began and never committed (it was killed) leaves
#: its task in the table unannounced; past this a poll reads the table again.
TRUST_EMPTY_S = 1.0


#: Whether a poll's client went away (a :class:`ClientWatch` also wakes the poll).
Disconnected = Callable[[], Awaitable[bool]]


async def never_disconnected() -> bool:
    return False


def poller_version(req: wire.PollRequest) -> str | None:
    """The version whose tasks this poller takes (None: unversioned tasks only)."""
    return routing.tag(req.deployment, req.build_id)


#: Workers of :func:`hurry_retries_for_new_worker` a process remembers.
WORKERS_REMEMBERED = 10_000


async def hurry_retries_for_new_worker(store: Store, namespace: str, req: wire.PollRequest) -> None:
    """A worker this process has not seen poll ``req.task_queue`` before: the
    workflow task retries of the queue's runs that wait out a backoff are due
    now, not when the backoff ends.

    Fixing a workflow's bug means starting a worker with the fix. Its runs go
    on at once instead of up to ``workflow_task_retry_max_s`` later, however
    long the bug stayed. A worker is known by its identity and the instance id
    each SDK Worker object draws, so one started again under a fixed identity
    is new too.
    """
    if req.sticky:
        return
    key = (namespace, req.task_queue, req.identity, req.instance)
    seen = store.workers_seen
    if key in seen:
        return
    seen[key] = None
    if len(seen) > WORKERS_REMEMBERED:
        del seen[next(iter(seen))]
    async with store.pool.acquire() as conn:
        moved = await conn.fetchval(
            Q["hurry_workflow_task_retries"], namespace, req.task_queue, utcnow()
        )
        if moved:
            log.info(
                "worker %s is new to %s/%s: %d workflow task retries are due now",
                req.identity,
                namespace,
                req.task_queue,
                moved,
            )
            await conn.execute(Q["notify_timers"])


async def long_poll(
    store: Store,
    namespace: str,
    kind: str,
    req: wire.PollRequest,
    take: Any,
    disconnected: Disconnected,
) -> Any:
    await require_active_here(store, namespace)
    await register_poller(store, namespace, req)
    await touch_queue_poller(store, namespace, kind, req)
    if kind == "workflow":
        await hurry_retries_for_new_worker(store, namespace, req)
    epoch = store.notifier.namespace_epoch
    deadline = utcnow() + timedelta(seconds=req.wait_s)
    tag = poller_version(req)
    key = f"{namespace}/{kind}{'' if tag is None else '@' + tag}/{req.task_queue}"
    async with store.notifier.subscribe("baton_tasks_v1", key) as ev:
        if isinstance(disconnected, ClientWatch):
            # a client that goes away while this poll sleeps ends it at once:
            # asleep, it is offered to starts (store.matching)
            disconnected.wake_when_gone(ev)
        arrived = True
        while True:
            ev.clear()
            if store.notifier.namespace_epoch != epoch:
                # A namespace changed (failover): answer NAMESPACE_NOT_ACTIVE now
                # if this region no longer runs it, so the worker follows.
                epoch = store.notifier.namespace_epoch
                await require_active_here(store, namespace)
            # A poller that went away (its worker was killed) must not take a
            # task: the task would sit unseen until its timeout. Pass its
            # wake-up on to another poller.
            if await disconnected():
                store.notifier.wake_one("baton_tasks_v1", key, skip=ev)
                return None
            got = await _take_from_table(store, namespace, kind, req, key, take, arrived)
            arrived = False
            if got is not None:
                task, more = got
                if more or ev.is_set():
                    # Notifications of one transaction collapse into one, and
                    # one that came while this poller took its task woke it for
                    # nothing: the next poller finds what is left.
                    store.notifier.wake_one("baton_tasks_v1", key, skip=ev)
                return task
            remaining = (deadline - utcnow()).total_seconds()
            if store.notifier.draining or remaining <= 0:
                return None
            # asleep, a writer of this process may hand this poller its task
            # (store.matching); awake, it takes tasks from the table
            with store.matcher.idle(key, req.identity, ev) as waiter:
                woke = await wait_event(ev, remaining)
                handed = await store.matcher.outcome(waiter)
            if handed is not None:
                return handed
            if not woke:
                return None


async def _take_from_table(
    store: Store,
    namespace: str,
    kind: str,
    req: wire.PollRequest,
    key: str,
    take: Any,
    arrived: bool,
) -> Any:
    """``take``'s (task, more) from the queue's table, or None if it holds
    none. A take is a transaction (its delete commits with the run's write):
    BEGIN, the take, COMMIT.

    A queue this process last found empty (the rule at low rates, and with
    more pollers than tasks: tasks come handed over in memory, or to the poll
    their notification wakes) is not taken from blindly:

    * a poll that just ``arrived`` (not woken) and will wait a second or more
      goes to sleep without reading it if it was found empty under
      ``TRUST_EMPTY_S`` ago (a poll that waits less reads it: a task committed
      just before it may not be announced here yet): every task
      committed since was announced, and its notification either woke a
      sleeping poll of this process, which reads the table after it, or,
      finding every poll awake, dropped the mark (Notifier.wake_one);
    * otherwise it is first asked whether it holds a task, one round trip,
      and taken from only if it does.

    The answer is read like the take's, after the poll subscribed: a task
    committed later notifies the poll either way."""
    empty = store.notifier.found_empty
    noticed = store.notifier.task_noticed
    found = empty.get(key)
    if found is not None:
        if (
            arrived
            and req.wait_s >= 1
            and time.monotonic() - found < TRUST_EMPTY_S
            and noticed.get(key, -1.0) < found
        ):
            return None
        checked = time.monotonic()
        async with store.pool.acquire() as conn:
            waiting = await conn.fetchval(
                Q["queue_has_task"],
                namespace,
                req.task_queue,
                kind == "activity",
                poller_version(req),
            )
        if not waiting:
            _found_empty(empty, noticed, key, checked)
            return None
    began = time.monotonic()
    while True:
        got = await store.txn(take)
        if got is not STALE:
            break
    if got is not None:
        empty.pop(key, None)
    else:
        _found_empty(empty, noticed, key, began)
    return got


def _found_empty(empty: dict[str, float], noticed: dict[str, float], key: str, when: float) -> None:
    """Mark ``key`` found empty by a read that began at ``when``, unless a task
    of it was announced since: that task may have committed after the read's
    snapshot, and its notification, finding every poll awake, already dropped
    the mark this would set again (the next polls then trusted it and slept
    beside the task until their long-poll ended)."""
    if noticed.get(key, -1.0) >= when:
        empty.pop(key, None)
        return
    if len(empty) >= EMPTY_QUEUES_MAX:
        empty.clear()  # sticky queues come and go: forget them all now and then
    empty[key] = when


# --------------------------------------------------------------------------- workflow tasks


async def lock_for_task(store: Store, conn: asyncpg.Connection, tok: TaskToken) -> RunTxn:
    with _task_run_gone():
        rt = await RunTxn.lock(
            conn,
            tok.namespace,
            tok.workflow_id,
            tok.run_id,
            region=store.region,
            region_urls=store.region_urls,
        )
    tok.check_version(rt.ns)
    return rt


async def read_for_task(
    store: Store, conn: asyncpg.Connection, tok: TaskToken, *, activity: int | None = None
) -> tuple[RunTxn, dict[str, Any] | None]:
    """:func:`lock_for_task` without a lock: the write is checked instead.

    A run this process remembers is taken without a read, unless the token
    does not fit its namespace as remembered: then it is read.
    """
    while True:
        with _task_run_gone():
            rt, act = await RunTxn.read_unlocked(
                conn,
                tok.namespace,
                tok.workflow_id,
                tok.run_id,
                region=store.region,
                region_urls=store.region_urls,
                activity=activity,
                cache=store.run_cache,
            )
        if rt.cached is None:
            tok.check_version(rt.ns)
            return rt, act
        try:
            tok.check_version(rt.ns)
        except StoreError:
            store.run_cache.forget((tok.namespace, tok.workflow_id, tok.run_id))
            continue
        return rt, act


async def act_on_task_run(
    store: Store,
    conn: asyncpg.Connection,
    tok: TaskToken,
    fn: Callable[[RunTxn, dict[str, Any] | None], Awaitable[T]],
    *,
    activity: int | None = None,
) -> T:
    """``fn`` on the task's run read by :func:`read_for_task` (or remembered).

    A remembered run may be behind its row (another process wrote it): what
    ``fn`` refuses before it writes (the task is no longer open, say) is then
    not the answer, and the run is read and ``fn`` tried again.
    """
    rt, act = await read_for_task(store, conn, tok, activity=activity)
    if rt.cached is None:
        return await fn(rt, act)
    try:
        return await fn(rt, act)
    except StaleRun:
        raise
    except StoreError:
        if rt.written:
            raise
        store.run_cache.forget((tok.namespace, tok.workflow_id, tok.run_id))
        raise StaleRun(f"run {tok.run_id} may have changed since this server wrote it") from None


@contextlib.contextmanager
def _task_run_gone() -> Iterator[None]:
    try:
        yield
    except WorkflowNotFound:
        raise TaskNotFound("the task's workflow run no longer exists") from None


async def poll_workflow_task(
    store: Store,
    namespace: str,
    req: wire.PollRequest,
    disconnected: Disconnected = never_disconnected,
) -> dict[str, Any] | None:
    taken: list[RunTxn] = []  # the run this poll's committed take started a task of

    async def take(conn: asyncpg.Connection) -> Any:
        taken.clear()
        row = await conn.fetchrow(
            Q["take_workflow_task"], namespace, req.task_queue, poller_version(req)
        )
        if row is None:
            return None
        queued = {k[2:]: v for k, v in row.items() if k.startswith("t_")}
        if queued["kind"] == "query":
            query = await _query_task(conn, queued)
            return query if query is STALE else (query, queued["more"])
        if row["ns_regions"] is None:
            # the run (or its namespace) is gone: the lock names what is missing
            rt = await RunTxn.lock(
                conn,
                namespace,
                queued["workflow_id"],
                str(queued["run_id"]),
                region=store.region,
                region_urls=store.region_urls,
            )
        else:
            rt = await RunTxn.from_locked_row(
                conn,
                namespace,
                {k: v for k, v in row.items() if not k.startswith("t_")},
                region=store.region,
                region_urls=store.region_urls,
            )
        if (
            not rt.running
            or rt.exe["paused"]
            or rt.wt_started
            or str(rt.exe["wt_scheduled_event_id"]) != queued["ref"]
        ):
            return STALE
        if rt.ns.deployments and routing.workflow_task_tag(
            rt.ns.deployments, rt.exe
        ) != poller_version(req):
            # An override moved the run to another build while this take held
            # its row (the override's re-tag skips rows being taken): the task
            # goes to the run's own queue, for the build it routes to now.
            rt.clear_sticky()
            rt.add_task("workflow", rt.exe["task_queue"], queued["ref"], int(rt.exe["wt_attempt"]))
            await rt.write_txn()
            return STALE
        rt.start_workflow_task(req.identity, store.config.suggest_continue_as_new_events)
        # The write keeps the run as it leaves it, remembered after the commit
        # below: it must stay the last change of the run in this transaction
        # (a later one would keep the xmin and go unseen).
        rt.cache = store.run_cache
        await rt.write_txn()
        taken.append(rt)
        return await build_workflow_task(conn, rt), queued["more"]

    task = await long_poll(store, namespace, "workflow", req, take, disconnected)
    entry = taken[0].after_commit if task is not None and taken else None
    if entry is not None:
        # committed: the task's completion need not read the run
        rt = taken[0]
        store.run_cache.remember((rt.namespace, rt.workflow_id, rt.run_id), entry)
    return task  # type: ignore[no-any-return]


async def _query_task(conn: asyncpg.Connection, row: Mapping[str, Any]) -> Any:
    q = await conn.fetchrow(Q["get_query"], uuid.UUID(row["ref"]))
    if q is None or q["state"] != "pending":
        return STALE
    exe = await conn.fetchrow(Q["get_execution"], q["namespace"], q["workflow_id"], q["run_id"])
    if exe is None:
        return STALE
    token = TaskToken("query", q["namespace"], q["workflow_id"], str(q["run_id"]), str(q["id"]), 0)
    return {
        "task_token": token.encode(),
        "namespace": q["namespace"],
        "workflow_id": q["workflow_id"],
        "run_id": str(q["run_id"]),
        "workflow_type": exe["workflow_type"],
        "task_queue": exe["task_queue"],
        "attempt": 1,
        "started_event_id": exe["last_completed_wt_started"],
        "previous_started_event_id": exe["last_completed_wt_started"],
        "previous_started_event_version": await conn.fetchval(
            Q["event_version"],
            q["namespace"],
            q["workflow_id"],
            q["run_id"],
            exe["last_completed_wt_started"],
        ),
        "history_length": exe["next_event_id"] - 1,
        "events": [],
        "updates": [],
        "query": {"query_id": str(q["id"]), "name": q["name"], "input": q["input"]},
    }


async def complete_workflow_task(
    store: Store, namespace: str, req: wire.RespondWorkflowTaskCompleted
) -> dict[str, Any]:
    tok = TaskToken.decode(req.task_token, kind="wf", namespace=namespace)

    async def complete(rt: RunTxn) -> dict[str, Any]:
        _check_open_workflow_task(rt, tok)
        over = _history_over_limit(store, rt)
        if over is not None:
            # As Temporal does: a run whose history outgrew the limit ends here,
            # before it grows further (continue-as-new keeps runs under it).
            terminate_txn(rt, over, "server")
            await rt.write_txn()
            return {"activity_tasks": [], "workflow_task": None}
        return await apply_commands(store, rt, req)

    async def txn(conn: asyncpg.Connection) -> dict[str, Any]:
        return await complete(await lock_for_task(store, conn, tok))

    async def unlocked(conn: asyncpg.Connection) -> dict[str, Any] | None:
        async def on_run(rt: RunTxn, _act: object) -> dict[str, Any] | None:
            if rt.exe["pending_updates"] or retries_beside(rt.exe, req.commands):
                # the updates, or the retry's new run, are written beside the run: lock it
                return None
            return await complete(rt)

        return await act_on_task_run(store, conn, tok, on_run)

    if writes_only_the_run(req.commands):
        # the common completion: one read and one checked write, no transaction
        return await store.checked_write(unlocked, txn)
    return await store.txn(txn)


def _history_over_limit(store: Store, rt: RunTxn) -> str | None:
    """Why the run's history is past a limit (None if it is not)."""
    length = int(rt.exe["next_event_id"]) - 1
    size = int(rt.exe["history_size_bytes"])
    if length > store.config.history_events_max:
        return (
            f"history length {length} is over the limit of {store.config.history_events_max} "
            "events: a long-lived workflow must continue-as-new"
        )
    if size > store.config.history_bytes_max:
        return (
            f"history size {size} bytes is over the limit of {store.config.history_bytes_max} "
            "bytes: a long-lived workflow must continue-as-new"
        )
    return None


def _check_open_workflow_task(rt: RunTxn, tok: TaskToken) -> None:
    if (
        not rt.running
        or str(rt.exe["wt_scheduled_event_id"]) != tok.ref
        or rt.exe["wt_started_event_id"] != tok.attempt
    ):
        raise TaskNotFound(
            f"workflow task {tok.ref} of {rt.workflow_id!r} is no longer open (it timed out, "
            "was failed, or the run closed); the worker should drop it"
        )


async def fail_workflow_task(
    store: Store, namespace: str, req: wire.RespondWorkflowTaskFailed
) -> None:
    tok = TaskToken.decode(req.task_token, kind="wf", namespace=namespace)

    async def txn(conn: asyncpg.Connection) -> None:
        rt = await lock_for_task(store, conn, tok)
        _check_open_workflow_task(rt, tok)
        rt.add_event(
            EventType.WORKFLOW_TASK_FAILED,
            {
                "scheduled_event_id": rt.exe["wt_scheduled_event_id"],
                "started_event_id": rt.exe["wt_started_event_id"],
                "cause": req.cause,
                "failure": req.failure.model_dump(),
                "identity": req.identity,
                **_ran_on(req.deployment, req.build_id),
            },
        )
        rt.clear_workflow_task()
        rt.clear_sticky()  # the worker dropped the run; any worker replays it
        failed_attempts = int(rt.exe["wt_attempt"])
        rt.exe["wt_attempt"] = attempt = failed_attempts + 1
        rt.flush_buffered()
        if req.pause and not rt.exe["paused"]:
            # the worker's limit of failed tasks in a row: someone looks first
            pause_run(
                rt,
                reason=failure_reason(req.failure, failed_attempts),
                identity=req.identity,
                request_id=None,
                source="failure",
            )
        delay = workflow_task_retry_delay(attempt, store.config.workflow_task_retry_max_s)
        if delay <= 0:
            rt.schedule_workflow_task()  # not while paused: unpause schedules it
        elif not rt.exe["paused"]:
            rt.add_timer(WT_RETRY, "retry", rt.now + timedelta(seconds=delay), attempt=attempt)
        await rt.write_txn()

    await store.txn(txn)


async def respond_query(store: Store, namespace: str, req: wire.RespondQueryTask) -> None:
    tok = TaskToken.decode(req.task_token, kind="query", namespace=namespace)

    async def txn(conn: asyncpg.Connection) -> None:
        got = await conn.fetchval(
            Q["answer_query"],
            uuid.UUID(tok.ref),
            req.result.model_dump() if req.result else None,
            req.failure.model_dump() if req.failure else None,
        )
        if got is None:
            raise TaskNotFound("the query is no longer waiting for an answer (it timed out)")
        await conn.execute(Q["notify_query"], tok.ref)

    await store.txn(txn)


def _ran_on(deployment: str | None, build_id: str | None) -> dict[str, Any]:
    """The version a workflow task ran on, as its completed or failed event records it."""
    version = routing.tag(deployment, build_id)
    return {} if version is None else {"worker_version": version}
