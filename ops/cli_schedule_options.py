"""The options ``baton schedule create`` and ``update`` share, and the definition they build.

The definition is the wire shape ``scheduler/definition.py`` documents
(``spec``, ``action``, ``policy``), taken from ``--file`` if given and then
overridden by the options. It is checked with the server's own parser before
anything is sent, so a bad cron string, duration, time or mode is an
``INVALID_ARGUMENT`` naming the option, and nothing changes. The workflow's
arguments are encoded only when sending, by the client's data converter, so
an encrypting codec applies to them as it does in the SDK.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import click

from ops.cli_base import CliInputError, given, name_value_pairs, strict_json
from scheduler import definition
from scheduler.policy import CatchUp, Overlap
from scheduler.spec import SpecError, parse_cron
from worker.client import Client
from worker.wire.schedules import mode_name

__all__ = [
    "CATCH_UPS",
    "OVERLAPS",
    "Draft",
    "Instant",
    "build_draft",
    "changed_fields",
    "choice",
    "definition_options",
]

F = TypeVar("F", bound=Callable[..., Any])

OVERLAPS: tuple[str, ...] = tuple(o.value for o in Overlap)
CATCH_UPS: tuple[str, ...] = tuple(c.value for c in CatchUp)
_MISSING = ("shift", "skip")
_REPEATED = ("first", "last", "both")
#: The spec fields that say when it fires: an option naming one replaces all three of a --file.
_WHEN = ("cron", "calendars", "intervals")
_SHAPES: dict[type, str] = {list: "a JSON list", dict: "a JSON object", str: "a JSON string"}
#: Which option a field named in a definition error comes from.
_OPTION_OF = {
    "spec.calendars": "--calendar",
    "spec.intervals": "--interval/--phase",
    "spec.exclude": "--exclude-calendar",
    "spec.timezone": "--timezone",
    "time zone": "--timezone",
    "CRON_TZ": "--timezone",
    "end is after its start": "--start-time/--end-time",
    "spec.dst": "--missing/--repeated",
    "calendar spec": "--calendar/--exclude-calendar",
    "an interval": "--interval/--phase",
    "policy.catchup_window": "--catchup-window",
    "action.memo": "--memo",
    "action.search_attributes": "--search-attribute",
}


# --------------------------------------------------------------------------- values


def choice(value: str | None, choices: Sequence[str], option: str) -> str | None:
    """``value`` if it is one of ``choices`` (a typed error naming them otherwise)."""
    if value is None:
        return None
    v = str(mode_name(value))
    if v not in choices:
        raise CliInputError(f"{option} {value!r} is not one of {', '.join(choices)}")
    return v


def _duration(value: str | None, option: str) -> float | None:
    """Seconds (``90``) or a span like ``1h30m``, as seconds (the definition's parser)."""
    if value is None:
        return None
    text = value.strip()
    try:
        raw: float | str = float(text)
    except ValueError:
        raw = text
    try:
        return definition.duration(raw, option).total_seconds()
    except (SpecError, OverflowError):
        raise CliInputError(
            f"{option} {value!r} is not a duration: give seconds (90) or a span like "
            "1h30m, 15m or 90s"
        ) from None


class Instant(click.ParamType[datetime, Any]):
    """An option's RFC 3339 time, with its offset (``Z`` or ``+HH:MM``), in UTC;
    anything else is a usage error naming the option (``schedule backfill
    --start``, ``schedule create --start-time``)."""

    name = "time"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, datetime):
            return value
        try:
            t = definition.parse_time(value, "")
        except SpecError as exc:
            self.fail(f"{str(exc).strip()} (e.g. 2026-01-01T00:00:00Z)", param, ctx)
        assert t is not None
        return t


def _count(value: str | None, option: str) -> int | None:
    if value is None:
        return None
    try:
        n = int(value)
    except ValueError:
        n = -1
    if n < 0:
        raise CliInputError(f"{option} {value!r} is not a whole number of 0 or more")
    return n


