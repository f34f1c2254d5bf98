"""A schedule's definition on the wire: spec, action and policies, checked and normalized.

The API checks a definition here before anything is stored (a bad one gets
``INVALID_ARGUMENT`` naming the field), and stores the normalized form: the
schedule workflow reads that form back with :func:`load`, the same way in
every region and every replay.

Shape (every part but ``spec`` and ``action`` optional)::

    {"spec": {"cron": ["30 2 * * *"], "calendars": [{"hour": "9", "day_of_week": "mon-fri"}],
              "intervals": [{"every": "1h", "phase": "15m"}],
              "exclude": ["0 0 25 12 *", {"month": "8"}], "timezone": "Europe/Berlin",
              "start_at": "2026-01-01T00:00:00Z", "end_at": null, "jitter": "30s",
              "dst": "default" | "temporal-compatible" | {"missing": "shift", "repeated": "first"}},
     "action": {"workflow_type": "Report", "task_queue": "reports", "input": [PAYLOAD, ...],
                "search_attributes": {...}, "memo": {...}, "versioning_behavior": null,
                "run_timeout_s": null, "task_timeout_s": 10},
     "policy": {"overlap": "skip", "catchup_window": "365d", "catchup": "all",
                "pause_on_failure": false, "limited_actions": null}}

Durations are seconds or strings like ``1h30m``; ``day_of_week`` counts as
cron does (0 and 7 are Sunday) or takes names; ``day`` takes ``last`` and
``last fri``. Day of month and day of week are ANDed. Temporal's names are
read too: a calendar's ``day_of_month`` is ``day``, an interval's ``offset``
(its SDKs' name) is ``phase``, a range ``{"start": 9, "end": 17, "step": 2}``
is ``9-17/2`` and a calendar's ``comment`` is left out.
"""

from __future__ import annotations

import math
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, TypeVar

from scheduler.policy import DEFAULT_CATCHUP_WINDOW, CatchUp, Overlap
from scheduler.spec import (
    DEFAULT_DST,
    MAX_DURATION,
    TEMPORAL_COMPATIBLE,
    CalendarSpec,
    DstPolicy,
    IntervalSpec,
    ScheduleSpec,
    SpecError,
    _dow,
    check_duration,
    parse_cron,
    parse_duration,
)
from worker.wire.schedules import mode_name

E = TypeVar("E", bound=StrEnum)
_CAL_FIELDS = ("second", "minute", "hour", "day", "month", "day_of_week", "year")
#: A calendar dict's defaults: a field left out is 0 for second, minute and
#: hour (so {"hour": "9"} is 09:00:00 daily) and any for the rest.
_CAL_DEFAULTS = {"second": "0", "minute": "0", "hour": "0"}
#: Temporal's names for fields Baton names otherwise (its calendar's
#: ``day_of_month``, its SDKs' interval ``offset``), read as Baton's own.
_CAL_ALIASES = {"day_of_month": "day"}
_INTERVAL_ALIASES = {"offset": "phase"}
MAX_SPEC_ITEMS = 50
MAX_SCHEDULE_ID = 200
#: The years a start, end or backfill time may name.
MIN_YEAR, MAX_YEAR = 1970, 9000


@dataclass(frozen=True)
class Policy:
    overlap: Overlap = Overlap.SKIP
    catchup_window: timedelta = DEFAULT_CATCHUP_WINDOW
    catchup: CatchUp = CatchUp.ALL
    pause_on_failure: bool = False
    #: Scheduled fires left to act on (None: no limit).
    limited_actions: int | None = None


@dataclass(frozen=True)
class Schedule:
    spec: ScheduleSpec
    action: dict[str, Any]
    policy: Policy


def check_schedule_id(schedule_id: str) -> str:
    if not isinstance(schedule_id, str) or not schedule_id.strip():
        raise SpecError("a schedule id is a non-empty string")
    # a control character would reach the schedule's workflow id, refused as that
    if len(schedule_id) > MAX_SCHEDULE_ID or any(
        c.isspace() or c == "/" or unicodedata.category(c) == "Cc" for c in schedule_id
    ):
        raise SpecError(
            f"schedule id {schedule_id!r} is not valid: up to {MAX_SCHEDULE_ID} characters, "
            "no spaces, no control characters and no '/'"
        )
    return schedule_id


