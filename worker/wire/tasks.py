"""Polls, tasks and the answers workers send back."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from worker.wire.commands import Command
from worker.wire.common import TASK_QUEUE_MAX_CHARS, Failure, Payload
from worker.wire.history import HistoryEvent

VersioningBehavior = Literal["pinned", "auto-upgrade"]


class PollersStoppedRequest(BaseModel):
    """A worker that shuts down says its pollers stopped."""

    #: The version it polled as (both or neither: an unversioned worker names none).
    deployment: str | None = Field(default=None, min_length=1, max_length=255)
    build_id: str | None = Field(default=None, min_length=1, max_length=255)
    identity: str = Field(min_length=1, max_length=1000)


class PollRequest(BaseModel):
    task_queue: str = Field(min_length=1, max_length=TASK_QUEUE_MAX_CHARS)
    identity: str = Field(default="", max_length=1000)
    wait_s: float = Field(default=30.0, ge=0, le=120, strict=True)
    #: Worker versioning: the deployment and build this worker runs (both or neither).
    deployment: str | None = Field(default=None, min_length=1, max_length=255)
    build_id: str | None = Field(default=None, min_length=1, max_length=255)
    #: The poll is of the worker's own sticky queue (not a queue of its version).
    sticky: bool = Field(default=False, strict=True)
    #: Drawn by each Worker object: a worker started again under the same
    #: identity is still a new worker to the server (store/tasks.py).
    instance: str = Field(default="", max_length=100)


class WorkflowTask(BaseModel):
    """A workflow task (or a query task when ``query`` is set).

    ``events`` holds the history from ``events[0].event_id`` to the task's
    WorkflowTaskStarted; a worker whose cache does not reach that far fetches
    the earlier part with the history call.
    """

    task_token: str
    namespace: str
    workflow_id: str
    run_id: str
    workflow_type: str
    task_queue: str
    attempt: int
    started_event_id: int
    previous_started_event_id: int
    #: Failover version of that event: after a forced failover the same event
    #: id can hold another branch's event, and a cached run must not go on from it.
    previous_started_event_version: int | None = None
    history_length: int
    events: list[HistoryEvent]
    updates: list[dict[str, Any]] = Field(default_factory=list)  # update_id, name, input
    query: dict[str, Any] | None = None  # query_id, name, input when a query task
    #: Worker versioning: the run is pinned and its deployment now targets
    #: another version (see ``workflow.info().target_version_changed``).
    target_version_changed: bool = False


class WorkflowTaskPollResponse(BaseModel):
    task: WorkflowTask | None = None


class RespondWorkflowTaskCompleted(BaseModel):
    task_token: str
    commands: list[Command] = Field(default_factory=list)
    identity: str = Field(default="", max_length=1000)
    #: Ask the server to hand this worker the activity tasks it schedules on
    #: its own queue directly in the response (saves a poll round trip).
    eager_activities: int = Field(default=0, ge=0, le=100, strict=True)
    #: Ask for the next workflow task of this run in the response if one is
    #: already due (saves a poll round trip and keeps the worker's cache hot).
    return_new_workflow_task: bool = Field(default=False, strict=True)
    #: The worker keeps the run cached and polls this queue: the run's next
    #: workflow tasks go there first, and to the run's own task queue if no
    #: poller of it takes them within ``sticky_schedule_to_start_s``.
    sticky_task_queue: str | None = Field(
        default=None, min_length=1, max_length=TASK_QUEUE_MAX_CHARS
    )
    sticky_schedule_to_start_s: float = Field(default=5.0, gt=0, le=60, strict=True)
    #: Worker versioning: the version that ran the task, and the workflow
    #: type's behaviour there (recorded in history; routes the run's next tasks).
    deployment: str | None = Field(default=None, min_length=1, max_length=255)
    build_id: str | None = Field(default=None, min_length=1, max_length=255)
    versioning_behavior: VersioningBehavior | None = None
    #: Answer with the events this completion writes (``history_tail``), for
    #: a worker that runs the run's next task ahead (SpeculativeWorkflowTask).
    return_history_tail: bool = Field(default=False, strict=True)


class ActivityTask(BaseModel):
    task_token: str
    namespace: str
    workflow_id: str
    run_id: str
    workflow_type: str
    activity_id: str
    activity_type: str
    task_queue: str
    input: list[Payload]
    attempt: int
    heartbeat_details: list[Payload] | None = None
    scheduled_time: str
    started_time: str
    start_to_close_s: float | None = None
    schedule_to_close_s: float | None = None
    heartbeat_s: float | None = None
    #: When the activity was first scheduled (its schedule-to-close deadline
    #: runs from here, whatever the attempt); absent from earlier releases.
    first_scheduled_time: str | None = None


class HistoryTail(BaseModel):
    """The events a write added after the workflow task it completed, for the
    worker that caches the run (it may run the run's next task on them, see
    :class:`SpeculativeWorkflowTask`)."""

    #: The run's next event id after the write.
    next_event_id: int
    events: list[HistoryEvent]


class RespondWorkflowTaskCompletedResponse(BaseModel):
    activity_tasks: list[ActivityTask] = Field(default_factory=list)
    workflow_task: WorkflowTask | None = None
    #: With ``return_history_tail``, when the run is open and has no workflow
    #: task pending after the write.
    history_tail: HistoryTail | None = None


class RespondWorkflowTaskFailed(BaseModel):
    task_token: str
    failure: Failure
    cause: str = "WorkflowTaskFailed"  # or NonDeterminism
    identity: str = Field(default="", max_length=1000)
    #: Pause the workflow instead of retrying the task (the worker's limit of
    #: failed tasks in a row was reached); the reason names the failure.
    pause: bool = Field(default=False, strict=True)
    deployment: str | None = Field(default=None, min_length=1, max_length=255)
    build_id: str | None = Field(default=None, min_length=1, max_length=255)


class CloseStickyQueueRequest(BaseModel):
    """A worker that shuts down closes its sticky queue."""

    sticky_task_queue: str = Field(min_length=1, max_length=TASK_QUEUE_MAX_CHARS)


class RespondQueryTask(BaseModel):
    task_token: str
    result: Payload | None = None
    failure: Failure | None = None


class ActivityTaskPollResponse(BaseModel):
    task: ActivityTask | None = None


class SpeculativeWorkflowTask(BaseModel):
    """The workflow task an activity's result schedules, already run by the worker.

    A worker that caches the run knows the history up to the activity's
    result (the run's last :class:`HistoryTail`), so it can build the next
    task's events itself, run the workflow code on them and send the commands
    with the result. The server records the result, the task and its
    completion in one write if the run is exactly as the worker assumed: its
    next event id, the events' version, no task pending, nothing buffered, no
    update waiting, not paused, no worker versioning, the task's time close to
    the server's clock (at most 1 s ahead, 10 s behind). Otherwise it records
    the result alone, as without this field, and says why.
    """

    #: The run's next event id the worker assumed (its last history tail's).
    next_event_id: int = Field(ge=1)
    #: The failover version of the events the worker assumed.
    version: int = Field(ge=0)
    #: The time of the task (all its events), as the workflow code saw it.
    started_time: str = Field(min_length=1, max_length=64)
    commands: list[Command] = Field(default_factory=list)
    eager_activities: int = Field(default=0, ge=0, le=100, strict=True)
    sticky_task_queue: str | None = Field(
        default=None, min_length=1, max_length=TASK_QUEUE_MAX_CHARS
    )
    sticky_schedule_to_start_s: float = Field(default=5.0, gt=0, le=60, strict=True)


class RespondActivityTaskCompleted(BaseModel):
    task_token: str
    result: Payload | None = None
    identity: str = Field(default="", max_length=1000)
    #: The next workflow task, run ahead by the worker (needs
    #: ``return_new_workflow_task``); see :class:`SpeculativeWorkflowTask`.
    workflow_task: SpeculativeWorkflowTask | None = None


class RespondActivityTaskFailed(BaseModel):
    task_token: str
    failure: Failure
    identity: str = Field(default="", max_length=1000)


class RespondActivityTaskCanceled(BaseModel):
    task_token: str
    identity: str = Field(default="", max_length=1000)


class RespondActivityResponse(BaseModel):
    #: Next workflow task of the same run when the completion scheduled one and
    #: the caller asked for it (``return_new_workflow_task`` query flag).
    workflow_task: WorkflowTask | None = None
    #: With a :class:`SpeculativeWorkflowTask`: "accepted" (the task and its
    #: commands are recorded; what follows is as for a workflow task
    #: completion) or "refused" (the result alone is recorded).
    speculation: Literal["accepted", "refused"] | None = None
    #: Why a speculative task was refused: a word (stale, pending, paused,
    #: versioned, history, clock, commands) and a sentence for logs.
    speculation_reason: str | None = None
    speculation_refused: str | None = None
    #: Eager activities of an accepted speculative task.
    activity_tasks: list[ActivityTask] = Field(default_factory=list)
    history_tail: HistoryTail | None = None


class HeartbeatRequest(BaseModel):
    task_token: str
    details: list[Payload] | None = None


class HeartbeatResponse(BaseModel):
    cancel_requested: bool = False
    #: The activity was paused: this attempt may finish, no new one starts.
    paused: bool = False


class ClusterInfo(BaseModel):
    region: str
    url: str
    regions: dict[str, str]  # region name -> URL
    schema_version: int
    server_version: str
    max_payload_bytes: int


class ActivityTokenRequest(BaseModel):
    """Ask for the task token of a workflow's started activity, named by its id
    (to complete it asynchronously, as Temporal's ``...ById`` calls do)."""

    workflow_id: str = Field(min_length=1, max_length=1000)
    #: The run; the workflow's current run if None.
    run_id: str | None = Field(default=None, max_length=64)
    activity_id: str = Field(min_length=1, max_length=1000)


class ActivityTokenResponse(BaseModel):
    task_token: str
