"""The custom search attributes a namespace registers.

A registration changes the namespace row (and so replicates with it, like
any namespace change). A removed attribute is kept as a tombstone: runs keep
the values they hold, queries no longer see it, and adding it again with the
type it had brings it back, while another type is refused (the values stored
under the old type could not be compared under the new one).
"""

from __future__ import annotations

from typing import Any

from store.context import Store
from store.errors import InvalidArgument
from store.namespaces import Namespace, lock_namespace
from store.sql import QUERIES as Q
from store.visibility.attributes import (
    MAX_REGISTERED,
    NAME_RE,
    PREDEFINED_ATTRIBUTES,
    SYSTEM_ATTRIBUTES,
    check_attribute_name,
    parse_type,
)


def describe(ns: Namespace) -> list[dict[str, Any]]:
    """System and custom attributes, as `search-attribute list` shows them."""
    out = [
        {
            "name": a.name,
            "type": a.type.value if a.type.value in _SHOWN else "Keyword",
            "kind": "system",
        }
        for a in SYSTEM_ATTRIBUTES.values()
    ]
    out += [
        {"name": name, "type": t, "kind": "predefined"} for name, t in PREDEFINED_ATTRIBUTES.items()
    ]
    out += [
        {"name": name, "type": t, "kind": "custom"}
        for name, t in sorted(ns.custom_search_attributes().items())
    ]
    return out


_SHOWN = {"Keyword", "Text", "Int", "Double", "Bool", "Datetime", "KeywordList", "Duration"}


async def add_attribute(store: Store, namespace: str, name: str, type_name: str) -> dict[str, Any]:
    """Register ``name`` with a type; the same registration again changes nothing."""
    check_attribute_name(name)
    kind = parse_type(type_name)
    async with store.pool.acquire() as conn, conn.transaction():
        ns = await lock_namespace(store, conn, namespace, exclusive=True)
        attrs = dict(ns.search_attributes)
        spec = attrs.get(name)
        if spec is not None and spec["type"] != kind.value:
            state = "was" if spec.get("removed") else "is"
            raise InvalidArgument(
                f"search attribute {name!r} {state} registered as {spec['type']}; runs may hold "
                f"{spec['type']} values under it, so it cannot become {kind.value}: "
                "pick another name"
            )
        if spec is not None and not spec.get("removed"):
            return {"name": name, "type": kind.value, "changed": False}
        if len(ns.custom_search_attributes()) >= MAX_REGISTERED:
            raise InvalidArgument(
                f"namespace {namespace!r} has {MAX_REGISTERED} custom search attributes, the "
                "limit: remove one first"
            )
        attrs[name] = {"type": kind.value, "removed": False}
        await conn.fetchrow(Q["set_namespace_search_attributes"], namespace, attrs)
        await conn.execute(Q["outbox_namespace"], namespace)
    return {"name": name, "type": kind.value, "changed": True}


async def remove_attribute(store: Store, namespace: str, name: str) -> dict[str, Any]:
    """Unregister ``name``; removing one that is not registered changes nothing."""
    if not NAME_RE.match(name):
        raise InvalidArgument(
            f"{name!r} is not a search attribute name (1-64 letters, digits and underscores, "
            "starting with a letter or underscore): `baton namespace search-attribute list` "
            "shows the registered ones"
        )
    async with store.pool.acquire() as conn, conn.transaction():
        ns = await lock_namespace(store, conn, namespace, exclusive=True)
        if name in SYSTEM_ATTRIBUTES or name in PREDEFINED_ATTRIBUTES:
            raise InvalidArgument(f"{name!r} is a system attribute and cannot be removed")
        attrs = dict(ns.search_attributes)
        spec = attrs.get(name)
        if spec is None or spec.get("removed"):
            # the same keys as a removal's answer: the type it was (None: never one)
            return {"name": name, "type": spec["type"] if spec else None, "changed": False}
        attrs[name] = {"type": spec["type"], "removed": True}
        await conn.fetchrow(Q["set_namespace_search_attributes"], namespace, attrs)
        await conn.execute(Q["outbox_namespace"], namespace)
    return {"name": name, "type": spec["type"], "changed": True}
