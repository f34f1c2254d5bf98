"""A region that missed its own deposal learns it from its peers.

A forced failover tells the old active region directly when its database
answers, and the stream tells it otherwise, once it reads the new active
region's topic. A region that was away when it was deposed and comes back
while that stream cannot reach it (the cross-region link still down, its
applier behind) would go on as the active region meanwhile: fire its timers
and schedules again, hand tasks to the workers that poll it and accept
writes, all to be archived later as a losing branch, with activities run a
second time in the process.

So one server of each region asks each peer over HTTP for its namespace list,
at start and every few seconds, and compares each namespace it holds itself
active for with the peers' copies. A peer
that holds it under a higher failover version is the newer word (the rule
the stream applies, ARCHITECTURE invariant 3): the region becomes a standby
of the region that peer names and drops its pending work, as the stream
would have made it. A peer that does not answer changes nothing.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import aiohttp

from replication.sql import QUERIES as RQ
from store.context import Store
from store.leader import lead_forever

log = logging.getLogger("baton.fence")

#: Advisory lock key of the region's peer check ("baton-pf").
PEER_FENCE_LOCK = 0x6261746F6E2D7066 & 0x7FFFFFFFFFFFFFFF
#: How often the namespaces this region holds active are checked with its peers.
CHECK_EVERY_S = 2.0
#: How long one peer may take to answer.
PEER_TIMEOUT_S = 3.0


class PeerFence:
    """Checks the namespaces active here against the peers' view of them."""

    def __init__(self, store: Store):
        self.store = store

    async def run(self) -> None:
        """Check while this process holds the region's lock, until cancelled."""
        if len(self.store.config.regions) < 2:
            return
        await lead_forever(self.store, PEER_FENCE_LOCK, "peer fence", self._watch)

    async def check_at_start(self) -> None:
        """One check before the server runs its loops and serves, so a region
        returning deposed fires no timer and takes no write first. Bounded: a
        peer that does not answer holds the start up a few seconds at most."""
        if len(self.store.config.regions) < 2:
            return
        timeout = aiohttp.ClientTimeout(total=PEER_TIMEOUT_S)
        try:
            async with (
                asyncio.timeout(2 * PEER_TIMEOUT_S),
                aiohttp.ClientSession(timeout=timeout) as http,
            ):
                await self.check(http)
        except TimeoutError:
            log.warning("the peers of %s did not answer in time; starting", self.store.region)

    async def _watch(self) -> None:
        timeout = aiohttp.ClientTimeout(total=PEER_TIMEOUT_S)
        async with aiohttp.ClientSession(timeout=timeout) as http:
            while True:
                await self.check(http)
                await asyncio.sleep(CHECK_EVERY_S)

    async def check(self, http: aiohttp.ClientSession) -> list[str]:
        """Step down from every namespace a peer holds under a higher version,
        and leave those the active region took this region out of; the
        namespaces this region stepped down from."""
        region = self.store.region
        async with self.store.pool.acquire() as conn:
            rows = await conn.fetch(RQ["namespaces_active_here"], region)
            standby = await conn.fetch(RQ["namespaces_standby_here"], region)
        deposed: list[str] = []
        # one list of each peer's namespaces a round, not a request a namespace
        peers = sorted(
            (
                {p for r in rows for p in r["regions"] if p != region}
                | {r["active_region"] for r in standby}
            )
            & set(self.store.config.regions)
        )
        if not peers:
            return deposed
        lists = await asyncio.gather(*(self._peer_namespaces(http, p) for p in peers))
        held = dict(zip(peers, lists, strict=True))
        for r in rows:
            answers = [held.get(p, {}).get(r["name"]) for p in r["regions"] if p != region]
            newer = [
                a
                for a in answers
                if a is not None
                and int(a["failover_version"]) > int(r["failover_version"])
                and a["active_region"] != region
            ]
            if not newer:
                continue
            newest = max(newer, key=lambda a: int(a["failover_version"]))
            async with self.store.pool.acquire() as conn, conn.transaction():
                await conn.execute(RQ["lock_namespace_for_promotion"], r["name"])
                moved = await conn.fetchval(
                    RQ["depose_namespace"],
                    r["name"],
                    region,
                    newest["active_region"],
                    int(newest["failover_version"]),
                )
            if moved is not None:
                log.warning(
                    "namespace %s is active in %s under failover version %s, as a peer says; "
                    "%s missed the move and is a standby now",
                    r["name"],
                    newest["active_region"],
                    newest["failover_version"],
                    region,
                )
                deposed.append(str(r["name"]))
        for r in standby:
            await self._leave_if_removed(r, held.get(r["active_region"], {}).get(r["name"]))
        return deposed

    async def _leave_if_removed(self, row: Any, active: dict[str, Any] | None) -> None:
        """Leave a namespace whose active region no longer lists this region
        (a ``remove-region`` this region missed, its namespace left with one
        region, so no stream tells it), once nothing of it waits here to ship:
        out of the namespace, the publisher would drop what a forced failover
        left unshipped rather than have it archived and applied again."""
        region = self.store.region
        if (
            active is None
            or active["active_region"] != row["active_region"]
            or int(active["failover_version"]) < int(row["failover_version"])
            or not isinstance(active.get("regions"), list)
            or region in active["regions"]
        ):
            return
        async with self.store.pool.acquire() as conn, conn.transaction():
            await conn.execute(RQ["lock_namespace_for_promotion"], row["name"])
            left = await conn.fetchval(RQ["leave_namespace"], row["name"], region)
        if left is not None:
            log.warning(
                "namespace %s is active in %s, which no longer lists %s as a region: "
                "%s left it (regions now %s)",
                row["name"],
                row["active_region"],
                region,
                region,
                ", ".join(left),
            )

    async def _peer_namespaces(
        self, http: aiohttp.ClientSession, peer: str
    ) -> dict[str, dict[str, Any]]:
        """The namespaces ``peer`` holds, by name (none if it does not answer)."""
        url = f"{self.store.config.regions[peer].url}/api/v1/namespaces"
        try:
            async with http.get(url) as resp:
                if resp.status != 200:
                    return {}
                body = await resp.json()
        except (aiohttp.ClientError, TimeoutError, ValueError):
            return {}  # away or not serving: it tells this region nothing
        if not isinstance(body, list):
            return {}
        return {
            ns["name"]: ns
            for ns in body
            if isinstance(ns, dict)
            and isinstance(ns.get("name"), str)
            and isinstance(ns.get("failover_version"), int)
            and ns.get("active_region")
        }
