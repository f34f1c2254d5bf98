"""Prometheus metrics of a region, read from its database at scrape time.

The gauges are over the region's durable state, so any server process of
the region answers the same, and a restarted server loses nothing. A few
counters (``render_process_metrics``) are of the process that answers.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import TYPE_CHECKING

import asyncpg

from store.sql import QUERIES as Q

if TYPE_CHECKING:
    from store.loop_lag import LoopLag
    from store.matching import Matcher
    from store.run_cache import RunCache


#: The kinds ``baton_tasks_queued`` reads 0 for when none waits (a query's
#: task lives only while its query waits: it shows when there is one).
QUEUED_KINDS = ("activity", "workflow")
#: The kinds of archived losing branch (``replication_conflicts.kind``).
CONFLICT_KINDS = ("local_tail", "rejected_batch")


def _labels(**kv: object) -> str:
    inner = ",".join(
        f'{k}="{str(v).replace(chr(92), chr(92) * 2).replace(chr(34), chr(92) + chr(34))}"'
        for k, v in kv.items()
    )
    return "{" + inner + "}" if inner else ""


def _value(value: float | Decimal) -> str:
    """A sample value as Prometheus reads it, exact: a count as all its digits
    (``:g`` kept six, so a counter past a million moved in steps and a run
    count read 1.23457e+06), a non-finite one as ``NaN``/``+Inf``/``-Inf``."""
    if isinstance(value, int):
        return str(int(value))
    f = float(value)
    if math.isnan(f):
        return "NaN"
    if math.isinf(f):
        return "+Inf" if f > 0 else "-Inf"
    if isinstance(value, Decimal) and value == value.to_integral_value():
        return str(int(value))
    if f.is_integer() and abs(f) < 2**53:
        return str(int(f))
    return repr(f)


def _family(
    name: str, help_text: str, samples: Iterable[tuple[str, float]], kind: str = "gauge"
) -> list[str]:
    lines = [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
    lines += [f"{name}{labels} {_value(value)}" for labels, value in samples]
    return lines


async def render_metrics(conn: asyncpg.Connection, region: str, sources: Iterable[str] = ()) -> str:
    """The Prometheus text exposition of the region's gauges.

    ``sources``: the other regions of the config, whose dead letters are
    shown as 0 when there are none, so the series an alert watches is there
    before the first dead letter and goes back to 0 after the last is purged.
    Queued tasks and conflicts read 0 likewise for each namespace the region
    holds and each kind.
    """
    r = region
    out: list[str] = []
    rows = await conn.fetch(Q["metrics_namespaces"])
    namespaces = [x["name"] for x in rows]
    out += _family(
        "baton_namespace_failover_version",
        "Failover version of each namespace as this region knows it.",
        [(_labels(region=r, namespace=x["name"]), x["failover_version"]) for x in rows],
    )
    out += _family(
        "baton_namespace_active",
        "1 where this region is the namespace's active region.",
        [(_labels(region=r, namespace=x["name"]), float(x["active_region"] == r)) for x in rows],
    )
    out += _family(
        "baton_namespace_in_handover",
        "1 while the namespace is in handover.",
        [(_labels(region=r, namespace=x["name"]), float(x["state"] == "handover")) for x in rows],
    )
    rows = await conn.fetch(Q["metrics_executions"])
    out += _family(
        "baton_executions",
        "Runs by namespace and status.",
        [(_labels(region=r, namespace=x["namespace"], status=x["status"]), x["n"]) for x in rows],
    )
    queued = {(ns, kind): 0 for ns in namespaces for kind in QUEUED_KINDS}
    queued.update(
        ((x["namespace"], x["kind"]), x["n"]) for x in await conn.fetch(Q["metrics_tasks"])
    )
    out += _family(
        "baton_tasks_queued",
        "Tasks waiting for a poller, by namespace and kind.",
        [(_labels(region=r, namespace=ns, kind=k), n) for (ns, k), n in sorted(queued.items())],
    )
    t = await conn.fetchrow(Q["metrics_timers"])
    out += _family(
        "baton_timers_pending", "Durable timers not yet fired.", [(_labels(region=r), t["n"])]
    )
    out += _family(
        "baton_timers_overdue_seconds",
        "How far the oldest pending timer is past its fire time (negative: not due).",
        [(_labels(region=r), float(t["overdue_s"]))],
    )
    rows = await conn.fetch(Q["metrics_outbox"])
    out += _family(
        "baton_replication_outbox_rows",
        "Outbox rows not yet acknowledged by Kafka, by namespace.",
        [(_labels(region=r, namespace=x["namespace"]), x["n"]) for x in rows],
    )
    out += _family(
        "baton_replication_outbox_oldest_seconds",
        "Age of the oldest outbox row, by namespace.",
        [(_labels(region=r, namespace=x["namespace"]), float(x["age_s"])) for x in rows],
    )
    rows = await conn.fetch(Q["metrics_replication"])
    out += _family(
        "baton_replication_applied_offsets",
        "Sum over partitions of the next offset to apply, per source region.",
        [(_labels(region=r, source=x["source_region"]), x["applied_offsets"]) for x in rows],
    )
    out += _family(
        "baton_replication_since_last_applied_seconds",
        "Now minus the source commit time of the newest batch applied, per source region.",
        [
            (_labels(region=r, source=x["source_region"]), float(x["since_last_applied_s"]))
            for x in rows
            if x["since_last_applied_s"] is not None
        ],
    )
    dead = {source: 0 for source in sources if source != r}
    dead.update((x["source_region"], x["n"]) for x in await conn.fetch(Q["metrics_dead_letters"]))
    out += _family(
        "baton_replication_dead_letters",
        "Messages that failed to apply after bounded retries, per source region.",
        [(_labels(region=r, source=source), n) for source, n in sorted(dead.items())],
    )
    conflicts = {(ns, kind): 0 for ns in namespaces for kind in CONFLICT_KINDS}
    conflicts.update(
        ((x["namespace"], x["kind"]), x["n"]) for x in await conn.fetch(Q["metrics_conflicts"])
    )
    out += _family(
        "baton_replication_conflicts",
        "Archived losing branches, by namespace and kind.",
        [(_labels(region=r, namespace=ns, kind=k), n) for (ns, k), n in sorted(conflicts.items())],
    )
    rows = await conn.fetch(Q["metrics_schedules"], region)
    out += _family(
        "baton_schedule_fires",
        "What each schedule's fires came to, as it last reported (outcome: actions, skipped, "
        "buffer_dropped, missed_catchup, missed_paused).",
        [
            (_labels(region=r, namespace=x["namespace"], schedule=x["schedule_id"], outcome=k), v)
            for x in rows
            for k, v in sorted(dict(x["counters"]).items())
        ],
    )
    out += _family(
        "baton_schedule_running_actions",
        "Action workflows each schedule has running.",
        [
            (_labels(region=r, namespace=x["namespace"], schedule=x["schedule_id"]), x["running"])
            for x in rows
        ],
    )
    out += _family(
        "baton_schedule_paused",
        "1 while the schedule is paused.",
        [
            (
                _labels(region=r, namespace=x["namespace"], schedule=x["schedule_id"]),
                float(x["paused"]),
            )
            for x in rows
        ],
    )
    return "\n".join(out) + "\n"


def render_process_metrics(
    region: str,
    cache: RunCache,
    matcher: Matcher,
    speculation: Mapping[str, int],
    loop_lag: LoopLag,
) -> str:
    """Counters of this server process alone (each process of a region has its
    own, told apart by its ``process`` label: the pid)."""
    st = cache.stats
    pid = os.getpid()
    out = _family(
        "baton_run_cache_lookups_total",
        "Task completions that looked for their run among the runs this process wrote last "
        "(outcome: hit, miss, bypassed while too many remembered writes were refused).",
        [
            (_labels(region=region, process=pid, outcome="hit"), st.hits),
            (_labels(region=region, process=pid, outcome="miss"), st.misses),
            (_labels(region=region, process=pid, outcome="bypassed"), st.bypassed),
        ],
        "counter",
    )
    out += _family(
        "baton_run_cache_refused_total",
        "Writes from a remembered run refused because the run changed elsewhere (then read).",
        [(_labels(region=region, process=pid), st.stale)],
        "counter",
    )
    out += _family(
        "baton_run_cache_runs",
        "Runs this process remembers.",
        [(_labels(region=region, process=pid), len(cache))],
    )
    out += _family(
        "baton_sync_matched_total",
        "New workflow tasks handed to a long-poll of this process without a task row.",
        [(_labels(region=region, process=pid), matcher.matched)],
        "counter",
    )
    out += _family(
        "baton_sync_match_missed_total",
        "New workflow tasks written as task rows: no long-poll of their queue was asleep in "
        "this process (reason: no_poller, all_awake).",
        [
            (_labels(region=region, process=pid, reason=reason), n)
            for reason, n in matcher.missed.items()
        ],
        "counter",
    )
    out += _family(
        "baton_speculative_workflow_tasks_total",
        "Workflow tasks a worker ran ahead and sent with an activity's result: recorded in "
        "the result's write (outcome accepted) or refused, the result recorded alone (outcome "
        "refused; reason: stale, pending, paused, versioned, history, clock, commands).",
        [
            (
                _labels(region=region, process=pid, outcome="accepted"),
                speculation.get("accepted", 0),
            ),
            *[
                (_labels(region=region, process=pid, outcome="refused", reason=reason), n)
                for reason, n in sorted(speculation.items())
                if reason != "accepted"
            ],
        ],
        "counter",
    )
    name, labels = "baton_event_loop_lag_seconds", {"region": region, "process": pid}
    out += [
        f"# HELP {name} How much later than asked this process's event loop woke a probe "
        "that sleeps 50 ms again and again: what every coroutine ready to run waits behind "
        "the rest.",
        f"# TYPE {name} histogram",
        *[f"{name}_bucket{_labels(**labels, le=le)} {n}" for le, n in loop_lag.cumulative()],
        f"{name}_sum{_labels(**labels)} {_value(loop_lag.total_s)}",
        f"{name}_count{_labels(**labels)} {loop_lag.samples}",
    ]
    return "\n".join(out) + "\n"
