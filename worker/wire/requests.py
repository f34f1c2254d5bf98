"""Requests and responses of the namespace and workflow routes."""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_core import PydanticCustomError

from worker.wire.common import (
    MAX_DESCRIPTION_CHARS,
    MAX_DURATION_S,
    TASK_QUEUE_MAX_CHARS,
    Failure,
    Payload,
    RetryPolicyWire,
)
from worker.wire.history import HistoryEvent


class NamespaceInfo(BaseModel):
    name: str
    regions: list[str]
    active_region: str
    failover_version: int
    state: str
    retention_days: int
    description: str = ""


NAMESPACE_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$"
_NAMESPACE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}")
#: What a namespace name may hold, in words.
NAMESPACE_NAME_RULE = "1 to 200 letters, digits, '.', '_' and '-', starting with a letter or digit"


def namespace_name_problem(name: str) -> str | None:
    """Why ``name`` cannot be a namespace's name, or None if it can.

    The server refuses such a name at create; the SDK refuses it before it
    puts it in a request's path, where "/" or "?" would name another route.
    """
    if _NAMESPACE_NAME.fullmatch(name):
        return None
    return f"{name[:210]!r} is not a namespace name: use {NAMESPACE_NAME_RULE}"


class CreateNamespaceRequest(BaseModel):
    name: str = Field(json_schema_extra={"pattern": NAMESPACE_NAME_PATTERN})
    regions: list[str] | None = None
    active_region: str | None = None
    #: Strict: JSON true is not one day, nor "7" seven (runs are deleted by it).
    retention_days: int = Field(default=7, ge=1, le=3650, strict=True)
    #: Kept short: it travels with every replication message of the namespace.
    description: str = Field(default="", max_length=MAX_DESCRIPTION_CHARS)
    #: The same create sent again with this id answers with the namespace it
    #: made, not NAMESPACE_ALREADY_EXISTS (the SDK draws one per call).
    request_id: str | None = Field(default=None, min_length=1, max_length=256)

    @field_validator("name")
    @classmethod
    def _namespace_name(cls, value: str) -> str:
        # said in words: a regular expression is no answer to "what do I type"
        if not _NAMESPACE_NAME.fullmatch(value):
            raise PydanticCustomError(
                "namespace_name",
                "{name} is not a namespace name: use " + NAMESPACE_NAME_RULE,
                {"name": repr(value[:210])},
            )
        return value


class UpdateNamespaceRequest(BaseModel):
    """What ``namespace update`` changes: a field left out keeps its value."""

    #: Days a closed run is kept before the retention sweeper deletes it.
    #: Strict, as at create.
    retention_days: int | None = Field(default=None, ge=1, le=3650, strict=True)
    description: str | None = Field(default=None, max_length=MAX_DESCRIPTION_CHARS)


# --------------------------------------------------------------------------- workflows


class WorkflowIdReusePolicy(StrEnum):
    """What a start does when closed runs of the same workflow id exist."""

    ALLOW_DUPLICATE = "allow_duplicate"
    ALLOW_DUPLICATE_FAILED_ONLY = "allow_duplicate_failed_only"
    REJECT_DUPLICATE = "reject_duplicate"
    TERMINATE_IF_RUNNING = "terminate_if_running"


class WorkflowIdConflictPolicy(StrEnum):
    """What a start does when a run of the same workflow id is running (Temporal's)."""

    FAIL = "fail"
    USE_EXISTING = "use_existing"
    TERMINATE_EXISTING = "terminate_existing"


class WorkflowStatus(StrEnum):
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELED = "canceled"
    TERMINATED = "terminated"
    CONTINUED_AS_NEW = "continued_as_new"
    TIMED_OUT = "timed_out"


