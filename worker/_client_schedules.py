"""Schedules from the client: create one, and a handle to change, describe or delete it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from worker._client_visibility import _check_query, encode_search_attributes
from worker._definition import workflow_name
from worker._handle_control import given_or_new_id
from worker._http import API, ns_path
from worker._start_options import workflow_retry_policy
from worker.common import RetryPolicy
from worker.errors import InvalidArgumentError

if TYPE_CHECKING:
    from worker.client import Client


def _time(value: datetime | str) -> str:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise InvalidArgumentError(
                f"{value!r} has no UTC offset: give an aware datetime (tzinfo=UTC) "
                "or an RFC 3339 string"
            )
        return value.isoformat()
    return value


def _plain(value: Any) -> Any:
    """A definition with each ``timedelta`` as its seconds (a spec's ``every``,
    ``phase`` and ``jitter``, a policy's ``catchup_window``), as the wire takes
    durations, and each ``datetime`` as RFC 3339."""
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, datetime):
        return _time(value)
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


async def _definition_body(client: Any, schedule: Mapping[str, Any]) -> dict[str, Any]:
    """A definition as the wire takes it: :func:`_plain`, and the action's memo
    as payloads through ``client``'s converter. A definition read back by
    ``describe`` (whose memo it gives as values) is so sent as it was made:
    encrypted by an encrypting codec, never as plaintext; entries that are
    payloads already are kept."""
    body: dict[str, Any] = _plain(schedule)
    action = body.get("action")
    if isinstance(action, dict) and isinstance(action.get("memo"), Mapping):
        body["action"] = {**action, "memo": await client.encode_memo(action["memo"])}
    return body


class ScheduleHandle:
    """One schedule of the client's namespace.

    Each change carries a request id, drawn once per call unless given, so a
    call the transport retries (a reply lost, a server restarted) acts once.
    """

    def __init__(self, client: Client, schedule_id: str):
        self.client, self.id = client, schedule_id
        #: From :meth:`ScheduleMixin.create_schedule`: whether this call made the
        #: schedule (False: a retry with its request id found it made); else None.
        self.created: bool | None = None

    def _path(self, tail: str = "") -> str:
        # No schedule id holds a '/' (create refuses one): quoted or not, the
        # server reads it as a separator and answers "no such route".
        if not isinstance(self.id, str) or not self.id.strip() or "/" in self.id:
            raise InvalidArgumentError(
                f"schedule id {self.id!r} is not valid: a non-empty id with no '/' "
                "(list_schedules() gives the schedules)"
            )
        return ns_path(self.client.namespace, f"/schedules/{quote(self.id, safe='')}{tail}")

    async def describe(self) -> dict[str, Any]:
        """Definition, paused and note, the next 10 fire times, the last 10
        actions with their workflow ids and outcomes, running actions, counters."""
        d: dict[str, Any] = await self.client.call("GET", self._path())
        action = (d.get("schedule") or {}).get("action")
        if isinstance(action, dict) and action.get("memo"):
            # the memo as values (it is stored as payloads, maybe encrypted)
            action["memo"] = await self.client.decode_memo(action["memo"])
        return d

    async def update(
        self, schedule: Mapping[str, Any], *, create: bool = False, request_id: str | None = None
    ) -> dict[str, Any]:
        """Replace the definition (as :meth:`Client.schedule_definition` builds it);
        ``create`` makes it if it does not exist."""
        body = {
            "schedule": await _definition_body(self.client, schedule),
            "create": create,
            "request_id": given_or_new_id(request_id),
            "identity": self.client.identity,
        }
        res: dict[str, Any] = await self.client.call("PUT", self._path(), body)
        if create and request_id is None and res.get("created") is False and not res["updated"]:
            # only this call's own retry can find the id it drew: it created it
            res = {**res, "created": True}
        return res

    async def pause(self, note: str = "", *, request_id: str | None = None) -> dict[str, Any]:
        body = {
            "note": note,
            "request_id": given_or_new_id(request_id),
            "identity": self.client.identity,
        }
        return await self.client.call("POST", self._path("/pause"), body)  # type: ignore[no-any-return]

    async def unpause(
        self, note: str = "", *, catch_up: str | None = None, request_id: str | None = None
    ) -> dict[str, Any]:
        """Go on; ``catch_up`` (all, latest, none) acts on the fires the pause
        passed over this once; those not acted on (all of them without it) are
        counted as missed."""
        body = {
            "note": note,
            "catch_up": catch_up,
            "request_id": given_or_new_id(request_id),
            "identity": self.client.identity,
        }
        return await self.client.call("POST", self._path("/unpause"), body)  # type: ignore[no-any-return]

    async def trigger(
        self, *, overlap: str | None = None, request_id: str | None = None
    ) -> dict[str, Any]:
        """Act now (also while paused). The answer's ``workflow_id`` is the run
        the schedule starts for it a moment later (or when the overlap policy
        lets it; ``skip`` while an action runs starts none); a retry with the
        same ``request_id`` names the same run."""
        body = {
            "overlap": overlap,
            "request_id": given_or_new_id(request_id),
            "identity": self.client.identity,
        }
        return await self.client.call("POST", self._path("/trigger"), body)  # type: ignore[no-any-return]

    async def backfill(
        self,
        start: datetime | str,
        end: datetime | str,
        *,
        overlap: str = "buffer-all",
        request_id: str | None = None,
    ) -> dict[str, Any]:
        """Act on the spec's fires with start <= time <= end (default overlap
        buffer-all); the answer counts them (``fires``) and names the first
        100's runs (``workflow_ids``)."""
        body = {
            "start": _time(start),
            "end": _time(end),
            "overlap": overlap,
            "request_id": given_or_new_id(request_id),
            "identity": self.client.identity,
        }
        return await self.client.call("POST", self._path("/backfill"), body)  # type: ignore[no-any-return]

    async def delete(self, reason: str = "", *, request_id: str | None = None) -> dict[str, Any]:
        """End the schedule; actions it started keep running."""
        params = {"reason": reason, "request_id": given_or_new_id(request_id)}
        return await self.client.call("DELETE", self._path(), params=params)  # type: ignore[no-any-return]


