"""``activity.info()`` and ``workflow.info()`` answer to Temporal's names too,
so code written against Temporal's SDK reads the same values."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from worker._workflow_api import WorkflowInfo
from worker.activity import ActivityInfo

WHEN = datetime(2026, 1, 1, tzinfo=UTC)


def test_activity_info_has_temporal_s_workflow_run_id_and_namespace() -> None:
    """Regression: ``activity.info().workflow_run_id`` (Temporal's name) was an
    AttributeError: the field is ``run_id`` here."""
    info = ActivityInfo(
        namespace="payments",
        workflow_id="order-1",
        run_id="r-1",
        workflow_type="Order",
        activity_id="1",
        activity_type="charge",
        task_queue="orders",
        attempt=1,
        heartbeat_details=(),
        scheduled_time=WHEN,
        current_attempt_scheduled_time=WHEN,
        started_time=WHEN,
        start_to_close_timeout=timedelta(seconds=30),
        schedule_to_close_timeout=None,
        heartbeat_timeout=None,
    )
    assert info.workflow_run_id == "r-1"
    assert info.workflow_namespace == "payments"


def test_workflow_info_has_temporal_s_continued_run_id() -> None:
    info = WorkflowInfo(
        namespace="payments",
        workflow_id="order-1",
        run_id="r-2",
        workflow_type="Order",
        task_queue="orders",
        attempt=1,
        first_run_id="r-1",
        continued_from_run_id="r-1",
        history_length=3,
        start_time=WHEN,
    )
    assert info.continued_run_id == "r-1"
    assert info.first_execution_run_id == "r-1"
    fresh = WorkflowInfo(
        namespace="payments",
        workflow_id="order-2",
        run_id="r-3",
        workflow_type="Order",
        task_queue="orders",
        attempt=1,
        first_run_id="r-3",
        continued_from_run_id=None,
        history_length=3,
        start_time=WHEN,
    )
    assert fresh.continued_run_id is None


def test_workflow_info_has_temporal_s_parent_and_root_and_cron_schedule() -> None:
    """Regression: ``workflow.info().parent`` (checked by code ported from
    Temporal to tell a child run) was an AttributeError; a run here is never
    a child. ``cron_schedule`` is None for a run started without one."""
    info = WorkflowInfo(
        namespace="payments",
        workflow_id="order-1",
        run_id="r-1",
        workflow_type="Order",
        task_queue="orders",
        attempt=1,
        first_run_id="r-1",
        continued_from_run_id=None,
        history_length=3,
        start_time=WHEN,
    )
    assert info.parent is None
    assert info.root is None
    assert info.cron_schedule is None