class StartWorkflowRequest(BaseModel):
    workflow_id: str = Field(min_length=1, max_length=1000)
    workflow_type: str = Field(min_length=1, max_length=1000)
    task_queue: str = Field(min_length=1, max_length=TASK_QUEUE_MAX_CHARS)
    input: list[Payload] = Field(default_factory=list)
    #: A retried start with the same id starts nothing new (kept for the
    #: namespace's retention period, in every region of the namespace).
    request_id: str | None = Field(default=None, min_length=1, max_length=256)
    id_reuse_policy: WorkflowIdReusePolicy = WorkflowIdReusePolicy.ALLOW_DUPLICATE
    #: Beside a running run: refuse (``WORKFLOW_ALREADY_STARTED``), answer with
    #: it (``started`` false), or terminate it and start anew. Not for signal-with-start.
    id_conflict_policy: WorkflowIdConflictPolicy = WorkflowIdConflictPolicy.FAIL
    task_timeout_s: float = Field(default=10.0, gt=0, le=3600, strict=True)
    run_timeout_s: float | None = Field(default=None, gt=0, le=MAX_DURATION_S, strict=True)
    #: The deadline of the whole chain from this start (continue-as-new,
    #: retries and resets keep it): the run open then times out, as in Temporal.
    execution_timeout_s: float | None = Field(default=None, gt=0, le=MAX_DURATION_S, strict=True)
    #: Retry the workflow by this policy when a run fails or reaches its run
    #: timeout (Temporal's workflow retry policy); None: no retries.
    retry_policy: RetryPolicyWire | None = None
    #: Temporal's cron schedule: the first run's first workflow task waits
    #: for its next time, and each run's close starts the chain's next run
    #: at the next time after it, until a cancel, terminate or the execution
    #: timeout ends the chain. None: none.
    cron_schedule: str | None = Field(default=None, max_length=1000)
    #: Temporal's start delay: the run's first workflow task waits this many
    #: seconds (a signal meanwhile is recorded and waits too). Not with a cron
    #: schedule.
    start_delay_s: float | None = Field(default=None, ge=0, le=MAX_DURATION_S)
    memo: dict[str, Any] = Field(default_factory=dict)
    identity: str = Field(default="", max_length=1000)
    #: Custom search attributes registered in the namespace: name -> value.
    search_attributes: dict[str, Any] = Field(default_factory=dict)
    #: Worker versioning: this run's behaviour, over its workflow type's.
    versioning_behavior: Literal["pinned", "auto-upgrade"] | None = None
    #: Answer with the run's outcome too (``result``), waiting up to this many
    #: seconds for it as ``GET .../result?wait_s=`` does: one call where
    #: start and result would be two. Not for signal-with-start.
    wait_result_s: float | None = Field(default=None, ge=0, le=120, strict=True)


class StartWorkflowResponse(BaseModel):
    workflow_id: str
    run_id: str
    started: bool  # False when a retried request id found the earlier start
    #: True when the request id found the start an earlier request with it
    #: made (so ``started`` is False): a caller that drew the id itself knows
    #: that start was its own, whose answer it lost.
    request_id_found: bool = False
    #: With ``wait_result_s``: the outcome as ``GET .../result`` answers it
    #: (``closed`` is false if the wait ran out first).
    result: ResultResponse | None = None


class SignalRequest(BaseModel):
    signal_name: str = Field(min_length=1, max_length=1000)
    input: list[Payload] = Field(default_factory=list)
    run_id: str | None = None
    #: A retried signal with the same id is applied once.
    request_id: str | None = Field(default=None, min_length=1, max_length=256)
    identity: str = Field(default="", max_length=1000)


def _no_result_wait(schema: dict[str, Any]) -> None:
    # a signal-with-start refuses wait_result_s: the document does not offer it
    schema.get("properties", {}).pop("wait_result_s", None)


class SignalWithStartRequest(StartWorkflowRequest):
    model_config = ConfigDict(json_schema_extra=_no_result_wait)

    signal_name: str = Field(min_length=1, max_length=1000)
    signal_input: list[Payload] = Field(default_factory=list)


class QueryRequest(BaseModel):
    query_name: str = Field(min_length=1, max_length=1000)
    input: list[Payload] = Field(default_factory=list)
    run_id: str | None = None
    timeout_s: float = Field(default=10.0, gt=0, le=300, strict=True)


class QueryResponse(BaseModel):
    result: Payload | None = None


