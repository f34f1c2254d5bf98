"""Worker deployments from the client: routing new work to builds, overrides."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

from worker._http import ns_path
from worker.errors import InvalidArgumentError
from worker.wire import VERSION_NAME_PATTERN


class VersioningMixin:
    """Deployment calls of :class:`worker.Client`."""

    namespace: str
    identity: str

    async def call(self, method: str, path: str, body: Any = None, **kw: Any) -> Any:
        raise NotImplementedError

    def _deployment_path(self, deployment: str, tail: str = "") -> str:
        # An empty name (or one with a '/') would name another route, or none:
        # the server would answer a redirect or NOT_FOUND instead of the rule.
        if not isinstance(deployment, str) or not re.fullmatch(VERSION_NAME_PATTERN, deployment):
            raise InvalidArgumentError(
                f"deployment name {deployment!r} is not valid: use 1-255 letters, digits, '_', "
                "'.', '-', starting with a letter or digit"
            )
        return ns_path(self.namespace, f"/deployments/{quote(deployment, safe='')}{tail}")

    async def describe_task_queue(self, task_queue: str) -> dict[str, Any]:
        """The workers that polled ``task_queue`` in the last 5 minutes (versioned
        or not: identity, ``kind`` workflow or activity, first and last poll
        time, ``live``, the version it polls as) and its ``backlog`` per kind
        (``count``, ``oldest_age_s``), as the namespace's active region sees
        them, like Temporal's ``describe_task_queue``."""
        if not isinstance(task_queue, str) or not task_queue.strip():
            raise InvalidArgumentError(f"task queue {task_queue!r} is empty: name a task queue")
        path = f"/task-queues/{quote(task_queue, safe='')}"
        return await self.call("GET", ns_path(self.namespace, path))  # type: ignore[no-any-return]

    async def list_deployments(self) -> list[dict[str, Any]]:
        """Each deployment of the namespace: current, ramping, revision."""
        res = await self.call("GET", ns_path(self.namespace, "/deployments"))
        return list(res["deployments"])

    async def describe_deployment(self, deployment: str) -> dict[str, Any]:
        """Routing, and per version: status (current, ramping, draining, drained,
        inactive), task queues, pollers, open pinned runs, runs waiting for a poller."""
        return await self.call("GET", self._deployment_path(deployment))  # type: ignore[no-any-return]

    async def set_current_version(
        self,
        deployment: str,
        build_id: str | None,
        *,
        expect_revision: int | None = None,
        allow_no_pollers: bool = False,
    ) -> dict[str, Any]:
        """Send the deployment's new work to ``build_id`` (None: unversioned workers).

        Raises ``RevisionMismatchError`` if the deployment is no longer at
        ``expect_revision``, ``NoPollersError`` if no worker of the build polls
        (unless ``allow_no_pollers``). A build already current changes
        nothing (``changed`` false, the revision kept), so a retry is safe.
        """
        return await self._set(
            deployment, "/current", build_id, None, expect_revision, allow_no_pollers
        )

    async def set_ramping_version(
        self,
        deployment: str,
        build_id: str | None,
        percent: float,
        *,
        expect_revision: int | None = None,
        allow_no_pollers: bool = False,
    ) -> dict[str, Any]:
        """Send ``percent`` of the deployment's workflow ids to ``build_id``.

        At 0 percent the build stays the ramping version with no ids; ``build_id``
        None with 0 percent ends the ramp.

        Which ids is a stable hash of the id, the same in every region.
        """
        return await self._set(
            deployment, "/ramping", build_id, percent, expect_revision, allow_no_pollers
        )

    async def _set(
        self,
        deployment: str,
        tail: str,
        build_id: str | None,
        percent: float | None,
        expect_revision: int | None,
        allow_no_pollers: bool,
    ) -> dict[str, Any]:
        body = {
            "build_id": build_id,
            "percent": percent,
            "expect_revision": expect_revision,
            "allow_no_pollers": allow_no_pollers,
            "identity": self.identity,
        }
        return await self.call("POST", self._deployment_path(deployment, tail), body)  # type: ignore[no-any-return]
