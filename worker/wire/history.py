"""History events: their types (with each type's attribute keys) and shape."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field


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
    # search_attributes{name: value|None}: the change a workflow asked for
    UPSERT_WORKFLOW_SEARCH_ATTRIBUTES = "UpsertWorkflowSearchAttributes"
    # upserted_memo{key: payload|None}: the memo change a workflow asked for
    WORKFLOW_PROPERTIES_MODIFIED = "WorkflowPropertiesModified"
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
    # versioning_override{kind, deployment, build_id}|None, reason, identity,
    # request_id|None: an operator changed how the run is routed
    WORKFLOW_EXECUTION_OPTIONS_UPDATED = "WorkflowExecutionOptionsUpdated"
    # reason, identity, request_id|None, source ("operator", "workflow": the
    # workflow's own pause command, "failure": after failed workflow tasks),
    # workflow_task_completed_event_id (source "workflow")
    WORKFLOW_EXECUTION_PAUSED = "WorkflowExecutionPaused"
    # reason, identity, request_id|None
    WORKFLOW_EXECUTION_UNPAUSED = "WorkflowExecutionUnpaused"
    # scheduled_event_id, activity_id, reason, identity, request_id|None,
    # source ("operator", "retries": its retry policy says pause at max attempts)
    ACTIVITY_TASK_PAUSED = "ActivityTaskPaused"
    # scheduled_event_id, activity_id, reason, identity, request_id|None
    ACTIVITY_TASK_UNPAUSED = "ActivityTaskUnpaused"
    # scheduled_event_id, activity_id, reason, identity, request_id|None,
    # keep_heartbeat_details, keep_paused, pending (an attempt was running: the
    # reset applies when it ends)
    ACTIVITY_TASK_RESET = "ActivityTaskReset"


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