class UpdateRequest(BaseModel):
    update_id: str | None = Field(default=None, min_length=1, max_length=256)
    name: str = Field(min_length=1, max_length=1000)
    input: list[Payload] = Field(default_factory=list)
    run_id: str | None = None
    timeout_s: float = Field(default=30.0, gt=0, le=3600, strict=True)
    identity: str = Field(default="", max_length=1000)
    #: Answer once the workflow accepted the update (``accepted``: Temporal's
    #: ``start_update`` stage, ``state`` says so and there is no result yet)
    #: or once it completed (``completed``, the default).
    wait_for_stage: Literal["accepted", "completed"] = "completed"


class UpdateResponse(BaseModel):
    update_id: str
    #: The run that took the update (absent from earlier releases).
    run_id: str | None = None
    state: str  # completed, or accepted when asked to wait for that stage only
    result: Payload | None = None


class CancelRequest(BaseModel):
    run_id: str | None = None
    #: Kept short, as a pause's: it is recorded in history.
    reason: str = Field(default="", max_length=MAX_DESCRIPTION_CHARS)
    #: A retried cancel with the same id is applied once.
    request_id: str | None = Field(default=None, min_length=1, max_length=256)
    identity: str = Field(default="", max_length=1000)
    #: A run of the chain the caller means (a handle from a start names the run
    #: it started), as Temporal's ``first_execution_run_id``: when the id's
    #: current run belongs to another execution (started anew since), the
    #: request is ``WORKFLOW_NOT_FOUND`` rather than acting on it.
    first_run_id: str | None = Field(default=None, min_length=1, max_length=64)


class TerminateRequest(BaseModel):
    run_id: str | None = None
    #: Kept short, as a pause's: it is recorded in history and is the run's failure message.
    reason: str = Field(default="", max_length=MAX_DESCRIPTION_CHARS)
    #: A retried terminate with the same id is applied once.
    request_id: str | None = Field(default=None, min_length=1, max_length=256)
    identity: str = Field(default="", max_length=1000)
    #: A run of the chain the caller means (a handle from a start names the run
    #: it started), as Temporal's ``first_execution_run_id``: when the id's
    #: current run belongs to another execution (started anew since), the
    #: request is ``WORKFLOW_NOT_FOUND`` rather than acting on it.
    first_run_id: str | None = Field(default=None, min_length=1, max_length=64)


class RunResponse(BaseModel):
    """The run a signal, cancel or terminate acted on (a retry: the run the
    first request acted on, even if it has closed since)."""

    run_id: str


class PauseResponse(BaseModel):
    """A pause's or unpause's answer (a retried request id answers the same,
    with ``changed`` false)."""

    workflow_id: str
    run_id: str
    #: Whether the run is paused now.
    paused: bool
    #: False when the run was so already, or the request id was seen.
    changed: bool
    #: A paused run: reason, identity, source, since, request_id.
    pause: dict[str, Any] | None = None


class PendingActivity(BaseModel):
    activity_id: str
    activity_type: str
    state: str
    attempt: int
    scheduled_event_id: int
    last_failure: Failure | None = None
    heartbeat_details: list[Payload] | None = None
    last_heartbeat_time: str | None = None
    paused: bool = False
    #: The workflow asked to cancel it: a running attempt learns of it at its
    #: next heartbeat (Temporal's ``CANCEL_REQUESTED`` state).
    cancel_requested: bool = False
    #: Pause reason, who and since when; a reset waiting for the running attempt.
    control: dict[str, Any] | None = None


class WorkflowExecutionInfo(BaseModel):
    namespace: str
    workflow_id: str
    run_id: str
    workflow_type: str
    task_queue: str
    status: WorkflowStatus
    paused: bool = False
    start_time: str
    close_time: str | None = None
    history_length: int
    last_write_version: int
    continued_from_run_id: str | None = None
    continued_to_run_id: str | None = None
    memo: dict[str, Any] = Field(default_factory=dict)
    search_attributes: dict[str, Any] = Field(default_factory=dict)
    #: A paused run: reason, identity, since, request_id.
    pause: dict[str, Any] | None = None
    #: Worker versioning: the run's deployment, the build it is on (pinned to,
    #: or that ran its last workflow task) and its effective behaviour.
    deployment: str | None = None
    build_id: str | None = None
    versioning_behavior: str | None = None


