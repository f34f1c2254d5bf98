"""How commands and history events correspond, for replay and its error messages.

Every command but RejectUpdate is recorded by the server as one "command
event" right after the WorkflowTaskCompleted of the task that issued it. On
replay the commands the code issues again must match those events one for
one, in order; this module says which event a command becomes, whether a pair
matches, and how to name both in a non-determinism message.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pydantic import Field, SkipValidation, TypeAdapter

from worker._limits import failed_for_size
from worker.wire import Command, CommandType, EventType, HistoryEvent

PATCH_MARKER = "patch"


# EventType's members as plain class attributes (``Kind.X is EventType.X``),
# for the per-event paths of a replay. EnumType defines ``__getattr__``, so
# every ``EventType.X`` goes through Python-level attribute lookup (about
# 0.2 µs in 3.11, ten times a plain class attribute), and a replay of a long
# history reads them millions of times. Type checkers see EventType itself.
if TYPE_CHECKING:
    Kind = EventType
else:
    Kind = type("Kind", (), dict(EventType.__members__))


#: The event each command is recorded as.
EVENT_OF_COMMAND: Mapping[CommandType, EventType] = {
    CommandType.SCHEDULE_ACTIVITY: EventType.ACTIVITY_TASK_SCHEDULED,
    CommandType.REQUEST_CANCEL_ACTIVITY: EventType.ACTIVITY_TASK_CANCEL_REQUESTED,
    CommandType.START_TIMER: EventType.TIMER_STARTED,
    CommandType.CANCEL_TIMER: EventType.TIMER_CANCELED,
    CommandType.RECORD_MARKER: EventType.MARKER_RECORDED,
    CommandType.ACCEPT_UPDATE: EventType.WORKFLOW_EXECUTION_UPDATE_ACCEPTED,
    CommandType.COMPLETE_UPDATE: EventType.WORKFLOW_EXECUTION_UPDATE_COMPLETED,
    CommandType.COMPLETE_WORKFLOW: EventType.WORKFLOW_EXECUTION_COMPLETED,
    CommandType.FAIL_WORKFLOW: EventType.WORKFLOW_EXECUTION_FAILED,
    CommandType.CANCEL_WORKFLOW: EventType.WORKFLOW_EXECUTION_CANCELED,
    CommandType.CONTINUE_AS_NEW: EventType.WORKFLOW_EXECUTION_CONTINUED_AS_NEW,
    CommandType.UPSERT_SEARCH_ATTRIBUTES: EventType.UPSERT_WORKFLOW_SEARCH_ATTRIBUTES,
    CommandType.PAUSE_WORKFLOW: EventType.WORKFLOW_EXECUTION_PAUSED,
    CommandType.MODIFY_WORKFLOW_PROPERTIES: EventType.WORKFLOW_PROPERTIES_MODIFIED,
}

#: Events that only a command produces (a pause also comes from operators:
#: see :func:`is_command_event`).
COMMAND_EVENTS = frozenset(EVENT_OF_COMMAND.values()) - {EventType.WORKFLOW_EXECUTION_PAUSED}


def is_command_event(event: HistoryEvent) -> bool:
    """Whether ``event`` records a command of the workflow's code."""
    if event.event_type == Kind.WORKFLOW_EXECUTION_PAUSED:
        # The run's own pause names the task that commanded it; one a
        # continue-as-new carried over from the previous run's code does not.
        return (
            event.attributes.get("source") == "workflow"
            and event.attributes.get("workflow_task_completed_event_id") is not None
        )
    return event.event_type in COMMAND_EVENTS


#: Command events that close the run: nothing of the run follows them.
CLOSE_COMMAND_EVENTS = frozenset(
    {
        EventType.WORKFLOW_EXECUTION_COMPLETED,
        EventType.WORKFLOW_EXECUTION_FAILED,
        EventType.WORKFLOW_EXECUTION_CANCELED,
        EventType.WORKFLOW_EXECUTION_CONTINUED_AS_NEW,
    }
)

#: Commands that close the run.
CLOSE_COMMANDS = frozenset(
    {
        CommandType.COMPLETE_WORKFLOW,
        CommandType.FAIL_WORKFLOW,
        CommandType.CANCEL_WORKFLOW,
        CommandType.CONTINUE_AS_NEW,
    }
)

#: Events the workflow code reacts to; delivered at the next activation.
INPUT_EVENTS = frozenset(
    {
        EventType.ACTIVITY_TASK_COMPLETED,
        EventType.ACTIVITY_TASK_FAILED,
        EventType.ACTIVITY_TASK_TIMED_OUT,
        EventType.ACTIVITY_TASK_CANCELED,
        EventType.TIMER_FIRED,
        EventType.WORKFLOW_EXECUTION_SIGNALED,
        EventType.WORKFLOW_EXECUTION_CANCEL_REQUESTED,
    }
)

#: Attributes that identify a command (and its event) in matching and messages.
_KEYS: Mapping[EventType, tuple[str, ...]] = {
    EventType.ACTIVITY_TASK_SCHEDULED: ("activity_type", "activity_id"),
    EventType.ACTIVITY_TASK_CANCEL_REQUESTED: ("activity_id",),
    EventType.TIMER_STARTED: ("timer_id",),
    EventType.TIMER_CANCELED: ("timer_id",),
    EventType.MARKER_RECORDED: ("marker_name",),
    EventType.WORKFLOW_EXECUTION_UPDATE_ACCEPTED: ("update_id",),
    EventType.WORKFLOW_EXECUTION_UPDATE_COMPLETED: ("update_id",),
}

ActivityIdOf = Callable[[int], "str | None"]


