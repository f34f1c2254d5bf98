"""Baton's SDK: workflows, activities, the worker and the client.

A worker process imports this package only: it talks to Baton servers over
HTTP and never needs a database driver or a Kafka client.
"""

from __future__ import annotations

from worker import activity, workflow
from worker._client_schedules import ScheduleHandle
from worker._client_visibility import WorkflowExecution
from worker._config_file import endpoints_from_config
from worker._worker import Worker
from worker.client import Client, WorkflowHandle
from worker.codec import AesGcmCodec
from worker.common import RetryPolicy
from worker.converter import DataConverter, PayloadCodec, PayloadConverter
from worker.errors import (
    ActivityError,
    ApplicationError,
    BatonError,
    CanceledError,
    NonDeterminismError,
    WorkflowFailureError,
)
from worker.wire import WorkflowIdConflictPolicy, WorkflowIdReusePolicy

__all__ = [
    "ActivityError",
    "AesGcmCodec",
    "ApplicationError",
    "BatonError",
    "CanceledError",
    "Client",
    "DataConverter",
    "NonDeterminismError",
    "PayloadCodec",
    "PayloadConverter",
    "RetryPolicy",
    "ScheduleHandle",
    "Worker",
    "WorkflowExecution",
    "WorkflowFailureError",
    "WorkflowHandle",
    "WorkflowIdConflictPolicy",
    "WorkflowIdReusePolicy",
    "activity",
    "endpoints_from_config",
    "workflow",
]