class DescribeResponse(BaseModel):
    execution: WorkflowExecutionInfo
    #: How a run that closed without a result ended (failed, timed out,
    #: terminated, canceled): the failure ``result`` raises with.
    failure: dict[str, Any] | None = None
    #: The run nears a limit (history length or size, signals): continue-as-new.
    warnings: list[str] = Field(default_factory=list)
    pending_activities: list[PendingActivity] = Field(default_factory=list)
    pending_timers: list[dict[str, Any]] = Field(default_factory=list)
    pending_workflow_task: dict[str, Any] | None = None
    #: Worker versioning: behaviour, pin, override, the version the next
    #: workflow task goes to, and whether it waits for a poller of it.
    versioning: dict[str, Any] | None = None


class PauseRequest(BaseModel):
    """Pause (or unpause) a workflow's current run; one request id acts once."""

    reason: str = Field(default="", max_length=MAX_DESCRIPTION_CHARS)
    identity: str = Field(default="", max_length=1000)
    request_id: str | None = Field(default=None, min_length=1, max_length=256)
    run_id: str | None = None
    #: Unpause only: move the run to its deployment's current build, or to
    #: this build of its deployment, in the same step (a pinned override).
    #: Strict, as a batch unpause's: "false" is no false.
    to_current: bool = Field(default=False, strict=True)
    build_id: str | None = Field(default=None, min_length=1, max_length=255)


class ActivityControlRequest(BaseModel):
    """Pause, unpause or reset one activity of a workflow's current run."""

    workflow_id: str = Field(min_length=1, max_length=1000)
    activity_id: str = Field(min_length=1, max_length=1000)
    reason: str = Field(default="", max_length=MAX_DESCRIPTION_CHARS)
    identity: str = Field(default="", max_length=1000)
    request_id: str | None = Field(default=None, min_length=1, max_length=256)
    run_id: str | None = None
    #: Reset only: leave a paused activity paused.
    keep_paused: bool = Field(default=False, strict=True)
    #: Reset only: start without the last attempt's heartbeat details.
    reset_heartbeat_details: bool = Field(default=False, strict=True)


class VersioningOverride(BaseModel):
    kind: Literal["pinned", "auto-upgrade", "one-time"]
    #: The version of a pinned or one-time override.
    deployment: str | None = Field(default=None, min_length=1, max_length=255)
    build_id: str | None = Field(default=None, min_length=1, max_length=255)


class UpdateVersioningRequest(BaseModel):
    """Set (or, with ``override`` None, clear) a run's versioning override."""

    override: VersioningOverride | None = None
    run_id: str | None = None
    reason: str = Field(default="", max_length=MAX_DESCRIPTION_CHARS)
    identity: str = Field(default="", max_length=1000)
    request_id: str | None = Field(default=None, min_length=1, max_length=256)


class SetDeploymentVersionRequest(BaseModel):
    """Make a build the deployment's current or ramping version.

    ``build_id`` None means unversioned workers; a ramp of 0 percent ends it.
    """

    build_id: str | None = Field(default=None, min_length=1, max_length=255)
    #: Strict: JSON true is not a 1 percent ramp, nor "50" fifty, nor true a
    #: revision or "no" a no.
    percent: float | None = Field(default=None, ge=0, le=100, strict=True)
    expect_revision: int | None = Field(default=None, ge=0, strict=True)
    allow_no_pollers: bool = Field(default=False, strict=True)
    identity: str = Field(default="", max_length=1000)


class HistoryResponse(BaseModel):
    run_id: str
    #: Contiguous events from ``from_event_id``, at most ``page_size`` of them.
    events: list[HistoryEvent]
    next_event_id: int = Field(
        description="The run's next event id (its history has next_event_id - 1 events so "
        "far), not a page cursor: ask for the next page from the last event's id + 1 "
        "while that is below next_event_id"
    )
    #: The run is closed: its history will not grow.
    closed: bool


class BufferedInput(BaseModel):
    seq: int
    event_type: str
    attributes: dict[str, Any]


class BufferedResponse(BaseModel):
    """Inputs waiting behind a run's started workflow task, oldest first."""

    run_id: str
    buffered: list[BufferedInput]


class ConflictEventsResponse(BaseModel):
    """The signals and starts of an archived losing branch."""

    id: int
    events: list[dict[str, Any]]


