"""Task queues as an operator sees them: the workers polling one, and its backlog.

Each poll of a task queue (not of a worker's sticky queue) is recorded in the
region's ``version_pollers`` under the empty deployment, with its kind
(``workflow`` or ``activity``) in place of a build id, at most once every
10 s per worker and server process, so a poll costs no write. A versioned
worker has its version's row besides, which the description names.
"""

from __future__ import annotations

from fastapi import FastAPI, Path
from starlette.responses import Response

from store.api_guard import JSON
from store.context import Store
from store.deployments import POLLER_LIVE_S, _due
from store.namespaces import require_active_here
from store.sql import QUERIES as Q
from worker import wire
from worker.wire.common import TASK_QUEUE_MAX_CHARS

__all__ = ["POLLERS_LISTED_S", "add_task_queue_routes", "describe_task_queue", "touch_queue_poller"]

#: A worker is listed while its last poll of the queue is this recent (as
#: Temporal's DescribeTaskQueue lists the pollers of the last minutes).
POLLERS_LISTED_S = 300.0

#: (namespace, queue, kind, worker) keys each server process remembers the
#: last write of, so that a worker's polls write at most every 10 s.
POLLERS_REMEMBERED = 100_000

#: The kinds of task a queue holds for pollers, in the order described.
KINDS = ("workflow", "activity")


async def touch_queue_poller(
    store: Store, namespace: str, kind: str, req: wire.PollRequest
) -> None:
    """Record that ``req.identity`` polls ``req.task_queue`` for ``kind`` tasks."""
    if req.sticky:
        return  # a worker's own queue: its polls of the task queue name it
    key = (namespace, "", kind, req.task_queue, req.identity)
    if not _due(store, key):
        return
    seen = store.poller_seen
    if len(seen) > POLLERS_REMEMBERED:
        # workers come and go under new identities: the oldest one forgotten
        # only costs its next poll a write
        del seen[next(iter(seen))]
    async with store.pool.acquire() as conn:
        await conn.execute(Q["touch_queue_poller"], namespace, kind, req.task_queue, req.identity)


def _iso(value: object) -> str | None:
    return None if value is None else value.isoformat()  # type: ignore[attr-defined]


async def describe_task_queue(store: Store, namespace: str, task_queue: str) -> dict[str, object]:
    """The workers that polled ``task_queue`` lately and what waits on it."""
    await require_active_here(store, namespace)
    async with store.pool.acquire() as conn:
        rows = await conn.fetch(
            Q["pollers_of_queue"], namespace, task_queue, POLLER_LIVE_S, POLLERS_LISTED_S
        )
        waiting = {
            r["kind"]: r for r in await conn.fetch(Q["backlog_of_queue"], namespace, task_queue)
        }
    pollers = [
        {
            "identity": r["identity"],
            "kind": r["kind"],
            "first_poll_time": _iso(r["first_seen"]),
            "last_poll_time": _iso(r["last_seen"]),
            # as Temporal's PollerInfo names it
            "last_access_time": _iso(r["last_seen"]),
            "live": bool(r["live"]),
            "stopped_at": _iso(r["stopped_at"]),
            "deployment": r["deployment"],
            "build_id": r["build_id"],
        }
        for r in rows
    ]
    backlog = {
        kind: {
            "count": int(waiting[kind]["n"]) if kind in waiting else 0,
            "oldest_age_s": (
                round(max(float(waiting[kind]["oldest_s"]), 0.0), 3) if kind in waiting else None
            ),
        }
        for kind in KINDS
    }
    return {
        "namespace": namespace,
        "task_queue": task_queue,
        "region": store.region,
        "pollers": pollers,
        "backlog": backlog,
    }


def add_task_queue_routes(app: FastAPI, store: Store, prefix: str) -> None:
    ns_path = f"{prefix}/namespaces/{{namespace}}"

    @app.get(
        f"{ns_path}/task-queues/{{task_queue:anytext}}", response_model=wire.TaskQueueDescription
    )
    async def describe(
        namespace: str,
        task_queue: str = Path(min_length=1, max_length=TASK_QUEUE_MAX_CHARS),
    ) -> Response:
        """The workers polling a task queue (versioned or not) and its backlog."""
        return JSON(await describe_task_queue(store, namespace, task_queue))
