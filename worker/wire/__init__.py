"""The wire contract between Baton servers and the SDK.

This is the one package both sides import: request and response bodies of the
HTTP API, the shapes of history events and workflow commands, and the stable
error codes. It depends on pydantic only, so a worker process never pulls in
anything server-side.

Payloads are opaque to the server: ``{"metadata": {str: str}, "data": base64}``.
History event attributes are plain JSON objects whose keys are documented next
to each event type (``worker.wire.history``); payload-valued attributes hold
wire payloads.

The contract is split by concept into the modules of this package (codes,
common, history, commands, requests, tasks); every name is re-exported here,
so ``from worker.wire import X`` reads the same whichever module defines it.
"""

from __future__ import annotations

from worker.wire.codes import (
    RETRYABLE_CODES,
    ErrorBody,
    ErrorCode,
    ErrorResponse,
)
from worker.wire.commands import (
    COMMAND_ATTRIBUTES,
    ActivityRefAttributes,
    Command,
    CommandType,
    CompleteWorkflowAttributes,
    ContinueAsNewAttributes,
    FailWorkflowAttributes,
    RecordMarkerAttributes,
    ScheduleActivityAttributes,
    StartTimerAttributes,
    TimerRefAttributes,
    UpdateRefAttributes,
)
from worker.wire.common import (
    MAX_DESCRIPTION_CHARS,
    MAX_DURATION_S,
    PROTOCOL_VERSION,
    Failure,
    Payload,
    RetryPolicyWire,
)
from worker.wire.history import (
    CLOSE_EVENTS,
    EventType,
    HistoryEvent,
)
from worker.wire.requests import (
    BufferedInput,
    BufferedResponse,
    CancelRequest,
    ConflictEventsResponse,
    CreateNamespaceRequest,
    DescribeResponse,
    HistoryResponse,
    ListResponse,
    NamespaceInfo,
    PendingActivity,
    QueryRequest,
    QueryResponse,
    ResultResponse,
    SignalRequest,
    SignalWithStartRequest,
    StartWorkflowRequest,
    StartWorkflowResponse,
    TerminateRequest,
    UpdateRequest,
    UpdateResponse,
    WorkflowExecutionInfo,
    WorkflowIdReusePolicy,
    WorkflowStatus,
)
from worker.wire.tasks import (
    ActivityTask,
    ActivityTaskPollResponse,
    CloseStickyQueueRequest,
    ClusterInfo,
    HeartbeatRequest,
    HeartbeatResponse,
    PollRequest,
    RespondActivityResponse,
    RespondActivityTaskCanceled,
    RespondActivityTaskCompleted,
    RespondActivityTaskFailed,
    RespondQueryTask,
    RespondWorkflowTaskCompleted,
    RespondWorkflowTaskCompletedResponse,
    RespondWorkflowTaskFailed,
    WorkflowTask,
    WorkflowTaskPollResponse,
)

__all__ = [
    "CLOSE_EVENTS",
    "COMMAND_ATTRIBUTES",
    "MAX_DESCRIPTION_CHARS",
    "MAX_DURATION_S",
    "PROTOCOL_VERSION",
    "RETRYABLE_CODES",
    "ActivityRefAttributes",
    "ActivityTask",
    "ActivityTaskPollResponse",
    "BufferedInput",
    "BufferedResponse",
    "CancelRequest",
    "CloseStickyQueueRequest",
    "ClusterInfo",
    "Command",
    "CommandType",
    "CompleteWorkflowAttributes",
    "ConflictEventsResponse",
    "ContinueAsNewAttributes",
    "CreateNamespaceRequest",
    "DescribeResponse",
    "ErrorBody",
    "ErrorCode",
    "ErrorResponse",
    "EventType",
    "FailWorkflowAttributes",
    "Failure",
    "HeartbeatRequest",
    "HeartbeatResponse",
    "HistoryEvent",
    "HistoryResponse",
    "ListResponse",
    "NamespaceInfo",
    "Payload",
    "PendingActivity",
    "PollRequest",
    "QueryRequest",
    "QueryResponse",
    "RecordMarkerAttributes",
    "RespondActivityResponse",
    "RespondActivityTaskCanceled",
    "RespondActivityTaskCompleted",
    "RespondActivityTaskFailed",
    "RespondQueryTask",
    "RespondWorkflowTaskCompleted",
    "RespondWorkflowTaskCompletedResponse",
    "RespondWorkflowTaskFailed",
    "ResultResponse",
    "RetryPolicyWire",
    "ScheduleActivityAttributes",
    "SignalRequest",
    "SignalWithStartRequest",
    "StartTimerAttributes",
    "StartWorkflowRequest",
    "StartWorkflowResponse",
    "TerminateRequest",
    "TimerRefAttributes",
    "UpdateRefAttributes",
    "UpdateRequest",
    "UpdateResponse",
    "WorkflowExecutionInfo",
    "WorkflowIdReusePolicy",
    "WorkflowStatus",
    "WorkflowTask",
    "WorkflowTaskPollResponse",
]
