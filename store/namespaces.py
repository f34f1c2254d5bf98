"""Namespaces as the store reads them, and the rule of who may write them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import asyncpg

from store.context import Store
from store.errors import (
    InvalidArgument,
    NamespaceInHandover,
    NamespaceNotActive,
    NamespaceNotFound,
)
from store.sql import QUERIES as Q
from store.visibility.attributes import PREDEFINED_ATTRIBUTES
from worker.wire.requests import NAMESPACE_NAME_RULE, namespace_name_problem


@dataclass(frozen=True)
class Namespace:
    name: str
    regions: list[str]
    active_region: str
    failover_version: int
    state: str
    retention_days: int
    description: str
    #: Custom search attributes: name -> {"type": T, "removed": bool}.
    search_attributes: dict[str, Any] = field(default_factory=dict)
    #: Worker deployments: name -> current, ramping, revision, versions.
    deployments: dict[str, Any] = field(default_factory=dict)

    def active_search_attributes(self) -> dict[str, str]:
        """The predefined and the registered, not removed custom attributes: name -> type."""
        return {**PREDEFINED_ATTRIBUTES, **self.custom_search_attributes()}

    def custom_search_attributes(self) -> dict[str, str]:
        """Registered, not removed custom attributes: name -> type."""
        return {
            name: str(spec["type"])
            for name, spec in self.search_attributes.items()
            if not spec.get("removed")
        }

    @classmethod
    def from_row(cls, row: asyncpg.Record | dict[str, Any]) -> Namespace:
        return cls(
            name=row["name"],
            regions=list(row["regions"]),
            active_region=row["active_region"],
            failover_version=row["failover_version"],
            state=row["state"],
            retention_days=row["retention_days"],
            description=row["description"],
            search_attributes=dict(row.get("search_attributes") or {}),
            deployments=dict(row.get("deployments") or {}),
        )

    def require_writable(self, region: str, region_urls: dict[str, str]) -> None:
        """Invariant 2: only the active region writes, and not during a handover."""
        if self.active_region != region:
            raise NamespaceNotActive(
                f"namespace {self.name!r} is active in {self.active_region}, not in {region}: "
                f"send writes to {region_urls.get(self.active_region, self.active_region)}",
                active_region=self.active_region,
                active_url=region_urls.get(self.active_region),
            )
        if self.state == "handover":
            # A failover that was killed (not interrupted: that undoes it) leaves
            # the handover behind, and nothing ends it but an operator.
            raise NamespaceInHandover(
                f"namespace {self.name!r} is being handed over from {self.active_region} to "
                "another region: writes resume when the failover ends, so retry shortly. If no "
                "`baton failover` of it is running any more (one was killed), the handover "
                f"stays until it is ended: `baton failover {self.name} --to REGION` finishes "
                f"the move, `baton failover {self.name} --to {self.active_region}` undoes it",
                active_region=self.active_region,
            )


def _not_found(name: str) -> NamespaceNotFound:
    if namespace_name_problem(name) is not None:
        # no create can make it: say so rather than suggest one
        return NamespaceNotFound(
            f"namespace {name[:210]!r} does not exist, and no namespace can have that name "
            f"({NAMESPACE_NAME_RULE}): `baton namespace list` shows the namespaces"
        )
    return NamespaceNotFound(
        f"namespace {name!r} does not exist: create it with `baton namespace create {name}`"
    )


async def get_namespace(conn: asyncpg.Connection, name: str) -> Namespace:
    row = await conn.fetchrow(Q["get_namespace"], name)
    if row is None:
        raise _not_found(name)
    return Namespace.from_row(row)


async def lock_namespace(
    store: Store, conn: asyncpg.Connection, name: str, *, exclusive: bool
) -> Namespace:
    """Lock a namespace (its fence shared for a write to one of its runs; the
    fence exclusive and the row for update to change the namespace itself,
    see migration 0023); only its active region may."""
    row = await conn.fetchrow(
        Q["lock_namespace_row"] if exclusive else Q["lock_namespace_shared"], name
    )
    if row is None:
        raise _not_found(name)
    ns = Namespace.from_row(row)
    ns.require_writable(store.region, store.region_urls)
    return ns


async def update_namespace(
    store: Store, name: str, *, retention_days: int | None, description: str | None
) -> tuple[Namespace, list[str]]:
    """Change a namespace's retention or description in its active region.

    Returns the namespace as it is now and the fields that changed; the same
    update again changes nothing. The change reaches the other regions of the
    namespace through the outbox, as every namespace change does.
    """
    if retention_days is None and description is None:
        raise InvalidArgument("nothing to update: give retention_days, description or both")
    async with store.pool.acquire() as conn, conn.transaction():
        ns = await lock_namespace(store, conn, name, exclusive=True)
        retention = ns.retention_days if retention_days is None else retention_days
        text = ns.description if description is None else description
        changed = [
            field
            for field, old, new in (
                ("retention_days", ns.retention_days, retention),
                ("description", ns.description, text),
            )
            if old != new
        ]
        if not changed:
            return ns, []
        row = await conn.fetchrow(Q["set_namespace_settings"], name, retention, text)
        await conn.execute(Q["outbox_namespace"], name)
    return Namespace.from_row(row), changed


async def require_active_here(store: Store, namespace: str) -> None:
    """Raise unless the namespace is active (and not in handover) in this region.

    Polls, queries and updates wait for work of the active region: a standby,
    or a region the namespace left while they waited, sends the caller there.
    """
    ns = await _seen_namespace(store, namespace)
    ns.require_writable(store.region, store.region_urls)


async def _seen_namespace(store: Store, namespace: str) -> Namespace:
    """The namespace as this process last read it, or as it is now if it changed since."""
    notifier = store.notifier
    seen = store.namespace_seen.get(namespace)
    if seen is not None and seen[0] == notifier.namespace_epoch and notifier.connected.is_set():
        # unchanged since this process last read it (a change notifies); the
        # take of a task checks the namespace again under its lock
        return seen[1]
    epoch = notifier.namespace_epoch
    async with store.pool.acquire() as conn:
        ns = await get_namespace(conn, namespace)
    store.namespace_seen[namespace] = (epoch, ns)
    return ns


async def require_member_here(store: Store, namespace: str) -> None:
    """Raise ``NamespaceNotActive`` when this region was taken out of ``namespace``.

    A removed region keeps what it held of the namespace but applies nothing
    more of it: answering reads from that copy would show its runs as they
    were at the removal for ever (and a result long-poll would never end).
    The caller is sent to the active region, as the SDK follows. A namespace
    this region does not hold at all is left to the route to answer.
    """
    try:
        ns = await _seen_namespace(store, namespace)
    except NamespaceNotFound:
        return
    if store.region in ns.regions:
        return
    url = store.region_urls.get(ns.active_region)
    raise NamespaceNotActive(
        f"{store.region} is no longer a region of namespace {namespace!r} (its regions: "
        f"{', '.join(ns.regions)}), so what it holds of it is not kept up to date: ask "
        f"{ns.active_region}, where it is active, at {url or ns.active_region}",
        active_region=ns.active_region,
        active_url=url,
    )
