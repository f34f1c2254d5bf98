"""How ``baton workflow describe`` shows a run as tables: its execution, its
pending work and versioning, and its failure with the failure's cause."""

from __future__ import annotations

from typing import Any

from rich.console import Group, RenderableType
from rich.text import Text

from ops.output import kv_table, readable, short, table

__all__ = ["describe_view", "failure_view"]


def describe_view(d: dict[str, Any]) -> RenderableType:
    ex = d["execution"]
    keys = [
        "workflow_id",
        "run_id",
        "workflow_type",
        "task_queue",
        "status",
        "paused",
        "start_time",
        "close_time",
        "history_length",
        "last_write_version",
        "continued_from_run_id",
        "continued_to_run_id",
    ]
    if ex.get("execution_time") not in (None, ex.get("start_time")):
        keys.append("execution_time")  # its code was due later: a delay, cron time or retry
    # the run's and its chain's timeouts, the retry of a whole workflow: only when set
    keys += [
        k
        for k in (
            "run_timeout_s",
            "execution_timeout_s",
            "execution_expiration_time",
            "retry_policy",
            "cron_schedule",
        )
        if ex.get(k) is not None
    ]
    # memo values (or, without the key, what their payloads are) and search attributes
    extra = {f"memo.{k}": readable(v) for k, v in (ex.get("memo") or {}).items()}
    extra |= {f"search_attribute.{k}": v for k, v in (ex.get("search_attributes") or {}).items()}
    parts: list[RenderableType] = [
        kv_table({k: ex.get(k) for k in keys} | extra, title=f"workflow {ex['workflow_id']}")
    ]
    # a run nearing its limits (history length or size, signals)
    parts += [Text(f"warning: {w}", style="yellow") for w in d.get("warnings") or []]
    # What an operator looks at a paused or held run for: why, by whom, since
    # when, and what its next task waits for (the JSON carries the same).
    pause = ex.get("pause") if ex.get("paused") else None
    if pause:
        parts.append(
            kv_table(
                {k: pause.get(k) for k in ("reason", "source", "identity", "since")},
                title="pause",
            )
        )
    v = d.get("versioning")
    if v:
        o = v.get("override")
        parts.append(
            kv_table(
                {
                    "deployment": v.get("deployment"),
                    "build_id": v.get("build_id"),
                    "behavior": v.get("effective_behavior"),
                    "override": f"{o['kind']} {o.get('build_id') or ''}".strip() if o else None,
                    "next_task_version": v.get("next_task_version"),
                    "target_version_changed": v.get("target_version_changed"),
                    "waiting_for_poller": v.get("note") or v.get("waiting_for_poller"),
                },
                title="versioning",
            )
        )
    failure = d.get("failure")
    if failure:
        parts.append(kv_table(failure_view(failure), title="failure"))
    wt = d.get("pending_workflow_task")
    if wt:
        last = wt.get("last_failure")
        shown = {k: v for k, v in wt.items() if k != "last_failure"}
        if last:
            shown["last_failure"] = f"{last.get('type') or 'Error'}: {last.get('message')}"
        parts.append(kv_table(shown, title="pending workflow task"))
    if d.get("pending_activities"):
        parts.append(
            table(
                [
                    "activity id",
                    "type",
                    "state",
                    "attempt",
                    "heartbeat",
                    "last heartbeat",
                    "last failure",
                ],
                [
                    [
                        a["activity_id"],
                        a["activity_type"],
                        a["state"]
                        + (" (cancel requested)" if a.get("cancel_requested") else "")
                        + (" (paused)" if a.get("paused") else ""),
                        a["attempt"],
                        # the details the next attempt resumes from, as values
                        _details(a.get("heartbeat_details")),
                        a.get("last_heartbeat_time"),
                        (a.get("last_failure") or {}).get("message"),
                    ]
                    for a in d["pending_activities"]
                ],
                title="pending activities",
            )
        )
    if d.get("pending_timers"):
        parts.append(
            table(
                ["timer id", "fires at"],
                [[t.get("timer_id"), t.get("fire_at")] for t in d["pending_timers"]],
                title="pending timers",
            )
        )
    return Group(*parts)


def _details(details: Any) -> str | None:
    """Heartbeat details as values (one detail as itself), or None when there are none."""
    if not details:
        return None
    values = readable(details)
    return short(values[0] if isinstance(values, list) and len(values) == 1 else values, 60)


def failure_view(failure: dict[str, Any]) -> dict[str, Any]:
    """A run's failure as a table shows it: its type and message, and its cause's."""
    view = {"type": failure.get("type"), "message": failure.get("message")}
    cause = failure.get("cause")
    if isinstance(cause, dict):
        view["cause"] = f"{cause.get('type') or 'Error'}: {cause.get('message')}"
    return view