def duration(value: Any, what: str) -> timedelta:
    """Seconds (a number) or a span like ``1h30m`` (a string)."""
    if isinstance(value, bool):
        raise SpecError(f"{what} is a duration (seconds or like 1h30m), not {value!r}")
    if isinstance(value, int | float):
        if not math.isfinite(value) or value < 0:
            raise SpecError(f"{what} is a duration of 0 seconds or more, not {value!r}")
        if value > MAX_DURATION.total_seconds():
            return check_duration(MAX_DURATION * 2, what)
        return timedelta(seconds=value)
    if isinstance(value, str):
        try:
            return parse_duration(value)
        except SpecError as exc:
            raise SpecError(f"{what}: {exc}") from None
    raise SpecError(f"{what} is a duration (seconds or like 1h30m), not {value!r}")


def parse_time(value: Any, what: str) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise SpecError(f"{what} is an RFC 3339 time like 2026-01-01T00:00:00Z")
    text = value.strip()
    if text.endswith(("z", "Z")):
        text = text[:-1] + "+00:00"
    try:
        t = datetime.fromisoformat(text)
    except ValueError:
        raise SpecError(f"{what} {value!r} is not an RFC 3339 time") from None
    if t.tzinfo is None:
        raise SpecError(f"{what} {value!r} has no UTC offset; add Z or +HH:MM")
    # fire times and the durations added to them must stay inside what datetime holds
    if not MIN_YEAR <= t.year <= MAX_YEAR:
        raise SpecError(f"{what} {value!r} is not between the years {MIN_YEAR} and {MAX_YEAR}")
    return t.astimezone(UTC)


def iso(t: datetime) -> str:
    return t.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _cal_field(value: Any) -> str:
    """A calendar field as cron writes it: a list (``[3, 4]``, as JSON gives
    one) is its values joined by commas, as ``"3,4"``; a range as Temporal's
    structured calendars give one (``{"start": 9, "end": 17, "step": 2}``)
    is ``"9-17/2"``."""
    if isinstance(value, list | tuple):
        value = ",".join(_cal_range(v) if isinstance(v, dict) else str(v).strip() for v in value)
    elif isinstance(value, dict):
        value = _cal_range(value)
    return str(value).strip().lower()


def _cal_range(r: dict[str, Any]) -> str:
    """Temporal's ``Range``: ``end`` below ``start`` (or left out) is ``start``
    alone, a ``step`` of 0 (or none) is 1."""
    if not set(r) <= {"start", "end", "step"} or "start" not in r:
        raise SpecError(f"a calendar range is an object of start, end and step, not {r!r}")
    start, end, step = r["start"], r.get("end") or 0, r.get("step") or 1
    for v in (start, end, step):
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise SpecError(f"a calendar range's start, end and step are whole numbers: {r!r}")
    end = max(end, start)
    if end == start:
        return str(start)
    return f"{start}-{end}" + (f"/{step}" if step != 1 else "")


def _calendar(d: Any, what: str) -> CalendarSpec:
    if isinstance(d, str):
        parsed, tz = parse_cron(d)
        if tz is not None or isinstance(parsed, IntervalSpec):
            raise SpecError(f"{what} {d!r}: a calendar here has no CRON_TZ and no @every")
        return parsed
    if isinstance(d, dict):
        d = _unalias(d, _CAL_ALIASES, what)
        d.pop("comment", None)  # Temporal's note on a calendar: nothing to act on
    if not isinstance(d, dict) or not set(d) <= set(_CAL_FIELDS) or not d:
        raise SpecError(f"{what} is a cron string or an object of {', '.join(_CAL_FIELDS)}")
    fields = {f: _cal_field(d.get(f, _CAL_DEFAULTS.get(f, "*"))) for f in _CAL_FIELDS}
    fields["day_of_week"] = _dow(fields["day_of_week"])
    cal = CalendarSpec(**fields)
    cal.trigger()  # what apscheduler cannot read is refused now
    return cal


def _unalias(d: dict[str, Any], aliases: dict[str, str], what: str) -> dict[str, Any]:
    """``d`` with Temporal's field names read as Baton's; both names at once are refused."""
    out = dict(d)
    for alias, name in aliases.items():
        if alias in out:
            if name in out:
                raise SpecError(f"{what} gives both {name} and {alias} (the same field)")
            out[name] = out.pop(alias)
    return out


def _items(spec: dict[str, Any], key: str) -> list[Any]:
    items = spec.get(key) or []
    if not isinstance(items, list):
        raise SpecError(f"spec.{key} is a list")
    if len(items) > MAX_SPEC_ITEMS:
        raise SpecError(f"spec.{key} has {len(items)} items; at most {MAX_SPEC_ITEMS}")
    return items


