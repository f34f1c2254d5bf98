"""Pausing a workflow: by an operator, from its own code, or after failed tasks.

A pause is a ``WorkflowExecutionPaused`` event and the run's ``paused`` flag,
written in one transaction. While paused nothing is dispatched: no workflow
task is scheduled and no activity attempt gets a task (a poll that finds one
drops it). Signals, timer firings, cancel requests and the results of
attempts already running are recorded and wait; timeouts keep running;
terminate acts at once; updates are refused (``WORKFLOW_PAUSED``). A pause
that comes while a workflow task runs waits in the run's buffer, so that the
task's commands are recorded before it. Unpause records
``WorkflowExecutionUnpaused`` and dispatches what waited: one workflow task
(it sees everything recorded meanwhile, in order) and the activity attempts
that are due.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg

from store.context import Store
from store.deployments import require_queue, require_version, reroute, set_override
from store.errors import InvalidArgument
from store.mutable_state import RunTxn
from store.run_lock import keep_request_id, lock_for_request, run_acted_on
from store.sql import QUERIES as Q
from versioning import routing
from versioning.rules import Override, OverrideKind, Version, VersioningError
from worker import wire
from worker.wire import EventType

#: Events an operator (or the server) adds that workflow code does not see:
#: a run may close with them still buffered.
OPERATOR_EVENTS = frozenset(
    {
        EventType.WORKFLOW_EXECUTION_PAUSED.value,
        EventType.WORKFLOW_EXECUTION_UNPAUSED.value,
        EventType.WORKFLOW_EXECUTION_OPTIONS_UPDATED.value,
    }
)

#: The most of a failure's stack trace a pause reason carries.
STACK_IN_REASON = 1500


def pause_run(
    rt: RunTxn,
    *,
    reason: str,
    identity: str,
    request_id: str | None,
    source: str,
    completed_event_id: int | None = None,
) -> None:
    """Pause the run in ``rt`` (its write records it)."""
    attrs: dict[str, Any] = {
        "reason": reason,
        "identity": identity,
        "request_id": request_id,
        "source": source,
    }
    if completed_event_id is not None:
        # the workflow's own command: recorded among its task's command events
        attrs["workflow_task_completed_event_id"] = completed_event_id
        rt.add_event(EventType.WORKFLOW_EXECUTION_PAUSED, attrs)
    else:
        rt.add_input_event(EventType.WORKFLOW_EXECUTION_PAUSED, attrs)
    if not (rt.exe["paused"] and rt.exe.get("pause_info")):
        # A run paused already (an operator's pause that came while the task
        # that commands this one ran) keeps the first pause's reason and time;
        # the history holds both.
        rt.exe["pause_info"] = {
            "reason": reason,
            "identity": identity,
            "source": source,
            "since": rt.now.isoformat(),
            "request_id": request_id,
        }
    rt.exe["paused"] = True
    rt.pause_changed = True
    rt.seen_request(request_id, "pause")


def carry_pause(old: RunTxn, new: RunTxn) -> None:
    """A pause that came while the run continued-as-new pauses the new run."""
    if not old.exe["paused"]:
        return
    info = old.exe.get("pause_info") or {}
    new.add_event(
        EventType.WORKFLOW_EXECUTION_PAUSED,
        {
            "reason": info.get("reason", ""),
            "identity": info.get("identity", ""),
            "request_id": info.get("request_id"),
            "source": info.get("source", "operator"),
            "continued_from_run_id": old.run_id,
        },
    )
    new.exe["paused"] = True
    new.exe["pause_info"] = {**info, "since": info.get("since") or new.now.isoformat()}


def failure_reason(failure: wire.Failure, attempts: int) -> str:
    """A pause reason naming the error that kept a workflow task failing.

    No longer than an operator's reason may be: a message of megabytes would
    sit in every describe and list of the run (the task's failure keeps it
    whole), so a long one is cut to the room the stack's end leaves it.
    """
    stack = (failure.stack_trace or "")[-STACK_IN_REASON:]
    head = f"workflow task failed {attempts} times in a row: {failure.type or 'Error'}: "
    room = wire.MAX_DESCRIPTION_CHARS - len(head) - (len(stack) + 1 if stack else 0)
    message = failure.message
    if len(message) > room:
        message = message[: max(room - 1, 0)] + "…"
    reason = head + message
    return (f"{reason}\n{stack}" if stack else reason)[: wire.MAX_DESCRIPTION_CHARS]


def _view(rt: RunTxn, changed: bool) -> dict[str, Any]:
    view: dict[str, Any] = {
        "workflow_id": rt.workflow_id,
        "run_id": rt.run_id,
        "paused": bool(rt.exe["paused"]),
        "changed": changed,
        "pause": rt.exe.get("pause_info") if rt.exe["paused"] else None,
    }
    if rt.exe.get("deployment"):
        # where its next workflow task goes: the build an unpause moved it to
        view["next_task_version"] = routing.workflow_task_tag(rt.ns.deployments, rt.exe)
    return view


async def _set_paused(
    store: Store,
    namespace: str,
    workflow_id: str,
    req: wire.PauseRequest,
    paused: bool,
    change: Callable[[RunTxn], Awaitable[None]],
    check: Callable[[RunTxn], object] | None = None,
) -> dict[str, Any]:
    """Pause or unpause (``paused``) the run with ``change``, unless it is so
    already; ``check`` refuses a bad request either way, before anything is
    written."""

    async def txn(conn: asyncpg.Connection) -> dict[str, Any]:
        rt = await lock_for_request(
            store,
            conn,
            namespace,
            workflow_id,
            req.run_id,
            req.request_id,
            kind="pause" if paused else "unpause",
        )
        if isinstance(rt, str):
            # A retried request answers as a repeated pause does: the run it
            # acted on, whether that run is paused now, and why.
            done = await run_acted_on(store, conn, namespace, workflow_id, rt)
            if paused:
                done = await _carried_to(store, conn, done, req.request_id)
            return _view(done, False)
        if check is not None:
            check(rt)
        if bool(rt.exe["paused"]) == paused:
            # nothing to do, nor for its retry after an unpause (or a pause)
            await keep_request_id(rt, req.request_id, "pause" if paused else "unpause")
            return _view(rt, False)
        await change(rt)
        await rt.write_txn()
        if rt.versioning_changed:
            # an unpause onto another build: tasks that waited (for a build
            # with no poller) go there too, not left for the old build to take
            await reroute(conn, namespace, rt.ns.deployments, run=rt)
        return _view(rt, True)

    return await store.txn(txn)


async def _carried_to(
    store: Store, conn: asyncpg.Connection, done: RunTxn, request_id: str | None
) -> RunTxn:
    """The run a pause made by ``request_id`` holds now: a pause that came as
    ``done`` continued-as-new is on the new run (:func:`carry_pause`), and a
    retry answers with that run, paused, as the first answer said."""
    while not done.running and done.exe.get("continued_to_run_id"):
        nxt = await run_acted_on(
            store, conn, done.namespace, done.workflow_id, str(done.exe["continued_to_run_id"])
        )
        if (nxt.exe.get("pause_info") or {}).get("request_id") != request_id:
            break
        done = nxt
    return done


async def pause_workflow(
    store: Store, namespace: str, workflow_id: str, req: wire.PauseRequest
) -> dict[str, Any]:
    if req.to_current or req.build_id:
        raise InvalidArgument("--to-current and --build-id go with unpause, not pause")

    async def pause(rt: RunTxn) -> None:
        pause_run(
            rt,
            reason=req.reason,
            identity=req.identity,
            request_id=req.request_id,
            source="operator",
        )

    return await _set_paused(store, namespace, workflow_id, req, True, pause)


async def unpause_workflow(
    store: Store, namespace: str, workflow_id: str, req: wire.PauseRequest
) -> dict[str, Any]:
    if req.to_current and req.build_id:
        raise InvalidArgument("give --to-current or --build-id, not both")

    def check(rt: RunTxn) -> None:
        # a build that does not exist is refused even when the run is not
        # paused: "changed: false" would read as if the build were fine
        if req.to_current or req.build_id:
            _move_target(rt, req)

    async def unpause(rt: RunTxn) -> None:
        if req.to_current or req.build_id:
            _move(rt, req)
        rt.add_input_event(
            EventType.WORKFLOW_EXECUTION_UNPAUSED,
            {"reason": req.reason, "identity": req.identity, "request_id": req.request_id},
        )
        rt.exe["paused"] = False
        rt.exe["pause_info"] = None
        rt.pause_changed = True
        # An unpause is someone's decision to try again: the failed tasks
        # before it do not count toward the worker's pause-after-N limit (nor
        # the retry backoff), so a run unpaused while its bug still runs fails
        # N more tasks before it pauses again, not one. A retried run waiting
        # out its backoff (attempt 0) keeps waiting: the backoff is the
        # policy's, not a count of failed tasks.
        if int(rt.exe["wt_attempt"]) > 1:
            rt.exe["wt_attempt"] = 1
        rt.seen_request(req.request_id, "unpause")
        await redispatch(rt)

    return await _set_paused(store, namespace, workflow_id, req, False, unpause, check)


def _move_target(rt: RunTxn, req: wire.PauseRequest) -> tuple[str, str]:
    """The deployment and build an unpause moves the run to, or a refusal."""
    deps = rt.ns.deployments
    dep = routing.run_deployment(deps, rt.exe)
    if dep is None:
        raise InvalidArgument(
            f"workflow {rt.workflow_id!r} is in no worker deployment: there is no build to move "
            "it to"
        )
    build = routing.state_of(deps, dep).current if req.to_current else req.build_id
    if build is None:
        raise InvalidArgument(f"deployment {dep!r} has no current build to move the workflow to")
    # A pin to a build no worker of the deployment ever polled (or one whose
    # name no worker could declare) would hold the run forever, unpaused in
    # name only: refused, as set-current refuses it.
    try:
        Version(dep, build)
    except VersioningError as exc:
        raise InvalidArgument(str(exc)) from None
    require_version(deps, dep, build)
    # and one whose workers do not poll the run's task queue: its tasks would
    # wait there for ever, as an override onto it would (update-versioning)
    require_queue(deps, dep, build, rt.exe["task_queue"])
    return dep, build


def _move(rt: RunTxn, req: wire.PauseRequest) -> None:
    """Pin the run to its deployment's current build, or to ``req.build_id``."""
    dep, build = _move_target(rt, req)
    rt.exe["deployment"] = dep
    set_override(rt, Override(OverrideKind.PINNED, build))
    rt.add_input_event(
        EventType.WORKFLOW_EXECUTION_OPTIONS_UPDATED,
        {
            "versioning_override": {"kind": "pinned", "deployment": dep, "build_id": build},
            "reason": f"unpause: {req.reason}" if req.reason else "unpause",
            "identity": req.identity,
            "request_id": None,
        },
    )


async def redispatch(rt: RunTxn) -> None:
    """What waited while the run was paused gets its task: a workflow task (the
    one scheduled, or a new one that delivers what was recorded meanwhile), and
    every activity attempt that is due."""
    # (a task in flight schedules what follows when it completes)
    if rt.wt_pending and not rt.wt_started:
        # a poll may have dropped its task while the run was paused
        rt.add_task(
            "workflow", rt.exe["task_queue"], rt.exe["wt_scheduled_event_id"], rt.exe["wt_attempt"]
        )
    elif not rt.wt_pending:
        rt.schedule_workflow_task()
    for a in await rt.conn.fetch(
        Q["dispatchable_activities"], rt.namespace, rt.workflow_id, uuid.UUID(rt.run_id), rt.now
    ):
        rt.add_task("activity", a["task_queue"], a["scheduled_event_id"], a["attempt"])
