"""``baton schedule``: workflows started on a calendar.

Each command is one call of the SDK's schedule client
(``worker/_client_schedules.py``); ``create`` and ``update`` build the
definition from their options (``ops/cli_schedule_options.py``). A schedule's
changes are applied by its own workflow a moment after the command returns,
so ``describe`` may show the previous state for that moment.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import click
from rich.console import Group, RenderableType

from ops.cli_base import (
    BatonGroup,
    CliInputError,
    CliState,
    given,
    name_value_pairs,
    pass_state,
    request_id_option,
)
from ops.cli_schedule_options import (
    CATCH_UPS,
    OVERLAPS,
    Instant,
    build_draft,
    changed_fields,
    choice,
    definition_options,
)
from ops.output import emit, kv_table, table, when
from scheduler import definition
from scheduler.spec import SpecError
from worker.client import Client
from worker.errors import ScheduleNotFoundError

__all__ = ["register_schedules"]

# an empty id (an unset shell variable) is a usage error naming SCHEDULE_ID, as
# the other commands' empty ids are, before anything is sent
_SCHEDULE_ID = given("a schedule id (`baton schedule list` shows them)")
_CAL_FIELDS = ("second", "minute", "hour", "day", "month", "day_of_week", "year")


@click.group(cls=BatonGroup)
def schedule() -> None:
    """Schedules: start a workflow on a calendar; pause, trigger and backfill them."""


# --------------------------------------------------------------------------- views


def _span(seconds: Any) -> str | None:
    """Seconds as ``1h30m``."""
    if not isinstance(seconds, int | float) or isinstance(seconds, bool):
        return None
    if seconds != int(seconds):
        return f"{seconds}s"
    rest, parts = int(seconds), []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        n, rest = divmod(rest, size)
        if n:
            parts.append(f"{n}{unit}")
    return "".join(parts) or "0s"


def _calendar(c: Any) -> str:
    """A normalized calendar as its seven cron fields (second ... year)."""
    if not isinstance(c, dict):
        return str(c)
    return " ".join(str(c.get(f, "*")) for f in _CAL_FIELDS)


def _local(t: str, zone: str) -> str | None:
    try:
        return datetime.fromisoformat(t).astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M:%S %Z")
    except (ValueError, KeyError):
        return None


def _describe_view(d: dict[str, Any]) -> RenderableType:
    sched = d.get("schedule") or {}
    spec, action, policy = (sched.get(k) or {} for k in ("spec", "action", "policy"))
    dst = spec.get("dst") or {}
    limited = policy.get("limited_actions")
    info = {
        "schedule id": d.get("schedule_id"),
        "workflow type": action.get("workflow_type"),
        "task queue": action.get("task_queue"),
        "calendars (s m h day month weekday year)": [
            _calendar(c) for c in spec.get("calendars") or []
        ]
        or None,
        "intervals": [
            f"every {_span(i.get('every'))}, phase {_span(i.get('phase'))}"
            for i in spec.get("intervals") or []
        ]
        or None,
        "excluded": [_calendar(c) for c in spec.get("exclude") or []] or None,
        "timezone": spec.get("timezone"),
        "start": when(spec.get("start_at")),
        "end": when(spec.get("end_at")),
        "jitter": _span(spec.get("jitter")),
        "daylight saving": f"missing {dst.get('missing')}, repeated {dst.get('repeated')}",
        "overlap": policy.get("overlap"),
        "catch-up": f"{policy.get('catchup')} within {_span(policy.get('catchup_window'))}",
        "pause on failure": policy.get("pause_on_failure"),
        "actions left": "no limit" if limited is None else d.get("remaining_actions"),
        "paused": d.get("paused"),
        "note": d.get("note") or None,
        "paused at": when(d.get("paused_at")),
        "created": when(d.get("created_at")),
        "last processed": when(d.get("last_processed")),
        "running": d.get("running_count"),
        "buffered": d.get("buffered"),
        "changes not yet applied": d.get("pending_signals"),
    }
    zone = spec.get("timezone") or "UTC"
    nexts = d.get("next_fires") or []
    # with jitter a fire acts later than its time: show when
    acts = (d.get("next_action_times") or []) if spec.get("jitter") else []
    parts: list[RenderableType] = [
        kv_table(info, title=f"Schedule {d.get('schedule_id')}"),
        table(
            [
                "#",
                "time (UTC)",
                *([zone] if zone != "UTC" else []),
                *(["acts at (UTC, jitter)"] if acts else []),
            ],
            [
                [
                    i,
                    when(t),
                    *([_local(t, zone)] if zone != "UTC" else []),
                    *([when(acts[i - 1]) if i <= len(acts) else None] if acts else []),
                ]
                for i, t in enumerate(nexts, 1)
            ],
            title="Next fires",
        ),
    ]
    if d.get("recent"):
        parts.append(
            table(
                ["nominal", "kind", "workflow id", "outcome", "started", "closed", "error"],
                [
                    [
                        when(a.get("nominal")),
                        a.get("kind"),
                        a.get("workflow_id"),
                        a.get("outcome"),
                        when(a.get("started_at")),
                        when(a.get("closed_at")),
                        a.get("error"),
                    ]
                    for a in d["recent"]
                ],
                title="Recent actions",
                no_wrap=["workflow id"],
            )
        )
    if d.get("running"):
        parts.append(
            table(
                ["workflow id", "run id", "nominal", "status", "paused"],
                [
                    [
                        r.get("workflow_id"),
                        r.get("run_id"),
                        when(r.get("nominal")),
                        r.get("status"),
                        r.get("paused"),
                    ]
                    for r in d["running"]
                ],
                title="Running actions",
                no_wrap=["workflow id"],
            )
        )
    if d.get("buffer"):
        rows = [[when(b.get("nominal")), b.get("kind")] for b in d["buffer"]]
        parts.append(table(["nominal", "kind"], rows, title="Buffered fires (first 10)"))
    parts.append(kv_table(d.get("counters") or {}, title="Counters"))
    return Group(*parts)


def _list_view(rows: list[dict[str, Any]]) -> RenderableType:
    return table(
        ["id", "paused", "next fire", "running", "actions", "note"],
        [
            [
                s["schedule_id"],
                s.get("paused"),
                when(s.get("next_fire")),
                s.get("running"),
                s.get("actions"),
                s.get("note") or None,
            ]
            for s in rows
        ],
        no_wrap=["id"],
    )


def _result(title: str) -> Callable[[dict[str, Any]], RenderableType]:
    return lambda d: kv_table(d, title=title)


def _backfill_view(d: dict[str, Any]) -> RenderableType:
    """A backfill's answer, its (up to 100) workflow ids one a line: joined on
    one line they made a cell as wide as all of them."""
    ids = d.get("workflow_ids") or []
    return kv_table({**d, "workflow_ids": "\n".join(ids) or None}, title="Schedule backfill")


# --------------------------------------------------------------------------- commands


@schedule.command("create")
@click.argument("schedule_id", callback=given("an id for the new schedule"))
@definition_options
@click.option("--paused", is_flag=True, help="Create it paused (say why with --note).")
@click.option("--note", default="", help="Why it is paused: shown by describe and list.")
@click.option(
    "--schedule-search-attribute",
    "schedule_attributes",
    multiple=True,
    metavar="NAME=VALUE",
    help="A search attribute of the schedule itself, for `list --query`; repeatable.",
)
@request_id_option
@pass_state
def schedule_create(
    st: CliState,
    /,
    schedule_id: str,
    paused: bool,
    note: str,
    schedule_attributes: tuple[str, ...],
    request_id: str | None,
    output: str,
    **options: Any,
) -> None:
    """Create schedule SCHEDULE_ID: start --workflow-type on --task-queue at the times
    --cron, --calendar and --interval give (refused if it exists: `update` changes it)."""
    try:
        definition.check_schedule_id(schedule_id)
    except SpecError as exc:
        raise CliInputError(str(exc)) from None
    draft = build_draft(options)
    attributes = name_value_pairs(schedule_attributes, "--schedule-search-attribute")
    # a --file of a paused schedule (its `describe -o json`) makes a paused copy,
    # with its note unless --note gives another: it must not start firing at once
    paused = paused or bool(draft.paused)
    note = note or (draft.note or "")

    async def go(c: Client) -> dict[str, Any]:
        h = await c.create_schedule(
            schedule_id,
            await draft.encode(c),
            paused=paused,
            note=note,
            search_attributes=attributes,
            request_id=request_id,
        )
        d = await h.describe()
        return {
            "schedule_id": schedule_id,
            # False: a retry with the same --request-id found the schedule it made
            "created": h.created,
            "paused": d["paused"],
            "note": d["note"],
            "next_fires": d["next_fires"],
        }

    emit(
        st.run(go),
        output,
        lambda d: kv_table(
            {**d, "next_fires": [when(t) for t in d["next_fires"][:3]]}, title="Schedule created"
        ),
    )


@schedule.command("update")
@click.argument("schedule_id", callback=_SCHEDULE_ID)
@definition_options
@click.option("--create-if-missing", is_flag=True, help="Create it if it does not exist.")
# create's options that update cannot honour: refused with the command that
# does it, never ignored (and never "no such option, did you mean --phase")
@click.option("--paused", "state_paused", is_flag=True, default=None, hidden=True)
@click.option("--note", "state_note", default=None, hidden=True)
@click.option(
    "--schedule-search-attribute", "state_attributes", multiple=True, default=(), hidden=True
)
@request_id_option
@pass_state
def schedule_update(
    st: CliState,
    /,
    schedule_id: str,
    create_if_missing: bool,
    state_paused: bool | None,
    state_note: str | None,
    state_attributes: tuple[str, ...],
    request_id: str | None,
    output: str,
    **options: Any,
) -> None:
    """Replace schedule SCHEDULE_ID's definition (spec, action, policy) with the one the
    options give, as the SDK's update does: what they leave out takes its default.
    Paused, note, the schedule's own search attributes and counters stay: `pause`
    and `unpause` change the first two (with why), `create` sets the last.

    To change one part, start from the current definition:
    `baton schedule describe ID -o json > d.json`, then
    `baton schedule update ID --file d.json --cron '0 4 * * *'`.
    """
    if state_paused or state_note is not None:
        raise click.UsageError(
            "update keeps the schedule paused or not, and its note: "
            f"`baton schedule pause {schedule_id} --note WHY` or `unpause` changes them"
        )
    if state_attributes:
        raise click.UsageError(
            "update keeps the schedule's own search attributes (--schedule-search-attribute "
            "is create's); --search-attribute sets those of the workflows it starts"
        )
    draft = build_draft(options)

    async def go(c: Client) -> dict[str, Any]:
        h = c.get_schedule_handle(schedule_id)
        try:
            old = (await h.describe())["schedule"]
        except ScheduleNotFoundError:
            if not create_if_missing:
                raise
            old = None
        sched = await draft.encode(c)
        res = await h.update(sched, create=create_if_missing, request_id=request_id)
        # describe gives the memo as values: compare it so
        memo = await c.decode_memo(sched["action"].get("memo"))
        return {
            **res,
            "changed": changed_fields(old, {**sched, "action": {**sched["action"], "memo": memo}}),
        }

    emit(st.run(go), output, _update_view)


def _update_view(d: dict[str, Any]) -> RenderableType:
    """An update's answer, saying so when the definition given is the one the
    schedule had (as `namespace update` does): `changed` alone was left empty."""
    shown = dict(d)
    if d.get("updated") and not d.get("changed"):
        shown["changed"] = "nothing (it was so already)"
    elif not d.get("updated"):
        shown.pop("changed", None)  # a created schedule had nothing to compare
    return kv_table(shown, title="Schedule updated")


@schedule.command("list")
@click.option(
    "--query",
    "-q",
    default="",
    help="List filter over the schedules (their own "
    "search attributes, WorkflowId = 'schedule/ID', StartTime ...).",
)
@pass_state
def schedule_list(st: CliState, query: str, output: str) -> None:
    """Schedules of the namespace."""
    emit(st.run(lambda c: c.list_schedules(query)), output, _list_view)


@schedule.command("describe")
@click.argument("schedule_id", callback=_SCHEDULE_ID)
@pass_state
def schedule_describe(st: CliState, schedule_id: str, output: str) -> None:
    """Definition, paused and note, the next 10 fires, the last 10 actions and their
    outcomes, running actions and counters of SCHEDULE_ID."""
    emit(st.run(lambda c: c.get_schedule_handle(schedule_id).describe()), output, _describe_view)


#: The note of a pause given none, as Temporal's SDK records "Paused via Python SDK".
PAUSE_NOTE = "Paused via baton CLI"


@schedule.command("pause")
@click.argument("schedule_id", callback=_SCHEDULE_ID)
@click.option(
    "--note",
    default=PAUSE_NOTE,
    show_default=True,
    help="Why: shown by describe and list until unpause.",
)
@request_id_option
@pass_state
def schedule_pause(
    st: CliState, schedule_id: str, note: str, request_id: str | None, output: str
) -> None:
    """Pause SCHEDULE_ID: its fires wait (triggers and backfills still act).

    Pausing a paused schedule keeps it paused and records the new note."""
    res = st.run(lambda c: c.get_schedule_handle(schedule_id).pause(note, request_id=request_id))
    emit(res, output, _result("Schedule paused"))


@schedule.command("unpause")
@click.argument("schedule_id", callback=_SCHEDULE_ID)
@click.option(
    "--catch-up",
    metavar="|".join(CATCH_UPS),
    default=None,
    help="Act on the fires the pause passed over (all, the latest, none); those not acted on "
    "are counted as missed, as are all of them without it.",
)
@click.option("--note", default="", help="Recorded as the schedule's note.")
@request_id_option
@pass_state
def schedule_unpause(
    st: CliState,
    schedule_id: str,
    catch_up: str | None,
    note: str,
    request_id: str | None,
    output: str,
) -> None:
    """Let SCHEDULE_ID fire again."""
    mode = choice(catch_up, CATCH_UPS, "--catch-up")
    res = st.run(
        lambda c: c.get_schedule_handle(schedule_id).unpause(
            note, catch_up=mode, request_id=request_id
        )
    )
    emit(res, output, _result("Schedule unpaused"))


_overlap_option = click.option(
    "--overlap", metavar="|".join(OVERLAPS), default=None, help="The overlap policy for this."
)


@schedule.command("trigger")
@click.argument("schedule_id", callback=_SCHEDULE_ID)
@_overlap_option
@request_id_option
@pass_state
def schedule_trigger(
    st: CliState, schedule_id: str, overlap: str | None, request_id: str | None, output: str
) -> None:
    """Act now, even while paused: start SCHEDULE_ID-<now>-trigger-<tag>, a run of its
    own (the schedule's overlap policy applies unless --overlap says otherwise); prints
    that workflow id."""
    mode = choice(overlap, OVERLAPS, "--overlap")
    res = st.run(
        lambda c: c.get_schedule_handle(schedule_id).trigger(overlap=mode, request_id=request_id)
    )
    emit(res, output, _result("Schedule triggered"))


@schedule.command("backfill")
@click.argument("schedule_id", callback=_SCHEDULE_ID)
@click.option(
    "--start",
    "begin",
    type=Instant(),
    required=True,
    metavar="T",
    help="RFC 3339 time, e.g. 2026-01-01T00:00:00Z.",
)
@click.option(
    "--end", "finish", type=Instant(), required=True, metavar="T", help="RFC 3339 time (inclusive)."
)
@_overlap_option
@request_id_option
@pass_state
def schedule_backfill(
    st: CliState,
    schedule_id: str,
    begin: datetime,
    finish: datetime,
    overlap: str | None,
    request_id: str | None,
    output: str,
) -> None:
    """Act on the fires SCHEDULE_ID's spec has from --start to --end (inclusive), once
    each, even while paused (overlap default buffer-all: one after another)."""
    if finish < begin:
        raise CliInputError(
            f"--end {definition.iso(finish)} is before --start {definition.iso(begin)}: swap them"
        )
    mode = choice(overlap, OVERLAPS, "--overlap") or "buffer-all"
    res = st.run(
        lambda c: c.get_schedule_handle(schedule_id).backfill(
            begin, finish, overlap=mode, request_id=request_id
        )
    )
    emit(res, output, _backfill_view)


@schedule.command("delete")
@click.argument("schedule_id", callback=_SCHEDULE_ID)
@click.option("--reason", default="", help="Recorded in the schedule's history.")
@request_id_option
@pass_state
def schedule_delete(
    st: CliState, schedule_id: str, reason: str, request_id: str | None, output: str
) -> None:
    """Delete SCHEDULE_ID; the actions it started keep running."""
    res = st.run(lambda c: c.get_schedule_handle(schedule_id).delete(reason, request_id=request_id))
    emit(res, output, _result("Schedule deleted"))


def register_schedules(cli: click.Group) -> None:
    """Add the ``schedule`` commands to the CLI group."""
    cli.add_command(schedule)
