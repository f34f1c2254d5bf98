"""Request and answer bodies of the schedule API (``/v1/namespaces/{ns}/schedules``).

A schedule's definition (``spec``, ``action``, ``policy``) is a plain object
checked by the server (``scheduler/definition.py`` documents its shape), so
its errors name the field the way an operator wrote it.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, Field


def mode_name(value: Any) -> Any:
    """An overlap or catch-up mode as Baton spells it (``buffer-one``), from
    the spellings a Temporal user writes too: ``buffer_one``, ``BUFFER_ONE``,
    ``SCHEDULE_OVERLAP_POLICY_BUFFER_ONE``. Anything else is left as it is,
    for the check that refuses it to name it."""
    if not isinstance(value, str):
        return value
    name = value.strip().lower().replace("_", "-")
    for prefix in ("schedule-overlap-policy-", "overlap-policy-"):
        name = name.removeprefix(prefix)
    return name


Overlap = Annotated[
    Literal["skip", "buffer-one", "buffer-all", "cancel-other", "terminate-other", "allow-all"],
    BeforeValidator(mode_name),
]


class CreateScheduleRequest(BaseModel):
    schedule_id: str = Field(min_length=1, max_length=200)
    schedule: dict[str, Any]
    #: Start paused, with this note.
    paused: bool = Field(default=False, strict=True)
    note: str = Field(default="", max_length=1000)
    #: Custom search attributes of the schedule itself (list --query finds it by them).
    search_attributes: dict[str, Any] = Field(default_factory=dict)
    request_id: str | None = Field(default=None, min_length=1, max_length=256)
    identity: str = Field(default="", max_length=1000)


class UpdateScheduleRequest(BaseModel):
    schedule: dict[str, Any]
    #: Create the schedule if it does not exist (upsert).
    create: bool = Field(default=False, strict=True)
    request_id: str | None = Field(default=None, min_length=1, max_length=256)
    identity: str = Field(default="", max_length=1000)


class PauseScheduleRequest(BaseModel):
    note: str = Field(default="", max_length=1000)
    request_id: str | None = Field(default=None, min_length=1, max_length=256)
    identity: str = Field(default="", max_length=1000)


class UnpauseScheduleRequest(PauseScheduleRequest):
    #: Act on the fires the pause passed over, this once, by this catch-up mode;
    #: without it they are counted as missed.
    catch_up: Annotated[Literal["all", "latest", "none"], BeforeValidator(mode_name)] | None = None


class TriggerScheduleRequest(BaseModel):
    #: The overlap policy for this action; the schedule's if None.
    overlap: Overlap | None = None
    request_id: str | None = Field(default=None, min_length=1, max_length=256)
    identity: str = Field(default="", max_length=1000)


class BackfillScheduleRequest(BaseModel):
    #: RFC 3339 times; the spec's fires with start <= time <= end are acted on.
    start: str
    end: str
    overlap: Overlap = "buffer-all"
    request_id: str | None = Field(default=None, min_length=1, max_length=256)
    identity: str = Field(default="", max_length=1000)


class AdvanceClockRequest(BaseModel):
    """Move a test-clock server's time forward (``test_clock = true`` only)."""

    seconds: float = Field(ge=0, le=100 * 366 * 86400)


# ---------------------------------------------------------------- answers


class CreateScheduleResponse(BaseModel):
    schedule_id: str
    #: The run of the schedule's workflow (``schedule/ID``).
    run_id: str
    #: False: a retry of this create (its request id) found the schedule it made.
    created: bool


class ScheduleSummary(BaseModel):
    schedule_id: str
    paused: bool | None
    note: str | None
    workflow_type: str
    overlap: str
    next_fire: str | None
    running: int
    actions: int
    start_time: str


class ListSchedulesResponse(BaseModel):
    schedules: list[ScheduleSummary]
    next_page_token: str | None


class ScheduleDescription(BaseModel):
    """A schedule as ``GET .../schedules/{id}`` gives it (``scheduler/definition.py``
    documents ``schedule``: spec, action, policy)."""

    schedule_id: str
    workflow_id: str
    run_id: str
    schedule: dict[str, Any] | None
    created_at: str | None = None
    paused: bool
    note: str
    paused_at: str | None = None
    last_processed: str | None = None
    counters: dict[str, int]
    remaining_actions: int | None = None
    recent: list[dict[str, Any]] = []
    running: list[dict[str, Any]] = []
    running_count: int = 0
    buffer: list[Any] = []
    buffered: int = 0
    pending_signals: int = 0
    next_fires: list[str] = []
    next_action_times: list[str] = []


class UpdateScheduleResponse(BaseModel):
    schedule_id: str
    updated: bool
    #: True where ``create`` made the schedule (it did not exist).
    created: bool


class PauseScheduleResponse(BaseModel):
    schedule_id: str
    paused: bool
    note: str


class UnpauseScheduleResponse(BaseModel):
    schedule_id: str
    paused: bool
    catch_up: str | None


class TriggerScheduleResponse(BaseModel):
    schedule_id: str
    triggered: bool
    #: The run the action starts (as the overlap policy lets it).
    workflow_id: str | None
    nominal: str | None
    request_id: str


class BackfillScheduleResponse(BaseModel):
    schedule_id: str
    fires: int
    overlap: str
    #: The first 100 fires' workflow ids.
    workflow_ids: list[str]


class DeleteScheduleResponse(BaseModel):
    schedule_id: str
    deleted: bool
