"""Operator controls of a workflow handle: cancel, terminate, pause, activities,
versioning overrides."""

from __future__ import annotations

import uuid
from typing import Any

from worker._http import ns_path
from worker.errors import InvalidArgumentError


def new_request_id() -> str:
    # Drawn once per call, before the transport's retry loop: a retried POST
    # resends the same body, so the server can tell a retry from a new request.
    return str(uuid.uuid4())


def given_or_new_id(value: str | None, argument: str = "request_id") -> str:
    """``value``, or a fresh id when None. A blank one is refused before anything
    is sent: taken for "not given" (as ``or`` would), a retry under a fresh id
    would act again, the idempotency the caller asked for silently lost."""
    if value is None:
        return new_request_id()
    refuse_blank(value, argument, "out to have a fresh one drawn")
    return value


def refuse_blank(value: str | None, argument: str, left_out: str, what: str = "id") -> None:
    """Raise InvalidArgumentError for a blank ``value`` (an unset variable), which
    read as "not given" would act on something the caller did not name;
    ``left_out`` says what leaving ``argument`` out does instead."""
    if value is not None and not value.strip():
        raise InvalidArgumentError(
            f"{argument}={value!r} is blank: pass a non-empty {what}, or leave {argument} "
            + left_out,
            details={"argument": argument},
        )


_new_request_id = new_request_id


class RunControlMixin:
    """Cancel, terminate, pause, unpause, activity control and versioning overrides of
    :class:`worker.client.WorkflowHandle`."""

    client: Any
    id: str
    first_run_id: str | None

    @property
    def target_run_id(self) -> str | None:
        raise NotImplementedError

    def _path(self, suffix: str = "") -> str:
        raise NotImplementedError

    async def cancel(self, reason: str = "", *, request_id: str | None = None) -> str:
        """Ask the workflow to cancel; one ``request_id`` (drawn if None) is applied once.
        Returns the id of the run asked (a retry: the run the first request asked)."""
        res = await self._control("/cancel", reason, request_id, **self._chain())
        return str(res["run_id"])

    async def terminate(self, reason: str = "", *, request_id: str | None = None) -> str:
        """End the run at once; one ``request_id`` (drawn if None) is applied once.
        Returns the id of the run ended (a retry: the run the first request ended)."""
        res = await self._control("/terminate", reason, request_id, **self._chain())
        return str(res["run_id"])

    def _chain(self) -> dict[str, Any]:
        """Which run a cancel or terminate acts on: the handle's run, or the
        current run of the chain the handle's start began, as Temporal's
        ``first_execution_run_id`` says (a run of another execution of the id,
        started since, refuses with ``WorkflowNotFoundError``)."""
        run_id = self.target_run_id
        if run_id is None and self.first_run_id is not None:
            return {"run_id": None, "first_run_id": self.first_run_id}
        return {"run_id": run_id}

    async def pause(self, reason: str = "", *, request_id: str | None = None) -> dict[str, Any]:
        """Pause the workflow's current run: nothing more is dispatched to it (signals,
        timers and results of running attempts are recorded and wait) until
        :meth:`unpause`. One ``request_id`` acts once, also across continue-as-new.
        A handle given a run id pauses that run (a closed one refuses)."""
        return await self._control("/pause", reason, request_id, run_id=self.target_run_id)

    async def unpause(
        self,
        reason: str = "",
        *,
        to_current: bool = False,
        build_id: str | None = None,
        request_id: str | None = None,
    ) -> dict[str, Any]:
        """Let the paused run go on; what waited is dispatched in order.

        ``to_current`` (or ``build_id``) pins it to its deployment's current
        build (or that one) in the same step: deploy the fix, then unpause onto it.
        """
        return await self._control(
            "/unpause",
            reason,
            request_id,
            run_id=self.target_run_id,
            to_current=to_current,
            build_id=build_id,
        )

    async def pause_activity(
        self, activity_id: str, reason: str = "", *, request_id: str | None = None
    ) -> dict[str, Any]:
        """Pause one activity: no new attempt starts (a running one learns it from
        its next heartbeat, ``activity.info().paused``) until it is unpaused."""
        return await self._activity("pause", activity_id, reason, request_id)

    async def unpause_activity(
        self, activity_id: str, reason: str = "", *, request_id: str | None = None
    ) -> dict[str, Any]:
        return await self._activity("unpause", activity_id, reason, request_id)

    async def reset_activity(
        self,
        activity_id: str,
        reason: str = "",
        *,
        keep_paused: bool = False,
        reset_heartbeat_details: bool = False,
        request_id: str | None = None,
    ) -> dict[str, Any]:
        """Start the activity again from attempt 1 (after the running attempt, if
        any), keeping its heartbeat details unless told not to, and unpause it
        unless ``keep_paused``."""
        return await self._activity(
            "reset",
            activity_id,
            reason,
            request_id,
            keep_paused=keep_paused,
            reset_heartbeat_details=reset_heartbeat_details,
        )

    async def _activity(
        self, action: str, activity_id: str, reason: str, request_id: str | None, **extra: Any
    ) -> dict[str, Any]:
        body = {
            "workflow_id": self.id,
            "activity_id": activity_id,
            "run_id": self.target_run_id,
            "reason": reason,
            "request_id": given_or_new_id(request_id),
            "identity": self.client.identity,
            **extra,
        }
        path = ns_path(self.client.namespace, f"/activities/{action}")
        return await self.client.call("POST", path, body)  # type: ignore[no-any-return]

    async def _control(
        self, route: str, reason: str, request_id: str | None, **extra: Any
    ) -> dict[str, Any]:
        """POST an operator's request about the run to ``route`` (its request id drawn if None)."""
        body = {
            "reason": reason,
            "request_id": given_or_new_id(request_id),
            "identity": self.client.identity,
            **extra,
        }
        return await self.client.call("POST", self._path(route), body)  # type: ignore[no-any-return]

    async def update_versioning(
        self,
        override: str | None,
        *,
        version: str | None = None,
        reason: str = "",
        request_id: str | None = None,
    ) -> dict[str, Any]:
        """Override how the workflow's current run (or the handle's run) is routed
        (recorded in its history).

        ``override``: ``"pinned"`` (to ``version``, ``"deployment:build"``, until
        changed), ``"one-time"`` (only its next workflow task runs on
        ``version``), ``"auto-upgrade"``, or None to clear the override.
        """
        body: dict[str, Any] = {
            "override": None,
            "reason": reason,
            "request_id": given_or_new_id(request_id),
            "identity": self.client.identity,
            # a handle given a run id acts on that run (a closed one refuses)
            "run_id": self.target_run_id,
        }
        if override is None:
            if version is not None:
                # a version with no override would be dropped, and the override cleared
                raise InvalidArgumentError(
                    f"override None clears the run's override and takes no version (got "
                    f"{version!r}): pass override='pinned' or 'one-time' with it"
                )
        else:
            deployment, build_id = None, None
            if version is not None:
                deployment, sep, build_id = version.partition(":")
                if not sep:
                    raise InvalidArgumentError(
                        f"version {version!r} is not DEPLOYMENT:BUILD_ID (e.g. 'payments:41')"
                    )
            body["override"] = {"kind": override, "deployment": deployment, "build_id": build_id}
        return await self.client.call("POST", self._path("/versioning"), body)  # type: ignore[no-any-return]
