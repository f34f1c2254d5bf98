"""The batch job: a system workflow that walks a query's runs and acts on each.

It is an ordinary Baton workflow in the user's namespace (type
``baton.batch``, task queue ``baton.system``) run by the servers' system
worker, so its progress is history: it resumes after a server restart,
replicates with the namespace and carries on in the new region after a
failover. Each page is one activity: list the next page of matching runs
(after the job's cursor, a stable keyset token), apply the operation to each
at the job's rate, return what happened. The workflow records the cursor and
counts, and continues as new every so many pages so its history stays short.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from datetime import timedelta
from typing import Any

from store.batch import operations
from worker import RetryPolicy, activity, workflow
from worker._http import ns_path
from worker.errors import (
    ActivityError,
    ApplicationError,
    BatonError,
    WorkflowNotFoundError,
    WorkflowNotRunningError,
)

WORKFLOW_TYPE = "baton.batch"
TASK_QUEUE = "baton.system"
PAGE_ACTIVITY = "baton.batch.page"
#: Pages per run before the job continues as new.
PAGES_PER_RUN = 100
#: Per-run failures a job keeps (the counts go on).
MAX_FAILURES_KEPT = 1000
#: A page takes about this long at the job's rate.
PAGE_SECONDS = 5.0
#: A page waiting for its rate heartbeats this often (its heartbeat timeout is 10 s).
HEARTBEAT_EVERY_S = 2.0


def page_size(rps: float) -> int:
    return max(1, min(100, math.ceil(rps * PAGE_SECONDS)))


def request_id(job_id: str, run_id: str) -> str:
    """The request id of one job's operation on one run: the same on every retry."""
    return f"batch:{job_id}:{run_id}"


def initial_state() -> dict[str, Any]:
    return {"cursor": None, "pages": 0, "done": 0, "skipped": 0, "failed": 0, "failures": []}


def make_page_activity(client: Any) -> Any:
    """The page activity, bound to a client of the region's own API."""

    @activity.defn(name=PAGE_ACTIVITY)
    async def process_page(job: dict[str, Any], cursor: str | None) -> dict[str, Any]:
        op = operations.get(job["operation"]["kind"])
        params = job["operation"].get("params") or {}
        ns = job["namespace"]
        try:
            res = await client.call(
                "GET",
                ns_path(ns, "/workflows"),
                params={
                    "query": job["query"] or None,
                    "page_size": page_size(job["rps"]),
                    "page_token": cursor,
                },
            )
        except BatonError as exc:
            if exc.retryable:
                raise
            # the query no longer holds (an attribute it names was removed):
            # retrying cannot help, the job ends failed and says why
            raise ApplicationError(
                f"the job's query cannot run: [{exc.code}] {exc.message}",
                type="BatchQueryFailed",
                non_retryable=True,
            ) from exc
        interval = 1.0 / job["rps"]
        next_at = time.monotonic()
        done = skipped = 0
        failures: list[dict[str, Any]] = []
        for i, e in enumerate(res["executions"]):
            await _sleep_until(next_at, i)
            next_at = max(next_at, time.monotonic()) + interval
            try:
                changed = await op.apply(
                    client,
                    ns,
                    e["workflow_id"],
                    e["run_id"],
                    params,
                    job["reason"],
                    request_id(job["job_id"], e["run_id"]),
                )
                if changed is False:
                    skipped += 1  # already as asked (paused, unpaused)
                else:
                    done += 1
            except (WorkflowNotRunningError, WorkflowNotFoundError):
                skipped += 1  # it closed (or went) before the job reached it
            except BatonError as exc:
                if exc.retryable:
                    raise  # the region is busy or moving: retry the page
                failures.append(
                    {
                        "workflow_id": e["workflow_id"],
                        "run_id": e["run_id"],
                        "code": exc.code,
                        "message": exc.message[:500],
                    }
                )
            activity.heartbeat(i)
        return {
            "cursor": res.get("next_page_token"),
            "seen": len(res["executions"]),
            "done": done,
            "skipped": skipped,
            "failures": failures,
            # The next page's first run is one interval after this page's last:
            # without this wait every page would start at once, and a job whose
            # pages hold one run (--rps under 0.2) would not be paced at all.
            # The job waits it out on a timer a stop cuts short (up to 100 s
            # at the lowest rate), not here, where a stop could not reach it.
            "pace_s": max(0.0, next_at - time.monotonic()) if res.get("next_page_token") else 0.0,
        }

    return process_page


async def _sleep_until(deadline: float, progress: int) -> None:
    """Wait until ``deadline`` (monotonic), heartbeating: it may outlast the heartbeat timeout."""
    while (wait := deadline - time.monotonic()) > 0:
        await asyncio.sleep(min(wait, HEARTBEAT_EVERY_S))
        activity.heartbeat(progress)


def merge(state: dict[str, Any], page: dict[str, Any]) -> dict[str, Any]:
    """The job's state after one page (pure: replay computes the same)."""
    failures = (state["failures"] + page["failures"])[:MAX_FAILURES_KEPT]
    return {
        "cursor": page["cursor"],
        "pages": state["pages"] + 1,
        "done": state["done"] + page["done"],
        "skipped": state["skipped"] + page["skipped"],
        "failed": state["failed"] + len(page["failures"]),
        "failures": failures,
    }


@workflow.defn(name=WORKFLOW_TYPE)
class BatchJob:
    """Walk ``job["query"]`` and apply ``job["operation"]`` to every run it matches."""

    def __init__(self) -> None:
        self.stop_reason: str | None = None
        self.state = initial_state()

    @workflow.run
    async def run(self, job: dict[str, Any]) -> dict[str, Any]:
        self.state = dict(job.get("state") or initial_state())
        job = {k: v for k, v in job.items() if k != "state"}
        pages_here = 0
        while self.stop_reason is None:
            try:
                page = await self._page(job)
            except ActivityError as exc:
                cause = exc.__cause__
                why = getattr(cause, "message", None) or exc.message
                return {**self.state, "state": "failed", "error": why}
            self.state = merge(self.state, page)
            pages_here += 1
            if not page["cursor"]:
                return {**self.state, "state": "completed"}
            # a page of an earlier release paced itself and says nothing
            await self._pace(float(page.get("pace_s") or 0.0))
            if pages_here >= PAGES_PER_RUN and self.stop_reason is None:
                workflow.continue_as_new({**job, "state": self.state})
        return {**self.state, "state": "stopped", "stop_reason": self.stop_reason}

    async def _page(self, job: dict[str, Any]) -> dict[str, Any]:
        page: dict[str, Any] = await workflow.execute_activity(
            PAGE_ACTIVITY,
            job,
            self.state["cursor"],
            start_to_close_timeout=timedelta(minutes=10),
            heartbeat_timeout=timedelta(seconds=10),
            retry_policy=RetryPolicy(
                initial_interval=timedelta(seconds=1),
                maximum_interval=timedelta(seconds=10),
                maximum_attempts=0,
            ),
        )
        return page

    async def _pace(self, seconds: float) -> None:
        """Wait ``seconds`` before the next page, or until a stop arrives."""
        if seconds <= 0 or self.stop_reason is not None:
            return
        with contextlib.suppress(TimeoutError):
            await workflow.wait_condition(lambda: self.stop_reason is not None, timeout=seconds)

    @workflow.signal(name="stop")
    def stop(self, reason: str) -> None:
        self.stop_reason = reason or "stopped"

    @workflow.query(name="progress")
    def progress(self) -> dict[str, Any]:
        return self.state
