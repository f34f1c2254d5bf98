"""Options of a whole workflow chain: the runs one start gives a workflow id
through continue-as-new, retries and resets.

As in Temporal, the execution timeout bounds the chain, not a run: the start
sets its deadline (``execution_expiration_time``), every run of the chain
keeps it in its row and in its started event, and holds a durable timer for
it, so the run open when it passes times out (``timeout_type`` ``execution``)
in whichever region is active then.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from store.errors import InvalidArgument
from store.retry import normalize_policy
from store.sql import QUERIES as Q

if TYPE_CHECKING:
    from store.mutable_state import RunTxn

#: Timer kind of the deadline of a run's whole chain (its execution timeout).
EXECUTION_TIMEOUT = "execution_timeout"

#: The execution row's columns a chain carries from run to run.
CHAIN_COLUMNS = (
    "execution_timeout_s",
    "execution_expiration_time",
    "retry_policy",
    "cron_schedule",
)


def chain_of(
    execution_timeout_s: float | None,
    now: datetime,
    retry_policy: dict[str, Any] | None = None,
    cron_schedule: str | None = None,
) -> dict[str, Any]:
    """The chain columns of a start's run at ``now``."""
    return {
        "cron_schedule": cron_schedule,
        "execution_timeout_s": execution_timeout_s,
        "execution_expiration_time": None
        if execution_timeout_s is None
        else now + timedelta(seconds=execution_timeout_s),
        "retry_policy": retry_policy,
    }


def start_policy(policy: Any) -> dict[str, Any] | None:
    """A start's workflow retry policy, checked and filled in (None: none)."""
    if policy is None:
        return None
    raw = policy.model_dump() if hasattr(policy, "model_dump") else dict(policy)
    if raw.get("on_max_attempts") not in (None, "fail"):
        raise InvalidArgument(
            "retry_policy.on_max_attempts: a workflow's attempts end in failure; "
            "leave it out (pause applies to activities)"
        )
    try:
        return normalize_policy(raw)
    except ValueError as exc:
        raise InvalidArgument(str(exc)) from None


def capped_run_timeout(
    run_timeout_s: float | None, execution_timeout_s: float | None
) -> float | None:
    """A start's run timeout as Temporal sets it: no longer than the chain's
    execution timeout, and that timeout when only it was given (so
    ``workflow.info().run_timeout`` reads as Temporal's does)."""
    if execution_timeout_s is None:
        return run_timeout_s
    if run_timeout_s is None or run_timeout_s > execution_timeout_s:
        return execution_timeout_s
    return run_timeout_s


def carried(exe: dict[str, Any]) -> dict[str, Any]:
    """The chain columns of a run, for the next run of its chain."""
    return {k: exe.get(k) for k in CHAIN_COLUMNS}


def chain_attributes(exe: dict[str, Any]) -> dict[str, Any]:
    """What a run's started event says of its chain (only what was set, so
    other histories keep their shape): the worker's ``workflow.info()``
    reads it, and a region that promotes the run finds it there too."""
    attrs: dict[str, Any] = {}
    if exe.get("execution_timeout_s") is not None:
        attrs["execution_timeout_s"] = exe["execution_timeout_s"]
    expiration = exe.get("execution_expiration_time")
    if expiration is not None:
        attrs["execution_expiration_time"] = _iso(expiration)
    if exe.get("retry_policy") is not None:
        attrs["retry_policy"] = exe["retry_policy"]
    if exe.get("cron_schedule") is not None:
        attrs["cron_schedule"] = exe["cron_schedule"]
    return attrs


async def fill_from_started(run: RunTxn, started: dict[str, Any]) -> None:
    """On a promotion: the chain columns of a row a standby inserted before it
    knew them (an older release applied the run's start) from the run's
    started event, which holds them, so the run keeps its deadline and retry
    policy in the new active region."""
    missing = {k: started[k] for k in CHAIN_COLUMNS if run.exe.get(k) is None and k in started}
    if not missing:
        return
    run.exe.update(missing)
    if "execution_expiration_time" in missing:
        run.exe["execution_expiration_time"] = _as_datetime(missing["execution_expiration_time"])
    await run.conn.execute(
        Q["fill_chain_columns"],
        run.namespace,
        run.workflow_id,
        uuid.UUID(run.run_id),
        run.exe.get("execution_timeout_s"),
        run.exe.get("execution_expiration_time"),
        run.exe.get("retry_policy"),
        run.exe.get("cron_schedule"),
    )


def add_execution_timer(run: RunTxn) -> None:
    """The run's timer of its chain's deadline, if the chain has one."""
    expiration = run.exe.get("execution_expiration_time")
    if expiration is not None:
        run.add_timer(EXECUTION_TIMEOUT, "execution", _as_datetime(expiration))


def expired(exe: dict[str, Any], at: datetime) -> bool:
    """Whether the chain's deadline is at or before ``at``."""
    expiration = exe.get("execution_expiration_time")
    return expiration is not None and _as_datetime(expiration) <= at


def _as_datetime(value: datetime | str) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(value)


def _iso(value: datetime | str) -> str:
    return _as_datetime(value).isoformat()