def _json(raw: str, option: str, kinds: tuple[type, ...], example: str) -> Any:
    try:
        value = strict_json(raw)
    except ValueError as exc:
        raise CliInputError(
            f"{option} is not valid JSON ({exc}): {raw!r}; e.g. {option} {example}"
        ) from None
    if not isinstance(value, kinds):
        shape = " or ".join(_SHAPES[k] for k in kinds)
        raise CliInputError(f"{option} {raw!r} is not {shape}: e.g. {option} {example}")
    return value


# --------------------------------------------------------------------------- options


def _options() -> list[Callable[[F], F]]:
    o = click.option
    return [
        o(
            "--file",
            "file",
            metavar="DEF.json",
            help="A whole definition {spec, action, policy} (or `baton schedule describe ID "
            "-o json` output; - reads stdin). Options override it; --cron, --calendar and "
            "--interval replace all its times.",
        ),
        # "" (an unset shell variable) is a usage error, never taken as left out:
        # with --file that would quietly keep the file's value
        o(
            "--workflow-type",
            "-t",
            "workflow_type",
            callback=given("a workflow type"),
            help="The workflow each action starts.",
        ),
        o(
            "--task-queue",
            "-q",
            "task_queue",
            callback=given("a task queue"),
            help="Its task queue.",
        ),
        o(
            "--input",
            "input_json",
            metavar="JSON",
            help="The workflow's arguments as one JSON list: --input '[\"daily\", 3]'.",
        ),
        o(
            "--cron",
            "crons",
            multiple=True,
            metavar="EXPR",
            help="A cron string (5, 6 or 7 fields, @daily, CRON_TZ=, @every 1h); repeatable.",
        ),
        o(
            "--calendar",
            "calendars",
            multiple=True,
            metavar="JSON",
            help='A calendar, e.g. \'{"hour": "9", "day_of_week": "mon-fri"}\'; repeatable.',
        ),
        o("--interval", metavar="DUR", help="Fire every DUR (seconds or like 1h30m)."),
        o("--phase", metavar="DUR", help="Shift the --interval by DUR from the Unix epoch."),
        o(
            "--exclude-calendar",
            "excludes",
            multiple=True,
            metavar="JSON",
            help="A calendar (or a cron string as JSON, '\"0 0 25 12 *\"') not to fire on; "
            "repeatable.",
        ),
        o(
            "--timezone",
            metavar="TZ",
            callback=given("an IANA zone such as Europe/Berlin, or leave it out for UTC"),
            help="IANA zone of the calendars (default UTC).",
        ),
        o("--start-time", type=Instant(), metavar="T", help="No fires before this RFC 3339 time."),
        o("--end-time", type=Instant(), metavar="T", help="No fires after this RFC 3339 time."),
        o("--jitter", metavar="DUR", help="Delay each fire by up to DUR (stable per fire)."),
        o(
            "--overlap",
            metavar="|".join(OVERLAPS),
            help="When a fire comes while an action runs (default skip).",
        ),
        o(
            "--catchup-window",
            metavar="DUR",
            help="Late fires older than this are missed (default 365d; at least 10s).",
        ),
        o(
            "--catchup",
            metavar="|".join(CATCH_UPS),
            help="Which late fires inside the window run (default all).",
        ),
        o(
            "--pause-on-failure/--no-pause-on-failure",
            default=None,
            help="Pause the schedule when an action fails or times out.",
        ),
        o("--limited-actions", metavar="N", help="Scheduled fires left to act on."),
        o(
            "--missing",
            metavar="|".join(_MISSING),
            help="A wall time that does not exist (DST gap): shift it or skip it.",
        ),
        o(
            "--repeated",
            metavar="|".join(_REPEATED),
            help="A wall time that happens twice (DST overlap): fire at which.",
        ),
        o("--memo", metavar="JSON", help="The started workflows' memo, a JSON object."),
        o(
            "--search-attribute",
            "search_attributes",
            multiple=True,
            metavar="NAME=VALUE",
            help="A search attribute of the started workflows (value as JSON, else a string); "
            "repeatable.",
        ),
    ]


def definition_options(f: F) -> F:
    """Add the definition options to a command (its function takes them as ``**options``)."""
    for option in reversed(_options()):
        f = option(f)
    return f


