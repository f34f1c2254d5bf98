"""Whether a graceful failover's target may take the namespace.

A handover promotes its target once it has applied the source's stream, so
a target that may not hold everything is refused before the handover (a
backfill still running, messages of the namespace in its dead-letter table)
and again once the drain ends (a message in flight that it set aside while
the failover drained moved its offsets past what it lacks). A refusal for
dead letters has its own code, ``FAILOVER_TARGET_DEAD_LETTERS``, so a
runbook can tell it from bad input and retry or purge the letters. A target
none of whose servers answers is refused too (``UNAVAILABLE``), before
the handover (it would apply nothing, and the drain would hold writes for
its whole timeout) and again before the promotion: the namespace would be
active where nothing serves it. So is a source holding unshipped batches of
the namespace none of whose servers answers: nothing would ship them.
"""

from __future__ import annotations

import asyncio
import time

import aiohttp
import asyncpg

from replication.sql import QUERIES as RQ
from store import db
from store.config import BatonConfig
from store.errors import InvalidArgument, StoreError, Unavailable
from worker.wire import ErrorCode


class FailoverTargetDeadLetters(StoreError):
    """The target holds dead letters of the namespace: it may lack what they carried.
    ``details`` holds ``dead_letters`` (how many) and ``target``."""

    code = ErrorCode.FAILOVER_TARGET_DEAD_LETTERS
    http_status = 409


async def require_ready(
    config: BatonConfig, src: asyncpg.Connection, target: str, namespace: str
) -> None:
    """Refuse a handover to a region that may not hold everything: a backfill
    still running, or messages of the namespace in its dead-letter table."""
    backfill = await src.fetchval(RQ["backfill_state"], namespace, target)
    if backfill is not None and backfill != "done":
        raise InvalidArgument(
            f"{target} is still being backfilled ({backfill}): finish it with "
            f"`baton namespace add-region {namespace} {target}` first"
        )
    if dead := await dead_letters(config, target, namespace):
        raise FailoverTargetDeadLetters(
            f"{target} has {dead} dead letter(s) of namespace {namespace!r}: nothing moved; "
            f"retry or purge them (`baton replication dlq list --region {target}`) before "
            "moving the namespace there",
            dead_letters=dead,
            target=target,
        )


async def refuse_dead_letters_after_drain(
    config: BatonConfig, source: str, target: str, namespace: str
) -> None:
    """Refuse the promotion if the target set messages of the namespace aside
    as dead letters while the failover drained the stream."""
    if dead := await dead_letters(config, target, namespace):
        raise FailoverTargetDeadLetters(
            f"{target} set aside {dead} message(s) of {namespace!r} as dead letters (`baton "
            f"replication dlq list --region {target}`): {namespace} stays active in {source}; "
            "retry or purge them, then run this again",
            dead_letters=dead,
            target=target,
        )


#: How long a graceful failover waits for a server of its target to answer.
SERVING_WAIT_S = 5.0


async def require_serving(config: BatonConfig, source: str, target: str, namespace: str) -> None:
    """Refuse to promote a target no server of which answers: the namespace
    would be active where nothing takes its writes, dispatches its tasks or
    fires its timers, until someone starts them (a forced failover, for a
    source that is down, is not held back: anything beats a lost region)."""
    why = await serving_problem(config, target)
    if why is None:
        return
    url = config.regions[target].url
    raise Unavailable(
        f"no server of {target} answers at {url}/healthz ({why}): moved there, {namespace} "
        f"would have no server to take its writes, dispatch its tasks or fire its timers. "
        f"{namespace} stays active in {source}; start {target}'s servers (`baton server "
        f"--region {target}`), then run this again",
        target=target,
        url=url,
    )


async def require_source_shipping(
    config: BatonConfig, src: asyncpg.Connection, source: str, target: str, namespace: str
) -> None:
    """Refuse a handover whose source holds batches of the namespace it has not
    shipped while no server of it answers: its servers publish the outbox, so
    the drain would hold every write for the whole --timeout and then give up."""
    backlog = await src.fetchval(RQ["outbox_backlog_of"], namespace)
    if not backlog:
        return  # everything is in the stream: the drain needs no server of the source
    why = await serving_problem(config, source)
    if why is None:
        return
    url = config.regions[source].url
    raise Unavailable(
        f"{backlog} batch(es) of {namespace} wait in {source}'s outbox and no server of "
        f"{source} answers at {url}/healthz ({why}) to ship them: nothing moved. Start "
        f"{source}'s servers (`baton server --region {source}`) and run this again, or, if "
        f"{source} is down, `baton failover {namespace} --to {target} --force` promotes "
        f"{target} from what it has applied (what {source} did not ship is archived and "
        "re-applied when it returns)",
        source=source,
        url=url,
    )


async def serving_problem(
    config: BatonConfig, region: str, wait_s: float = SERVING_WAIT_S
) -> str | None:
    """Why no server of ``region`` answers its health check within ``wait_s``
    (asked every half second), or None once one does."""
    url = config.regions[region].url
    deadline = time.monotonic() + wait_s
    why = "no answer"
    timeout = aiohttp.ClientTimeout(total=2.0)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        while True:
            try:
                async with http.get(f"{url}/healthz") as resp:
                    if resp.status == 200:
                        return None
                    why = f"HTTP {resp.status}"
            except (aiohttp.ClientError, TimeoutError) as exc:
                why = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            if time.monotonic() > deadline:
                return why
            await asyncio.sleep(0.5)


async def dead_letters(config: BatonConfig, target: str, namespace: str) -> int:
    """How many messages of ``namespace`` the target holds as dead letters."""
    dst = await db.connect_region(config, target, role="the failover's target (nothing moved)")
    try:
        return int(await dst.fetchval(RQ["dead_letters_of_namespace"], namespace))
    finally:
        await dst.close()