class ListResponse(BaseModel):
    executions: list[WorkflowExecutionInfo]
    next_page_token: str | None = None


class ResultResponse(BaseModel):
    """Outcome of a run, following continue-as-new to the end of the chain."""

    run_id: str
    status: WorkflowStatus
    result: Payload | None = None
    failure: Failure | None = None
    closed: bool
    #: The run it continued to (continue-as-new, a retry, a reset), if any.
    continued_to_run_id: str | None = None


class ResetRequest(BaseModel):
    """Reset a run to a workflow task: a new run re-runs it on the current code."""

    run_id: str | None = None
    #: A WorkflowTaskCompleted, -Failed or -TimedOut event (or the -Started of
    #: a finished task): the run's history up to that task's start is kept.
    event_id: int | None = Field(default=None, ge=1, strict=True)
    #: Instead of event_id: "first-workflow-task" or "last-workflow-task"
    #: (FirstWorkflowTask, LastWorkflowTask, first and last are read as these).
    to: str | None = Field(default=None, max_length=64)
    #: What the old run received after the point and the new run takes again:
    #: "all" (signals and accepted updates, as Temporal's default), "signals"
    #: or "none".
    reapply: str = Field(default="all", pattern="^(all|signals|none)$")
    reason: str = Field(min_length=1, max_length=1000)
    #: A retried reset with the same id resets once.
    request_id: str | None = Field(default=None, min_length=1, max_length=256)
    identity: str = Field(default="", max_length=1000)

    @field_validator("to")
    @classmethod
    def _reset_point(cls, value: str | None) -> str | None:
        if value is None:
            return None
        key = value.lower().replace("-", "").replace("_", "")
        points = {
            "first": "first-workflow-task",
            "firstworkflowtask": "first-workflow-task",
            "last": "last-workflow-task",
            "lastworkflowtask": "last-workflow-task",
        }
        if key not in points:
            raise ValueError("to is first-workflow-task or last-workflow-task")
        return points[key]


class ResetResponse(BaseModel):
    workflow_id: str
    run_id: str
    reset_from_run_id: str | None = None
    #: False when a retried request id found the earlier reset.
    reset: bool


class CountResponse(BaseModel):
    count: int
    #: With group_by: one entry per value, largest first (the largest 1,000).
    groups: list[dict[str, Any]] = Field(default_factory=list)


class SearchAttributeRequest(BaseModel):
    name: str = Field(min_length=1, max_length=64)
    #: Keyword, Text, Int, Double, Bool, Datetime or KeywordList.
    type: str = Field(min_length=1, max_length=32)


class BatchOperationSpec(BaseModel):
    #: terminate, cancel, signal, reset (and kinds later versions add).
    kind: str = Field(min_length=1, max_length=64)
    #: signal: signal_name, input (encoded payloads); reset: to, reapply.
    params: dict[str, Any] = Field(default_factory=dict)


JOB_ID_PATTERN = r"^[A-Za-z0-9_.-]{1,64}$"
_JOB_ID = re.compile(JOB_ID_PATTERN)


class StartBatchRequest(BaseModel):
    query: str = Field(max_length=4096)
    operation: BatchOperationSpec
    #: Operations per second the job applies at most.
    rps: float = Field(default=50.0, ge=0.01, le=10_000, allow_inf_nan=False, strict=True)
    reason: str = Field(min_length=1, max_length=1000)
    job_id: str | None = Field(default=None, json_schema_extra={"pattern": JOB_ID_PATTERN})
    request_id: str | None = Field(default=None, min_length=1, max_length=256)
    identity: str = Field(default="", max_length=1000)

    @field_validator("job_id")
    @classmethod
    def _job_id(cls, value: str | None) -> str | None:
        # "." and ".." are path segments every HTTP client folds away: the
        # job's describe and stop URLs would name other routes
        if value is not None and (not _JOB_ID.fullmatch(value) or not value.strip(".")):
            raise PydanticCustomError(
                "job_id",
                "{job_id} is not a batch job id: use 1 to 64 letters, digits, '.', '_' and "
                "'-', not dots alone",
                {"job_id": repr(value[:70])},
            )
        return value


class StopBatchRequest(BaseModel):
    reason: str = Field(default="", max_length=1000)
