"""The system worker of a server process: runs Baton's own workflows (batch jobs, schedules).

Every server process runs one. Every couple of seconds it looks for the
namespaces active in its region that have an open system workflow, and keeps
an SDK worker polling the ``baton.system`` task queue of each (through the
region's own HTTP API, like any worker); a namespace whose system workflows
are all closed, or that moved to another region, gets its worker stopped.
Several server processes poll side by side; the task dispatch hands each task
to one of them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from scheduler.activities import make_schedule_activities
from scheduler.workflow import WORKFLOW_TYPE as SCHEDULE_TYPE
from scheduler.workflow import ScheduleWorkflow
from store.batch.job import TASK_QUEUE, WORKFLOW_TYPE, BatchJob, make_page_activity
from store.context import Store
from store.sql import QUERIES as Q
from worker import Client, Worker

log = logging.getLogger("baton.system_worker")

#: How often the set of namespaces to poll is looked at again.
REFRESH_S = 2.0
#: How long stopping a namespace's worker may take.
STOP_S = 5.0
SYSTEM_TYPES = [WORKFLOW_TYPE, SCHEDULE_TYPE]


class _NamespaceWorker:
    def __init__(self, store: Store, url: str, namespace: str, region: str):
        self.store, self.url, self.namespace, self.region = store, url, namespace, region
        self.worker: Worker | None = None
        self.task: asyncio.Task[None] = asyncio.create_task(
            self.run(), name=f"baton-system-{namespace}"
        )

    async def run(self) -> None:
        # a short retry window: a server that stops must not wait a minute
        # for its own API to answer the worker's last calls
        client = await Client.connect(
            self.url,
            namespace=self.namespace,
            identity=f"baton-system@{self.region}",
            retry_for_s=STOP_S,
            # This region's work only: after a failover the namespace's tasks
            # are the new region's system worker's. Following there, this one
            # could take a task or an activity in the seconds before it is
            # stopped, and stopping could cut it off: the activity would wait
            # out its whole timeout.
            follow_failover=False,
            # its own server's URL, which may not listen yet when this starts
            lazy=True,
        )
        async with client:
            self.worker = Worker(
                client,
                task_queue=TASK_QUEUE,
                workflows=[BatchJob, ScheduleWorkflow],
                activities=[
                    make_page_activity(client),
                    *make_schedule_activities(client, self.write_schedule_stats),
                ],
                workflow_pollers=1,
                activity_pollers=2,
                # every running schedule action holds a watch activity
                max_concurrent_activities=200,
                max_cached_workflows=50,
                graceful_shutdown_timeout=2.0,
            )
            await self.worker.run()

    async def write_schedule_stats(
        self, namespace: str, schedule_id: str, snap: dict[str, Any]
    ) -> None:
        async with self.store.pool.acquire() as conn:
            await conn.execute(
                Q["upsert_schedule_stats"],
                namespace,
                schedule_id,
                snap["counters"],
                snap["running_count"],
                snap["paused"],
            )

    async def stop(self) -> None:
        if self.worker is not None:
            # a page in flight is handed back (its retry resumes it elsewhere)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.worker.shutdown(), STOP_S)
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self.task


async def run_system_worker(store: Store) -> None:
    """Keep a system worker per namespace that needs one, until cancelled."""
    url = store.config.regions[store.region].url
    running: dict[str, _NamespaceWorker] = {}
    try:
        while True:
            try:
                async with store.pool.acquire() as conn:
                    rows = await conn.fetch(
                        Q["namespaces_with_open_system_runs"], store.region, SYSTEM_TYPES
                    )
                wanted = {r["name"] for r in rows}
                for ns in wanted - running.keys():
                    running[ns] = _NamespaceWorker(store, url, ns, store.region)
                for ns in [n for n in running if n not in wanted or running[n].task.done()]:
                    await running.pop(ns).stop()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database is away: try again shortly
                log.warning("system worker of %s: %r", store.region, exc)
            await asyncio.sleep(REFRESH_S)
    finally:
        for w in running.values():
            await w.stop()
