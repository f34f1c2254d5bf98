"""The wire contract between Baton servers and the SDK.

This is the one module both sides import: request and response bodies of the
HTTP API, the shapes of history events and workflow commands, and the stable
error codes. It depends on pydantic only, so a worker process never pulls in
anything server-side.

Payloads are opaque to the server: ``{"metadata": {str: str}, "data": base64}``.
History event attributes are plain JSON objects whose keys are documented next
to each event type below; payload-valued attributes hold wire payloads.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

PROTOCOL_VERSION = "v1"
#: Longest timeout or timer any request may ask for (ten years, in seconds).
MAX_DURATION_S = 10 * 365 * 24 * 3600.0
#: Longest namespace description.
MAX_DESCRIPTION_CHARS = 4096

# --------------------------------------------------------------------------- errors


class ErrorCode(StrEnum):
    """Stable error codes carried in every error body as ``error.code``."""

    MALFORMED_REQUEST = "MALFORMED_REQUEST"
    INVALID_ARGUMENT = "INVALID_ARGUMENT"
    PAYLOAD_TOO_LARGE = "PAYLOAD_TOO_LARGE"
    NAMESPACE_NOT_FOUND = "NAMESPACE_NOT_FOUND"
    NAMESPACE_ALREADY_EXISTS = "NAMESPACE_ALREADY_EXISTS"
    NAMESPACE_NOT_ACTIVE = "NAMESPACE_NOT_ACTIVE"
    NAMESPACE_IN_HANDOVER = "NAMESPACE_IN_HANDOVER"
    WORKFLOW_ALREADY_STARTED = "WORKFLOW_ALREADY_STARTED"
    WORKFLOW_NOT_FOUND = "WORKFLOW_NOT_FOUND"
    WORKFLOW_NOT_RUNNING = "WORKFLOW_NOT_RUNNING"
    TASK_NOT_FOUND = "TASK_NOT_FOUND"
    QUERY_FAILED = "QUERY_FAILED"
    QUERY_TIMED_OUT = "QUERY_TIMED_OUT"
    UPDATE_REJECTED = "UPDATE_REJECTED"
    UPDATE_FAILED = "UPDATE_FAILED"
    UPDATE_TIMED_OUT = "UPDATE_TIMED_OUT"
    SCHEMA_OUT_OF_DATE = "SCHEMA_OUT_OF_DATE"
    FAILOVER_TIMED_OUT = "FAILOVER_TIMED_OUT"
    FAILOVER_TARGET_BEHIND = "FAILOVER_TARGET_BEHIND"
    DEAD_LETTER_NOT_FOUND = "DEAD_LETTER_NOT_FOUND"
    CONFLICT_NOT_FOUND = "CONFLICT_NOT_FOUND"
    REPLICATION_APPLY_FAILED = "REPLICATION_APPLY_FAILED"
    #: A per-run limit (history length or size, signals, pending updates) is reached.
    LIMIT_EXCEEDED = "LIMIT_EXCEEDED"
    #: No such route: the URL names nothing this server serves.
    NOT_FOUND = "NOT_FOUND"
    #: The route exists but not for this HTTP method.
    METHOD_NOT_ALLOWED = "METHOD_NOT_ALLOWED"
    UNAVAILABLE = "UNAVAILABLE"
    INTERNAL = "INTERNAL"


#: Codes a client may retry as-is after a pause.
RETRYABLE_CODES = frozenset(
    {ErrorCode.NAMESPACE_IN_HANDOVER, ErrorCode.UNAVAILABLE, ErrorCode.QUERY_TIMED_OUT}
)


class ErrorBody(BaseModel):
    code: ErrorCode
    message: str
    retryable: bool = False
    details: dict[str, Any] = Field(default_factory=dict)


class ErrorResponse(BaseModel):
    error: ErrorBody


# --------------------------------------------------------------------------- payloads


class Payload(BaseModel):
    """An opaque value: metadata says how ``data`` (base64) is encoded."""

    model_config = ConfigDict(frozen=True)

    metadata: dict[str, str] = Field(default_factory=dict)
    data: str = ""


class Failure(BaseModel):
    """A failure as it travels and is stored: never a pickled exception.

    With a payload codec on, the SDK moves ``message`` and ``stack_trace`` into
    ``encoded_attributes`` (a payload the codec encodes, so servers only hold
    ciphertext) and leaves ``message`` as ``"Encoded failure"``; ``type`` and
    ``non_retryable`` stay readable, since the server's retry rules need them.
    """

    message: str
    type: str = "Error"
    stack_trace: str = ""
    non_retryable: bool = False
    details: list[Payload] = Field(default_factory=list)
    cause: Failure | None = None
    encoded_attributes: Payload | None = None


class RetryPolicyWire(BaseModel):
    initial_interval_s: float = 1.0
    backoff_coefficient: float = 2.0
    maximum_interval_s: float | None = None
    maximum_attempts: int = 0
    non_retryable_error_types: list[str] = Field(default_factory=list)


# --------------------------------------------------------------------------- events


class EventType(StrEnum):
    """History event types. Attribute keys per type are listed in comments."""

    # workflow_type, task_queue, input[], request_id, task_timeout_s,
    # run_timeout_s|None, continued_from_run_id|None, first_run_id, attempt,
    # memo{}, identity
    WORKFLOW_EXECUTION_STARTED = "WorkflowExecutionStarted"
    # task_queue, attempt, timeout_s
    WORKFLOW_TASK_SCHEDULED = "WorkflowTaskScheduled"
    # scheduled_event_id, identity, history_length, suggest_continue_as_new
    WORKFLOW_TASK_STARTED = "WorkflowTaskStarted"
    # scheduled_event_id, started_event_id, identity
    WORKFLOW_TASK_COMPLETED = "WorkflowTaskCompleted"
    # scheduled_event_id, started_event_id, cause, failure, identity
    WORKFLOW_TASK_FAILED = "WorkflowTaskFailed"
    # scheduled_event_id, started_event_id
    WORKFLOW_TASK_TIMED_OUT = "WorkflowTaskTimedOut"
    # activity_id, activity_type, task_queue, input[], schedule_to_close_s,
    # schedule_to_start_s, start_to_close_s, heartbeat_s, retry_policy,
    # workflow_task_completed_event_id
    ACTIVITY_TASK_SCHEDULED = "ActivityTaskScheduled"
    # scheduled_event_id, attempt, identity, last_failure|None
    ACTIVITY_TASK_STARTED = "ActivityTaskStarted"
    # scheduled_event_id, started_event_id, result|None, identity
    ACTIVITY_TASK_COMPLETED = "ActivityTaskCompleted"
    # scheduled_event_id, started_event_id, failure, identity
    ACTIVITY_TASK_FAILED = "ActivityTaskFailed"
    # scheduled_event_id, started_event_id|None, timeout_type, failure
    ACTIVITY_TASK_TIMED_OUT = "ActivityTaskTimedOut"
    # scheduled_event_id
    ACTIVITY_TASK_CANCEL_REQUESTED = "ActivityTaskCancelRequested"
    # scheduled_event_id, started_event_id|None, identity
    ACTIVITY_TASK_CANCELED = "ActivityTaskCanceled"
    # timer_id, duration_s, fire_at (ISO)
    TIMER_STARTED = "TimerStarted"
    # timer_id, started_event_id
    TIMER_FIRED = "TimerFired"
    # timer_id, started_event_id
    TIMER_CANCELED = "TimerCanceled"
    # marker_name, details{}
    MARKER_RECORDED = "MarkerRecorded"
    # signal_name, input[], identity, request_id|None
    WORKFLOW_EXECUTION_SIGNALED = "WorkflowExecutionSignaled"
    # update_id, name, input[], identity
    WORKFLOW_EXECUTION_UPDATE_ACCEPTED = "WorkflowExecutionUpdateAccepted"
    # update_id, result|None, failure|None
    WORKFLOW_EXECUTION_UPDATE_COMPLETED = "WorkflowExecutionUpdateCompleted"
    # reason, identity, request_id|None
    WORKFLOW_EXECUTION_CANCEL_REQUESTED = "WorkflowExecutionCancelRequested"
    # result|None
    WORKFLOW_EXECUTION_COMPLETED = "WorkflowExecutionCompleted"
    # failure
    WORKFLOW_EXECUTION_FAILED = "WorkflowExecutionFailed"
    # details|None
    WORKFLOW_EXECUTION_CANCELED = "WorkflowExecutionCanceled"
    # reason, identity, request_id|None
    WORKFLOW_EXECUTION_TERMINATED = "WorkflowExecutionTerminated"
    # new_run_id, workflow_type, task_queue, input[]
    WORKFLOW_EXECUTION_CONTINUED_AS_NEW = "WorkflowExecutionContinuedAsNew"
    # timeout_s
    WORKFLOW_EXECUTION_TIMED_OUT = "WorkflowExecutionTimedOut"


#: Events that close a run.
CLOSE_EVENTS = frozenset(
    {
        EventType.WORKFLOW_EXECUTION_COMPLETED,
        EventType.WORKFLOW_EXECUTION_FAILED,
        EventType.WORKFLOW_EXECUTION_CANCELED,
        EventType.WORKFLOW_EXECUTION_TERMINATED,
        EventType.WORKFLOW_EXECUTION_CONTINUED_AS_NEW,
        EventType.WORKFLOW_EXECUTION_TIMED_OUT,
    }
)


class HistoryEvent(BaseModel):
    event_id: int
    event_type: EventType
    event_time: str  # ISO 8601, UTC
    version: int  # failover version the event was written under
    attributes: dict[str, Any] = Field(default_factory=dict)


# --------------------------------------------------------------------------- commands


class CommandType(StrEnum):
    """Commands a workflow task completion carries, each with its attributes."""

    # activity_id, activity_type, task_queue|None, input[], schedule_to_close_s|None,
    # schedule_to_start_s|None, start_to_close_s|None, heartbeat_s|None, retry_policy|None
    SCHEDULE_ACTIVITY = "ScheduleActivity"
    # activity_id
    REQUEST_CANCEL_ACTIVITY = "RequestCancelActivity"
    # timer_id, duration_s
    START_TIMER = "StartTimer"
    # timer_id
    CANCEL_TIMER = "CancelTimer"
    # marker_name, details{}
    RECORD_MARKER = "RecordMarker"
    # update_id  (records WorkflowExecutionUpdateAccepted)
    ACCEPT_UPDATE = "AcceptUpdate"
    # update_id, failure  (no history event; the caller gets UPDATE_REJECTED)
    REJECT_UPDATE = "RejectUpdate"
    # update_id, result|None, failure|None
    COMPLETE_UPDATE = "CompleteUpdate"
    # result|None
    COMPLETE_WORKFLOW = "CompleteWorkflow"
    # failure
    FAIL_WORKFLOW = "FailWorkflow"
    # details|None
    CANCEL_WORKFLOW = "CancelWorkflow"
    # workflow_type|None, task_queue|None, input[], task_timeout_s|None, run_timeout_s|None
    CONTINUE_AS_NEW = "ContinueAsNew"


class Command(BaseModel):
    type: CommandType
    attributes: dict[str, Any] = Field(default_factory=dict)


_Name = Field(min_length=1, max_length=1000)
_Duration = Field(default=None, gt=0, le=MAX_DURATION_S)


class _Attributes(BaseModel):
    """Attributes of one command type: checked by the server, extra keys ignored."""

    model_config = ConfigDict(extra="ignore")


class ScheduleActivityAttributes(_Attributes):
    activity_id: str = _Name
    activity_type: str = _Name
    task_queue: str | None = Field(default=None, min_length=1, max_length=1000)
    input: list[Payload] = Field(default_factory=list)
    schedule_to_close_s: float | None = _Duration
    schedule_to_start_s: float | None = _Duration
    start_to_close_s: float | None = _Duration
    heartbeat_s: float | None = _Duration
    retry_policy: dict[str, Any] | None = None


class ActivityRefAttributes(_Attributes):
    activity_id: str = _Name


class StartTimerAttributes(_Attributes):
    timer_id: str = _Name
    duration_s: float = Field(ge=0, le=MAX_DURATION_S)


class TimerRefAttributes(_Attributes):
    timer_id: str = _Name


class RecordMarkerAttributes(_Attributes):
    marker_name: str = Field(default="", max_length=1000)
    details: dict[str, Any] = Field(default_factory=dict)


class UpdateRefAttributes(_Attributes):
    update_id: str = _Name
    failure: Failure | None = None
    result: Payload | None = None


class CompleteWorkflowAttributes(_Attributes):
    result: Payload | None = None


class FailWorkflowAttributes(_Attributes):
    failure: Failure


class ContinueAsNewAttributes(_Attributes):
    workflow_type: str | None = Field(default=None, min_length=1, max_length=1000)
    task_queue: str | None = Field(default=None, min_length=1, max_length=1000)
    input: list[Payload] = Field(default_factory=list)
    task_timeout_s: float | None = Field(default=None, gt=0, le=3600)
    run_timeout_s: float | None = _Duration


#: The attribute shape the server checks for each command type.
COMMAND_ATTRIBUTES: dict[CommandType, type[BaseModel]] = {
    CommandType.SCHEDULE_ACTIVITY: ScheduleActivityAttributes,
    CommandType.REQUEST_CANCEL_ACTIVITY: ActivityRefAttributes,
    CommandType.START_TIMER: StartTimerAttributes,
    CommandType.CANCEL_TIMER: TimerRefAttributes,
    CommandType.RECORD_MARKER: RecordMarkerAttributes,
    CommandType.ACCEPT_UPDATE: UpdateRefAttributes,
    CommandType.REJECT_UPDATE: UpdateRefAttributes,
    CommandType.COMPLETE_UPDATE: UpdateRefAttributes,
    CommandType.COMPLETE_WORKFLOW: CompleteWorkflowAttributes,
    CommandType.FAIL_WORKFLOW: FailWorkflowAttributes,
    CommandType.CANCEL_WORKFLOW: _Attributes,
    CommandType.CONTINUE_AS_NEW: ContinueAsNewAttributes,
}


# --------------------------------------------------------------------------- namespaces


class NamespaceInfo(BaseModel):
    name: str
    regions: list[str]
    active_region: str
    failover_version: int
    state: str
    retention_days: int
    description: str = ""


class CreateNamespaceRequest(BaseModel):
    name: str = Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    regions: list[str] | None = None
    active_region: str | None = None
    retention_days: int = Field(default=7, ge=1, le=3650)
    #: Kept short: it travels with every replication message of the namespace.
    description: str = Field(default="", max_length=MAX_DESCRIPTION_CHARS)


# --------------------------------------------------------------------------- workflows


class WorkflowIdReusePolicy(StrEnum):
    """What a start does when closed runs of the same workflow id exist."""

    ALLOW_DUPLICATE = "allow_duplicate"
    ALLOW_DUPLICATE_FAILED_ONLY = "allow_duplicate_failed_only"
    REJECT_DUPLICATE = "reject_duplicate"
    TERMINATE_IF_RUNNING = "terminate_if_running"


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
    task_queue: str = Field(min_length=1, max_length=1000)
    input: list[Payload] = Field(default_factory=list)
    #: A retried start with the same id starts nothing new (kept for the
    #: namespace's retention period, in every region of the namespace).
    request_id: str | None = Field(default=None, min_length=1, max_length=256)
    id_reuse_policy: WorkflowIdReusePolicy = WorkflowIdReusePolicy.ALLOW_DUPLICATE
    task_timeout_s: float = Field(default=10.0, gt=0, le=3600)
    run_timeout_s: float | None = Field(default=None, gt=0, le=MAX_DURATION_S)
    memo: dict[str, Any] = Field(default_factory=dict)
    identity: str = Field(default="", max_length=1000)


class StartWorkflowResponse(BaseModel):
    workflow_id: str
    run_id: str
    started: bool  # False when a retried request id found the earlier start


class SignalRequest(BaseModel):
    signal_name: str = Field(min_length=1, max_length=1000)
    input: list[Payload] = Field(default_factory=list)
    run_id: str | None = None
    #: A retried signal with the same id is applied once.
    request_id: str | None = Field(default=None, min_length=1, max_length=256)
    identity: str = Field(default="", max_length=1000)


class SignalWithStartRequest(StartWorkflowRequest):
    signal_name: str = Field(min_length=1, max_length=1000)
    signal_input: list[Payload] = Field(default_factory=list)


class QueryRequest(BaseModel):
    query_name: str = Field(min_length=1, max_length=1000)
    input: list[Payload] = Field(default_factory=list)
    run_id: str | None = None
    timeout_s: float = Field(default=10.0, gt=0, le=300)


class QueryResponse(BaseModel):
    result: Payload | None = None


class UpdateRequest(BaseModel):
    update_id: str | None = None
    name: str = Field(min_length=1, max_length=1000)
    input: list[Payload] = Field(default_factory=list)
    run_id: str | None = None
    timeout_s: float = Field(default=30.0, gt=0, le=3600)
    identity: str = Field(default="", max_length=1000)


class UpdateResponse(BaseModel):
    update_id: str
    state: str  # completed
    result: Payload | None = None


class CancelRequest(BaseModel):
    run_id: str | None = None
    reason: str = ""
    #: A retried cancel with the same id is applied once.
    request_id: str | None = Field(default=None, min_length=1, max_length=256)
    identity: str = Field(default="", max_length=1000)


class TerminateRequest(BaseModel):
    run_id: str | None = None
    reason: str = ""
    #: A retried terminate with the same id is applied once.
    request_id: str | None = Field(default=None, min_length=1, max_length=256)
    identity: str = Field(default="", max_length=1000)


class PendingActivity(BaseModel):
    activity_id: str
    activity_type: str
    state: str
    attempt: int
    scheduled_event_id: int
    last_failure: Failure | None = None
    heartbeat_details: list[Payload] | None = None
    last_heartbeat_time: str | None = None


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


class DescribeResponse(BaseModel):
    execution: WorkflowExecutionInfo
    #: The run nears a limit (history length or size, signals): continue-as-new.
    warnings: list[str] = Field(default_factory=list)
    pending_activities: list[PendingActivity] = Field(default_factory=list)
    pending_timers: list[dict[str, Any]] = Field(default_factory=list)
    pending_workflow_task: dict[str, Any] | None = None


class HistoryResponse(BaseModel):
    run_id: str
    events: list[HistoryEvent]
    next_event_id: int
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


# --------------------------------------------------------------------------- tasks


class PollRequest(BaseModel):
    task_queue: str = Field(min_length=1, max_length=1000)
    identity: str = Field(default="", max_length=1000)
    wait_s: float = Field(default=30.0, ge=0, le=120)
    build_id: str | None = None


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


class WorkflowTaskPollResponse(BaseModel):
    task: WorkflowTask | None = None


class RespondWorkflowTaskCompleted(BaseModel):
    task_token: str
    commands: list[Command] = Field(default_factory=list)
    identity: str = Field(default="", max_length=1000)
    #: Ask the server to hand this worker the activity tasks it schedules on
    #: its own queue directly in the response (saves a poll round trip).
    eager_activities: int = Field(default=0, ge=0, le=100)
    #: Ask for the next workflow task of this run in the response if one is
    #: already due (saves a poll round trip and keeps the worker's cache hot).
    return_new_workflow_task: bool = False
    #: The worker keeps the run cached and polls this queue: the run's next
    #: workflow tasks go there first, and to the run's own task queue if no
    #: poller of it takes them within ``sticky_schedule_to_start_s``.
    sticky_task_queue: str | None = Field(default=None, min_length=1, max_length=1000)
    sticky_schedule_to_start_s: float = Field(default=5.0, gt=0, le=60)


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


class RespondWorkflowTaskCompletedResponse(BaseModel):
    activity_tasks: list[ActivityTask] = Field(default_factory=list)
    workflow_task: WorkflowTask | None = None


class RespondWorkflowTaskFailed(BaseModel):
    task_token: str
    failure: Failure
    cause: str = "WorkflowTaskFailed"  # or NonDeterminism
    identity: str = Field(default="", max_length=1000)


class CloseStickyQueueRequest(BaseModel):
    """A worker that shuts down closes its sticky queue."""

    sticky_task_queue: str = Field(min_length=1, max_length=1000)


class RespondQueryTask(BaseModel):
    task_token: str
    result: Payload | None = None
    failure: Failure | None = None


class ActivityTaskPollResponse(BaseModel):
    task: ActivityTask | None = None


class RespondActivityTaskCompleted(BaseModel):
    task_token: str
    result: Payload | None = None
    identity: str = Field(default="", max_length=1000)


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


class HeartbeatRequest(BaseModel):
    task_token: str
    details: list[Payload] | None = None


class HeartbeatResponse(BaseModel):
    cancel_requested: bool = False


class ClusterInfo(BaseModel):
    region: str
    url: str
    regions: dict[str, str]  # region name -> URL
    schema_version: int
    server_version: str
    max_payload_bytes: int
