"""Answers of the operator routes: health, the test clock, search attributes, batch jobs.

The server renders these answers itself; the models say in /openapi.json what
each route sends (every key, and which may be null), where the document gave
an empty schema, so a client generated from it or a test validating answers
by it knows the fields. Unknown keys a later release adds are allowed.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel


class HealthResponse(BaseModel):
    ok: bool
    region: str


class ClockResponse(BaseModel):
    #: The server's time (RFC 3339, UTC).
    now: str
    #: Whether ``POST /api/v1/clock/advance`` moves it (``test_clock`` in the config).
    test_clock: bool
    #: How far the test clock is ahead of real time.
    offset_s: float


class SearchAttributeInfo(BaseModel):
    name: str
    #: Keyword, Text, Int, Double, Bool, Datetime, KeywordList, Duration.
    type: str
    kind: Literal["system", "predefined", "custom"]


class SearchAttributesResponse(BaseModel):
    attributes: list[SearchAttributeInfo]


class SearchAttributeChange(BaseModel):
    name: str
    #: The attribute's type (null: a removed name that was never registered).
    type: str | None
    #: False when the namespace already was so (a retried add or remove).
    changed: bool


class StartBatchResponse(BaseModel):
    job_id: str
    #: The run of the job's workflow.
    run_id: str
    #: False: a job under this id with the same spec was already started.
    started: bool


class BatchOperationView(BaseModel):
    kind: str
    params: dict[str, Any] = {}


class BatchJobSummary(BaseModel):
    job_id: str
    #: running, completed, stopped, failed or terminated.
    state: str
    operation: BatchOperationView | None
    summary: str
    query: str | None
    rps: float | None
    start_time: str | None
    close_time: str | None


class ListBatchesResponse(BaseModel):
    jobs: list[BatchJobSummary]
    next_page_token: str | None


class BatchJobInfo(BaseModel):
    job_id: str
    query: str | None
    operation: BatchOperationView | None
    rps: float | None
    reason: str | None
    state: str
    #: Runs the query matched as the job started (null: a job of an earlier release).
    total: int | None
    done: int | None
    skipped: int | None
    failed: int | None
    pages: int | None
    stop_reason: str | None
    error: str | None
    failures: list[dict[str, Any]]
    start_time: str | None
    close_time: str | None


class StopBatchResponse(BaseModel):
    job_id: str
    stop_requested: bool
    state: str


class ActivityControlResponse(BaseModel):
    """The answer of ``POST .../activities/{pause|unpause|reset}``."""

    workflow_id: str
    run_id: str
    activity_id: str
    #: Absent where a retried request finds the activity ended since.
    scheduled_event_id: int | None = None
    #: False: it already was so (a retried request, or a cancel asked first).
    changed: bool
    paused: bool | None = None
    #: reset of a running attempt: the reset applies as the attempt ends.
    pending: bool | None = None
    note: str | None = None


class DeploymentRouting(BaseModel):
    deployment: str
    #: The build new runs go to (null: unversioned workers take them).
    current: str | None
    ramping: str | None
    ramping_percent: float
    #: Bumped by every change; a writer naming an older one is refused.
    revision: int


class DeploymentSummary(DeploymentRouting):
    #: How many builds (versions) the deployment has.
    versions: int


class ListDeploymentsResponse(BaseModel):
    deployments: list[DeploymentSummary]


class DeploymentPoller(BaseModel):
    identity: str
    task_queue: str
    last_seen: str
    live: bool
    stopped_at: str | None


class DeploymentVersionInfo(BaseModel):
    build_id: str
    #: ``deployment:build_id``.
    version: str
    #: inactive, current, ramping, draining or drained.
    status: str
    task_queues: list[str]
    created_at: str | None
    open_pinned: int
    drained_since: str | None
    waiting_no_poller: int
    live_pollers: int
    pollers: list[DeploymentPoller]


class DeploymentDescription(DeploymentRouting):
    updated_at: str | None
    versions: list[DeploymentVersionInfo]


class SetDeploymentVersionResponse(DeploymentRouting):
    #: False: the deployment already routed so (a retried request).
    changed: bool
    #: Waiting tasks moved to the build this change routes them to.
    tasks_rerouted: int


class UpdateVersioningResponse(BaseModel):
    run_id: str
    changed: bool
    tasks_rerouted: int
    #: The version tag of the run's next workflow task (null: unversioned).
    next_task_version: str | None


class TaskQueuePoller(BaseModel):
    identity: str
    #: ``workflow`` or ``activity``: what the worker polls the queue for.
    kind: str
    #: Its first and latest poll of the queue seen by this region (the latest
    #: is recorded at most every 10 s a server process).
    first_poll_time: str
    last_poll_time: str
    #: ``last_poll_time``, as Temporal's ``PollerInfo`` names it.
    last_access_time: str
    #: It polled within the last 45 s and did not say it stopped.
    live: bool
    stopped_at: str | None
    #: The version the worker polls as, or null for an unversioned worker.
    deployment: str | None
    build_id: str | None


class TaskQueueBacklog(BaseModel):
    #: Tasks waiting for a poller.
    count: int
    #: How long the oldest has waited, in seconds (null: none waits).
    oldest_age_s: float | None


class TaskQueueDescription(BaseModel):
    namespace: str
    task_queue: str
    region: str
    #: Workers that polled the queue in the last 5 minutes, latest first.
    pollers: list[TaskQueuePoller]
    #: Per kind (``workflow``, ``activity``): what waits for a poller.
    backlog: dict[str, TaskQueueBacklog]


class EmptyResponse(BaseModel):
    """``{}``: the request was taken (a worker's task failure, query answer,
    sticky queue close, stopped pollers)."""