class ScheduleList(list[dict[str, Any]]):
    """The schedules :meth:`ScheduleMixin.list_schedules` found: a list, and
    iterable with ``async for`` too, as Temporal's ``list_schedules`` is
    (``async for s in await client.list_schedules()``)."""

    def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        return self._each()

    async def _each(self) -> AsyncIterator[dict[str, Any]]:
        for item in self:
            yield item


class ScheduleMixin:
    """Schedule calls of :class:`worker.Client`."""

    namespace: str
    identity: str

    async def call(self, method: str, path: str, body: Any = None, **kw: Any) -> Any:
        raise NotImplementedError

    async def encode(self, values: Sequence[Any]) -> list[dict[str, Any]]:
        raise NotImplementedError

    async def encode_memo(self, memo: Mapping[str, Any] | None) -> dict[str, Any]:
        raise NotImplementedError

    async def schedule_definition(
        self,
        *,
        workflow: str | type | Callable[..., Any],
        task_queue: str,
        args: Sequence[Any] = (),
        cron: str | Sequence[str] | None = None,
        spec: Mapping[str, Any] | None = None,
        policy: Mapping[str, Any] | None = None,
        memo: Mapping[str, Any] | None = None,
        search_attributes: Mapping[str, Any] | None = None,
        versioning_behavior: str | None = None,
        run_timeout: timedelta | float | None = None,
        execution_timeout: timedelta | float | None = None,
        retry_policy: RetryPolicy | None = None,
    ) -> dict[str, Any]:
        """A schedule's definition: the workflow to start (its ``args`` and
        ``memo`` encoded by this client's data converter, so the server never
        sees them in plaintext with an encrypting codec), when (``cron`` strings and/or a
        ``spec``, see scheduler/definition.py) and the ``policy``. ``run_timeout``
        ``execution_timeout`` and ``retry_policy`` are each started workflow's,
        as at a start."""
        full_spec = dict(spec or {})
        if cron is not None:
            crons = [cron] if isinstance(cron, str) else list(cron)
            given = full_spec.get("cron", [])
            # one cron string in the spec is one entry, not a list of characters
            full_spec["cron"] = [*([given] if isinstance(given, str) else given), *crons]
        if isinstance(run_timeout, timedelta):
            run_timeout = run_timeout.total_seconds()
        if isinstance(execution_timeout, timedelta):
            execution_timeout = execution_timeout.total_seconds()
        built: dict[str, Any] = {
            "spec": _plain(full_spec),
            "action": {
                "workflow_type": workflow_name(workflow),
                "task_queue": task_queue,
                "input": await self.encode(args),
                # payloads, as a run's memo is (encrypted with an encrypting codec)
                "memo": await self.encode_memo(memo),
                "search_attributes": encode_search_attributes(search_attributes or {}),
                "versioning_behavior": versioning_behavior,
                "run_timeout_s": run_timeout,
            },
            "policy": _plain(policy or {}),
        }
        # (only when set: servers before them refuse the fields)
        if execution_timeout is not None:
            built["action"]["execution_timeout_s"] = execution_timeout
        if retry_policy is not None:
            built["action"]["retry_policy"] = workflow_retry_policy(retry_policy)
        return built

    async def create_schedule(
        self,
        schedule_id: str,
        schedule: Mapping[str, Any],
        *,
        paused: bool = False,
        note: str = "",
        search_attributes: Mapping[str, Any] | None = None,
        request_id: str | None = None,
    ) -> ScheduleHandle:
        """Create schedule ``schedule_id`` (``SCHEDULE_ALREADY_EXISTS`` if it runs)."""
        body = {
            "schedule_id": schedule_id,
            "schedule": await _definition_body(self, schedule),
            "paused": paused,
            "note": note,
            "search_attributes": encode_search_attributes(search_attributes or {}),
            "request_id": given_or_new_id(request_id),
            "identity": self.identity,
        }
        res = await self.call("POST", ns_path(self.namespace, "/schedules"), body)
        handle = self.get_schedule_handle(schedule_id)
        # An id this call drew can only have been found by its own retry
        # (its first answer lost): the schedule is this call's creation.
        handle.created = request_id is None or bool(res.get("created", True))
        return handle

    def get_schedule_handle(self, schedule_id: str) -> ScheduleHandle:
        return ScheduleHandle(self, schedule_id)  # type: ignore[arg-type]

    async def list_schedules(self, query: str = "") -> ScheduleList:
        """Open schedules of the namespace (all pages), narrowed by a list query."""
        _check_query(query)
        out = ScheduleList()
        token = None
        while True:
            params = {"query": query, "page_token": token}
            res = await self.call("GET", ns_path(self.namespace, "/schedules"), params=params)
            out += res["schedules"]
            token = res.get("next_page_token")
            if not token:
                return out

    async def server_time(self) -> dict[str, Any]:
        """The server's clock: ``now``, and whether it is a test clock."""
        return await self.call("GET", f"{API}/clock")  # type: ignore[no-any-return]

    async def advance_test_clock(self, by: timedelta | float) -> dict[str, Any]:
        """Move a test-clock server's time forward (``TEST_CLOCK_OFF`` otherwise)."""
        seconds = by.total_seconds() if isinstance(by, timedelta) else float(by)
        return await self.call("POST", f"{API}/clock/advance", {"seconds": seconds})  # type: ignore[no-any-return]
