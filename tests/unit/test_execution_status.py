"""The SDK's WorkflowExecutionStatus names every status the API gives."""

from __future__ import annotations

from worker import WorkflowExecutionStatus
from worker.wire.requests import WorkflowStatus


def test_the_sdks_statuses_are_the_apis() -> None:
    assert [s.value for s in WorkflowExecutionStatus] == [s.value for s in WorkflowStatus]
    assert [s.name for s in WorkflowExecutionStatus] == [s.name for s in WorkflowStatus]
    assert WorkflowExecutionStatus.TIMED_OUT == "timed_out"
    assert repr(WorkflowExecutionStatus("running")).startswith("<WorkflowExecutionStatus.RUNNING")