def parse_spec(d: Any) -> ScheduleSpec:
    if not isinstance(d, dict):
        raise SpecError("spec is an object (cron, calendars, intervals, ...)")
    known = {"cron", "calendars", "intervals", "exclude", "timezone"}
    known |= {"start_at", "end_at", "jitter", "dst"}
    if unknown := sorted(set(d) - known):
        raise SpecError(f"spec has unknown fields {unknown}; known: {sorted(known)}")
    timezone = d.get("timezone") or "UTC"
    if not isinstance(timezone, str):
        raise SpecError("spec.timezone is an IANA zone name like Europe/Berlin")
    calendars: list[CalendarSpec] = []
    intervals: list[IntervalSpec] = []
    for i, c in enumerate(_items(d, "cron")):
        if not isinstance(c, str):
            raise SpecError(f"spec.cron[{i}] is a cron string")
        parsed, tz = parse_cron(c)
        if tz is not None and tz != timezone:
            if d.get("timezone"):
                raise SpecError(f"spec.cron[{i}]: CRON_TZ={tz} differs from timezone {timezone}")
            timezone = tz
        (intervals if isinstance(parsed, IntervalSpec) else calendars).append(parsed)  # type: ignore[arg-type]
    calendars += [
        _calendar(c, f"spec.calendars[{i}]") for i, c in enumerate(_items(d, "calendars"))
    ]
    for i, iv in enumerate(_items(d, "intervals")):
        if isinstance(iv, dict):
            iv = _unalias(iv, _INTERVAL_ALIASES, f"spec.intervals[{i}]")
        if not isinstance(iv, dict) or "every" not in iv or not set(iv) <= {"every", "phase"}:
            raise SpecError(f"spec.intervals[{i}] is an object with every (and phase)")
        every = duration(iv["every"], f"spec.intervals[{i}].every")
        phase = duration(iv.get("phase", 0), f"spec.intervals[{i}].phase")
        intervals.append(IntervalSpec(every, phase))
    exclude = tuple(_calendar(c, f"spec.exclude[{i}]") for i, c in enumerate(_items(d, "exclude")))
    return ScheduleSpec(
        calendars=tuple(calendars),
        intervals=tuple(intervals),
        exclude=exclude,
        timezone=timezone,
        start=parse_time(d.get("start_at"), "spec.start_at"),
        end=parse_time(d.get("end_at"), "spec.end_at"),
        jitter=duration(d.get("jitter") or 0, "spec.jitter"),
        dst=_dst(d.get("dst")),
    )


def _dst(value: Any) -> DstPolicy:
    if value in (None, "default"):
        return DEFAULT_DST
    if value == "temporal-compatible":
        return TEMPORAL_COMPATIBLE
    if isinstance(value, dict) and set(value) <= {"missing", "repeated"}:
        return DstPolicy(**{k: str(v) for k, v in value.items()})
    raise SpecError(
        "spec.dst is default, temporal-compatible or {missing: shift|skip, "
        "repeated: first|last|both}"
    )


def spec_to_wire(spec: ScheduleSpec) -> dict[str, Any]:
    """The normalized spec: what :func:`parse_spec` reads back to the same spec."""

    def cal(c: CalendarSpec) -> dict[str, str]:
        return {f: getattr(c, f) for f in _CAL_FIELDS}

    return {
        "calendars": [cal(c) for c in spec.calendars],
        "intervals": [
            {"every": i.every.total_seconds(), "phase": i.phase.total_seconds()}
            for i in spec.intervals
        ],
        "exclude": [cal(c) for c in spec.exclude],
        "timezone": spec.timezone,
        "start_at": iso(spec.start) if spec.start else None,
        "end_at": iso(spec.end) if spec.end else None,
        "jitter": spec.jitter.total_seconds(),
        "dst": {"missing": spec.dst.missing, "repeated": spec.dst.repeated},
    }


def _choice(kind: type[E], value: Any, what: str) -> E:
    try:
        return kind(mode_name(value))
    except ValueError:
        raise SpecError(f"{what} {value!r} is not one of {', '.join(kind)}") from None


