"""Commands a workflow task completion carries, and the attributes the server checks."""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from worker.wire.common import (
    MAX_DESCRIPTION_CHARS,
    MAX_DURATION_S,
    TASK_QUEUE_MAX_CHARS,
    Failure,
    Payload,
)


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
    # search_attributes{name: value|None}  (None removes the attribute)
    UPSERT_SEARCH_ATTRIBUTES = "UpsertSearchAttributes"
    # upserted_memo{key: payload|None}  (None removes the key), as Temporal's
    # command of that name records WorkflowPropertiesModified
    MODIFY_WORKFLOW_PROPERTIES = "ModifyWorkflowProperties"
    # reason  (records WorkflowExecutionPaused: the run stops after this task)
    PAUSE_WORKFLOW = "PauseWorkflow"


class Command(BaseModel):
    type: CommandType
    attributes: dict[str, Any] = Field(default_factory=dict)


_Name = Field(min_length=1, max_length=1000)
_Duration = Field(default=None, gt=0, le=MAX_DURATION_S, strict=True)


class _Attributes(BaseModel):
    """Attributes of one command type: checked by the server, extra keys ignored."""

    model_config = ConfigDict(extra="ignore")


class ScheduleActivityAttributes(_Attributes):
    activity_id: str = _Name
    activity_type: str = _Name
    task_queue: str | None = Field(default=None, min_length=1, max_length=TASK_QUEUE_MAX_CHARS)
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
    duration_s: float = Field(ge=0, le=MAX_DURATION_S, strict=True)


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
    task_queue: str | None = Field(default=None, min_length=1, max_length=TASK_QUEUE_MAX_CHARS)
    input: list[Payload] = Field(default_factory=list)
    task_timeout_s: float | None = Field(default=None, gt=0, le=3600, strict=True)
    run_timeout_s: float | None = _Duration
    #: Worker versioning: "auto-upgrade" sends the new run to its deployment's
    #: target version (a pinned run moving to a new build).
    versioning: Literal["auto-upgrade"] | None = None
    #: The new run's search attributes in place of this run's (None: this run's).
    search_attributes: dict[str, Any] | None = Field(default=None, max_length=100)
    #: The new run's memo (payloads) in place of this run's (None: this run's).
    memo: dict[str, Any] | None = None


class PauseWorkflowAttributes(_Attributes):
    reason: str = Field(default="", max_length=MAX_DESCRIPTION_CHARS)


class UpsertSearchAttributesAttributes(_Attributes):
    search_attributes: dict[str, Any] = Field(min_length=1, max_length=100)


class ModifyWorkflowPropertiesAttributes(_Attributes):
    upserted_memo: dict[str, Payload | None] = Field(min_length=1, max_length=1000)


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
    CommandType.UPSERT_SEARCH_ATTRIBUTES: UpsertSearchAttributesAttributes,
    CommandType.PAUSE_WORKFLOW: PauseWorkflowAttributes,
    CommandType.MODIFY_WORKFLOW_PROPERTIES: ModifyWorkflowPropertiesAttributes,
}
