"""Namespace calls of the client: create, describe, list, update."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from worker import _http
from worker._handle_control import given_or_new_id
from worker._http import ns_path


class NamespaceMixin:
    """Client calls that create, read and change namespaces."""

    namespace: str

    async def call(self, method: str, path: str, body: Any = None, **kw: Any) -> Any:
        raise NotImplementedError

    async def create_namespace(
        self,
        name: str,
        *,
        regions: Sequence[str] | None = None,
        active_region: str | None = None,
        retention_days: int = 7,
        description: str = "",
        request_id: str | None = None,
    ) -> dict[str, Any]:
        """Create a namespace. The call is retried on a dropped connection or
        UNAVAILABLE; ``request_id`` (drawn here when not given) makes a retry
        of a create that went through answer with the namespace it made,
        where any other create of the name gets ``NamespaceAlreadyExistsError``."""
        body = {
            "name": name,
            "regions": list(regions) if regions else None,
            "active_region": active_region,
            "retention_days": retention_days,
            "description": description,
            "request_id": given_or_new_id(request_id),
        }
        return await self.call("POST", f"{_http.API}/namespaces", body)  # type: ignore[no-any-return]

    async def describe_namespace(self, name: str | None = None) -> dict[str, Any]:
        return await self.call("GET", ns_path(name or self.namespace))  # type: ignore[no-any-return]

    async def list_namespaces(self) -> list[dict[str, Any]]:
        return await self.call("GET", f"{_http.API}/namespaces")  # type: ignore[no-any-return]

    async def update_namespace(
        self,
        name: str | None = None,
        *,
        retention_days: int | None = None,
        description: str | None = None,
    ) -> dict[str, Any]:
        """Change a namespace's retention or description (the client's by default).

        What is left out keeps its value. The answer is the namespace as it is
        now, with ``changed`` naming the fields this call changed (none when
        it asked for what was there already).
        """
        body = {"retention_days": retention_days, "description": description}
        return await self.call("PATCH", ns_path(name or self.namespace), body)  # type: ignore[no-any-return]


__all__ = ["NamespaceMixin"]