def parse_policy(d: Any) -> Policy:
    d = d or {}
    if not isinstance(d, dict):
        raise SpecError("policy is an object (overlap, catchup_window, catchup, ...)")
    known = {"overlap", "catchup_window", "catchup", "pause_on_failure", "limited_actions"}
    if unknown := sorted(set(d) - known):
        raise SpecError(f"policy has unknown fields {unknown}; known: {sorted(known)}")
    overlap = _choice(Overlap, d.get("overlap") or Overlap.SKIP, "policy.overlap")
    catchup = _choice(CatchUp, d.get("catchup") or CatchUp.ALL, "policy.catchup")
    window = DEFAULT_CATCHUP_WINDOW
    if d.get("catchup_window") is not None:
        window = duration(d["catchup_window"], "policy.catchup_window")
        if window < timedelta(seconds=10):
            raise SpecError("policy.catchup_window is at least 10 seconds")
    limited = d.get("limited_actions")
    if limited is not None and (
        isinstance(limited, bool) or not isinstance(limited, int) or limited < 0
    ):
        raise SpecError("policy.limited_actions is a number of actions, 0 or more")
    pof = d.get("pause_on_failure", False)
    if not isinstance(pof, bool):
        raise SpecError("policy.pause_on_failure is true or false")
    return Policy(overlap, window, catchup, pof, limited)


def policy_to_wire(p: Policy) -> dict[str, Any]:
    return {
        "overlap": p.overlap.value,
        "catchup_window": p.catchup_window.total_seconds(),
        "catchup": p.catchup.value,
        "pause_on_failure": p.pause_on_failure,
        "limited_actions": p.limited_actions,
    }


_ACTION_FIELDS = {
    "workflow_type",
    "task_queue",
    "input",
    "search_attributes",
    "memo",
    "versioning_behavior",
    "run_timeout_s",
    "task_timeout_s",
    "execution_timeout_s",
    "retry_policy",
}


def parse_action(d: Any) -> dict[str, Any]:
    """The start-workflow action, normalized (input payloads pass through untouched:
    the client encoded them, maybe encrypted)."""
    if not isinstance(d, dict):
        raise SpecError("action is an object (workflow_type, task_queue, input, ...)")
    if unknown := sorted(set(d) - _ACTION_FIELDS):
        raise SpecError(f"action has unknown fields {unknown}; known: {sorted(_ACTION_FIELDS)}")
    for key in ("workflow_type", "task_queue"):
        if not isinstance(d.get(key), str) or not d[key].strip():
            raise SpecError(f"action.{key} is a non-empty string")
    if d["workflow_type"].startswith("baton."):
        raise SpecError("action.workflow_type: the baton.* types are Baton's own")
    for key in ("search_attributes", "memo"):
        if not isinstance(d.get(key) or {}, dict):
            raise SpecError(f"action.{key} is an object")
    if not isinstance(d.get("input") or [], list):
        raise SpecError("action.input is a list of payloads")
    behavior = d.get("versioning_behavior")
    if behavior not in (None, "pinned", "auto-upgrade"):
        raise SpecError("action.versioning_behavior is pinned, auto-upgrade or null")
    out: dict[str, Any] = {
        "workflow_type": d["workflow_type"],
        "task_queue": d["task_queue"],
        "input": list(d.get("input") or []),
        "search_attributes": dict(d.get("search_attributes") or {}),
        "memo": dict(d.get("memo") or {}),
        "versioning_behavior": behavior,
        "run_timeout_s": None,
        "task_timeout_s": 10.0,
    }
    for key in ("run_timeout_s", "task_timeout_s"):
        value = d.get(key)
        if value is not None:
            if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
                raise SpecError(f"action.{key} is a positive number of seconds")
            out[key] = float(value)
    if d.get("execution_timeout_s") is not None:
        # (kept only when set, so other actions keep their shape)
        value = d["execution_timeout_s"]
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            raise SpecError("action.execution_timeout_s is a positive number of seconds")
        out["execution_timeout_s"] = float(value)
    if d.get("retry_policy") is not None:
        # a workflow retry policy (its fields are checked as a start's are)
        if not isinstance(d["retry_policy"], dict):
            raise SpecError("action.retry_policy is an object (initial_interval_s, ...)")
        out["retry_policy"] = dict(d["retry_policy"])
    return out


def parse(d: Any) -> Schedule:
    """A definition from the wire; :class:`SpecError` names what is wrong."""
    if not isinstance(d, dict):
        raise SpecError("a schedule is an object with spec, action and policy")
    if unknown := sorted(set(d) - {"spec", "action", "policy"}):
        raise SpecError(f"a schedule has unknown fields {unknown}; known: spec, action, policy")
    return Schedule(
        parse_spec(d.get("spec")), parse_action(d.get("action")), parse_policy(d.get("policy"))
    )


def to_wire(s: Schedule) -> dict[str, Any]:
    return {
        "spec": spec_to_wire(s.spec),
        "action": s.action,
        "policy": policy_to_wire(s.policy),
    }


def load(d: dict[str, Any]) -> Schedule:
    """A stored (normalized) definition."""
    return parse(d)