# --------------------------------------------------------------------------- the definition


@dataclass(frozen=True)
class Draft:
    """A checked definition from the command line; its arguments not yet encoded."""

    #: spec, action and policy; ``action.input`` is what --file gave (payloads), if anything.
    schedule: dict[str, Any]
    #: The --input arguments, encoded by the client when sending (None: keep the file's).
    args: list[Any] | None
    #: The --file's paused state and note (``describe -o json`` output has them;
    #: None: the file says nothing), which create honours and update keeps as they are.
    paused: bool | None = None
    note: str | None = None

    async def encode(self, client: Client) -> dict[str, Any]:
        """The definition to send, the arguments encoded by ``client``'s data converter."""
        action = self.schedule["action"]
        built = await client.schedule_definition(
            workflow=action["workflow_type"],
            task_queue=action["task_queue"],
            args=self.args or (),
            spec=self.schedule["spec"],
            policy=self.schedule["policy"],
            memo=action.get("memo"),
            search_attributes=action.get("search_attributes"),
            versioning_behavior=action.get("versioning_behavior"),
            run_timeout=action.get("run_timeout_s"),
            execution_timeout=action.get("execution_timeout_s"),
        )
        if self.args is None:
            built["action"]["input"] = list(action.get("input") or [])
        for key in ("task_timeout_s", "retry_policy"):
            if action.get(key) is not None:
                built["action"][key] = action[key]
        return built


def _read_file(path: str) -> dict[str, Any]:
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text()
    except OSError as exc:
        raise CliInputError(f"--file {path}: {exc.strerror or exc}") from None
    doc: dict[str, Any] = _json(
        text, "--file", (dict,), '{"spec": ..., "action": ..., "policy": ...}'
    )
    state = {k: doc[k] for k in ("paused", "note") if doc.get(k) is not None}
    if "spec" not in doc and isinstance(doc.get("schedule"), dict):
        doc = doc["schedule"]  # what `baton schedule describe -o json` prints
    else:
        doc = {k: v for k, v in doc.items() if k not in state}
    for key in ("spec", "action", "policy"):
        if not isinstance(doc.get(key) or {}, dict):
            raise CliInputError(f"--file: {key} is an object")
    if unknown := sorted(set(doc) - {"spec", "action", "policy"}):
        raise CliInputError(
            f"--file has unknown fields {unknown}; known: spec, action, policy, paused, note"
        )
    if not isinstance(state.get("paused", False), bool):
        raise CliInputError("--file: paused is true or false")
    if not isinstance(state.get("note", ""), str):
        raise CliInputError("--file: note is a string")
    return {**doc, **state}


def _payloads(value: Any) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(
        isinstance(p, dict) and isinstance(p.get("metadata"), dict) and "data" in p for p in value
    ):
        raise CliInputError(
            "--file: action.input holds encoded payloads (as `baton schedule describe ID -o "
            "json` prints them); give plain arguments with --input '[...]' instead"
        )
    return value


def _when(o: dict[str, Any]) -> dict[str, Any]:
    """The spec fields the options set about when it fires."""
    for c in o["crons"]:
        try:
            parse_cron(c)
        except SpecError as exc:
            raise CliInputError(f"--cron: {exc}") from None
    when: dict[str, Any] = {}
    if o["crons"]:
        when["cron"] = list(o["crons"])
    if o["calendars"]:
        example = '\'{"hour": "9"}\''
        when["calendars"] = [_json(c, "--calendar", (dict, str), example) for c in o["calendars"]]
    if o["interval"] is not None:
        when["intervals"] = [{"every": _duration(o["interval"], "--interval")}]
        if o["phase"] is not None:
            when["intervals"][0]["phase"] = _duration(o["phase"], "--phase")
    elif o["phase"] is not None:
        raise CliInputError("--phase shifts an --interval: give --interval too")
    return when