class _ArrivedEvent(HistoryEvent):
    """A HistoryEvent whose attributes object is taken as it arrived, not copied.

    Validating ``dict[str, Any]`` builds a second dict per event; a replay of
    a long history has no use for the copy.
    """

    attributes: SkipValidation[dict[str, Any]] = Field(default_factory=dict)


_EVENTS = TypeAdapter(list[HistoryEvent])
_ARRIVED = TypeAdapter(list[_ArrivedEvent])


def events_from_wire(events: list[dict[str, Any]]) -> list[HistoryEvent]:
    """Wire events as typed events, validated in one call (a history can be long)."""
    typed: list[HistoryEvent] = list(_ARRIVED.validate_python(events))
    if all(type(e.attributes) is dict for e in typed):
        return typed
    return _EVENTS.validate_python(events)  # says what is wrong, as it always did


def parse_time(value: str) -> datetime:
    """An ISO 8601 event time as a tz-aware UTC datetime (naive times are UTC)."""
    parsed = datetime.fromisoformat(value)
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def is_patch_marker(event: HistoryEvent) -> bool:
    return (
        event.event_type == EventType.MARKER_RECORDED
        and event.attributes.get("marker_name") == PATCH_MARKER
    )


def patch_id_of(attributes: Mapping[str, Any]) -> str | None:
    details = attributes.get("details")
    if isinstance(details, Mapping):
        value = details.get("patch_id")
        return value if isinstance(value, str) else None
    return None


def _key_values(
    kind: EventType, attributes: Mapping[str, Any], activity_id_of: ActivityIdOf
) -> dict[str, Any]:
    values = {key: attributes.get(key) for key in _KEYS.get(kind, ())}
    if kind == EventType.ACTIVITY_TASK_CANCEL_REQUESTED and "activity_id" not in attributes:
        scheduled = attributes.get("scheduled_event_id")
        values["activity_id"] = activity_id_of(scheduled) if isinstance(scheduled, int) else None
    if kind == EventType.MARKER_RECORDED and attributes.get("marker_name") == PATCH_MARKER:
        values["patch_id"] = patch_id_of(attributes)
    return values


def _format(name: str, values: Mapping[str, Any]) -> str:
    return f"{name}({', '.join(f'{k}={v}' for k, v in values.items())})"


def describe_command(command: Command) -> str:
    """E.g. ``ScheduleActivity(activity_type=step, activity_id=1)``."""
    kind = EVENT_OF_COMMAND.get(command.type)
    values = {} if kind is None else _key_values(kind, command.attributes, lambda _: None)
    return _format(command.type.value, values)


def describe_event(event: HistoryEvent, activity_id_of: ActivityIdOf) -> str:
    """E.g. ``ActivityTaskScheduled(activity_type=step, activity_id=1)``."""
    return _format(
        event.event_type.value, _key_values(event.event_type, event.attributes, activity_id_of)
    )


def failed_for_size_of_commands(event: HistoryEvent) -> bool:
    """Whether ``event`` is a run's failure the worker reported in place of the
    commands of its task, which were over the server's limits."""
    return event.event_type == EventType.WORKFLOW_EXECUTION_FAILED and failed_for_size(
        event.attributes.get("failure")
    )


def command_matches(command: Command, event: HistoryEvent, activity_id_of: ActivityIdOf) -> bool:
    """Whether ``event`` is the record of ``command``."""
    kind = EVENT_OF_COMMAND.get(command.type)
    if kind != event.event_type:
        # The worker reports a run's outcome over the payload limit as a failure
        # (see worker._limits): the code's close command, recorded so.
        return (
            command.type in CLOSE_COMMANDS
            and command.type != CommandType.CONTINUE_AS_NEW
            and event.event_type == EventType.WORKFLOW_EXECUTION_FAILED
            and failed_for_size(event.attributes.get("failure"))
        )
    ours = _key_values(kind, command.attributes, activity_id_of)
    theirs = _key_values(kind, event.attributes, activity_id_of)
    # Ids travel as strings but a hand-written history may hold ints.
    return {k: _norm(v) for k, v in ours.items()} == {k: _norm(v) for k, v in theirs.items()}


def _norm(value: Any) -> Any:
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


def scan_task_commands(
    events: Iterable[HistoryEvent],
) -> tuple[frozenset[str], list[dict[str, Any]]]:
    """Patch ids and accepted updates among the command events of one task.

    Returns:
        The patch ids whose markers the task recorded, and the updates it
        accepted as ``{"update_id", "name", "input"}`` in the order recorded.
    """
    patches: set[str] = set()
    updates: list[dict[str, Any]] = []
    for event in events:
        if is_patch_marker(event):
            patch = patch_id_of(event.attributes)
            if patch is not None:
                patches.add(patch)
        elif event.event_type == EventType.WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
            attrs = event.attributes
            updates.append(
                {
                    "update_id": attrs.get("update_id"),
                    "name": attrs.get("name"),
                    "input": list(attrs.get("input") or []),
                }
            )
    return frozenset(patches), updates


def check_batch(events: Sequence[HistoryEvent], last_event_id: int, *, run_final: bool) -> None:
    """Raise ValueError unless ``events`` continue the history contiguously.

    With ``run_final`` the batch must also end with a WorkflowTaskStarted.
    """
    expected = last_event_id + 1
    for event in events:
        if event.event_id != expected:
            raise ValueError(
                f"history events must be contiguous and follow event {last_event_id}: expected "
                f"event {expected}, got event {event.event_id} ({event.event_type.value})"
            )
        expected += 1
    if run_final and (not events or events[-1].event_type != EventType.WORKFLOW_TASK_STARTED):
        last = (
            f"{events[-1].event_type.value} (event {events[-1].event_id})" if events else "nothing"
        )
        raise ValueError(
            "activate(run_final=True) needs a batch ending with the WorkflowTaskStarted of the "
            f"task being worked on; it ends with {last}"
        )