def _spec(base: dict[str, Any], o: dict[str, Any]) -> dict[str, Any]:
    spec = dict(base)
    if when := _when(o):
        for key in _WHEN:
            spec.pop(key, None)
        spec.update(when)
    if o["excludes"]:
        example = '\'{"month": "8"}\''
        spec["exclude"] = [
            _json(c, "--exclude-calendar", (dict, str), example) for c in o["excludes"]
        ]
    if o["timezone"] is not None:
        spec["timezone"] = o["timezone"]
    for option, key in (("start_time", "start_at"), ("end_time", "end_at")):
        if o[option] is not None:
            spec[key] = definition.iso(o[option])
    if o["jitter"] is not None:
        spec["jitter"] = _duration(o["jitter"], "--jitter")
    dst = {
        k: choice(o[k], values, f"--{k}")
        for k, values in (("missing", _MISSING), ("repeated", _REPEATED))
        if o[k] is not None
    }
    if dst:
        old = spec.get("dst")
        if old == "temporal-compatible":
            old = {"missing": "skip", "repeated": "both"}
        spec["dst"] = {**(old if isinstance(old, dict) else {}), **dst}
    if not any(spec.get(k) for k in _WHEN):
        raise CliInputError("say when it fires: --cron, --calendar or --interval")
    return spec


def _policy(base: dict[str, Any], o: dict[str, Any]) -> dict[str, Any]:
    policy = dict(base)
    given = {
        "overlap": choice(o["overlap"], OVERLAPS, "--overlap"),
        "catchup_window": _duration(o["catchup_window"], "--catchup-window"),
        "catchup": choice(o["catchup"], CATCH_UPS, "--catchup"),
        "pause_on_failure": o["pause_on_failure"],
        "limited_actions": _count(o["limited_actions"], "--limited-actions"),
    }
    policy.update({k: v for k, v in given.items() if v is not None})
    return policy


def _action(base: dict[str, Any], o: dict[str, Any], *, args_given: bool) -> dict[str, Any]:
    action = dict(base)
    for key in ("workflow_type", "task_queue"):
        if o[key] is not None:
            action[key] = o[key]
        if not isinstance(action.get(key), str) or not action[key].strip():
            option = "--" + key.replace("_", "-")
            raise CliInputError(f"give {option} (or a --file whose action has {key})")
    if o["memo"] is not None:
        action["memo"] = _json(o["memo"], "--memo", (dict,), '\'{"owner": "ops"}\'')
    if o["search_attributes"]:
        attributes = name_value_pairs(o["search_attributes"], "--search-attribute")
        action["search_attributes"] = {**(action.get("search_attributes") or {}), **attributes}
    # --input replaces the file's payloads; those are sent as they are (encoded by whoever
    # wrote them, maybe encrypted), so they must be payloads already
    action["input"] = [] if args_given else _payloads(action.get("input"))
    return action


def build_draft(options: dict[str, Any]) -> Draft:
    """The definition the options (and ``--file``) give, checked; nothing is sent."""
    base = _read_file(options["file"]) if options["file"] else {}
    args = None
    if options["input_json"] is not None:
        args = _json(options["input_json"], "--input", (list,), "'[\"daily\", 3]'")
    schedule = {
        "spec": _spec(base.get("spec") or {}, options),
        "action": _action(base.get("action") or {}, options, args_given=args is not None),
        "policy": _policy(base.get("policy") or {}, options),
    }
    try:
        definition.parse(schedule)
    except SpecError as exc:
        text = str(exc)
        option = next((opt for key, opt in _OPTION_OF.items() if key in text), None)
        hint = f" (check {option})" if option else ""
        raise CliInputError(f"the schedule is not valid: {text}{hint}") from None
    return Draft(schedule, args, paused=base.get("paused"), note=base.get("note"))


def changed_fields(old: dict[str, Any] | None, new: dict[str, Any]) -> list[str]:
    """``section.field`` names whose normalized value differs between two definitions."""
    after = definition.to_wire(definition.parse(new))
    if old is None:
        return []
    return [
        f"{section}.{key}"
        for section in ("spec", "action", "policy")
        for key in sorted(set(old.get(section) or {}) | set(after[section]))
        if (old.get(section) or {}).get(key) != after[section].get(key)
    ]
