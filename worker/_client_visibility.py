"""List, count and bulk operations of the client, and the runs they report."""

from __future__ import annotations

import math
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from worker._describe import WorkflowExecutionStatus
from worker._handle_control import given_or_new_id
from worker._http import ns_path
from worker._start_options import checked_mapping
from worker.errors import InvalidArgumentError, InvalidQueryError
from worker.wire import MAX_QUERY_CHARS
from worker.wire.requests import JOB_ID_PATTERN


@dataclass(frozen=True)
class WorkflowExecution:
    """A workflow run as ``describe`` and ``list`` report it."""

    namespace: str
    workflow_id: str
    run_id: str
    workflow_type: str
    task_queue: str
    status: WorkflowExecutionStatus
    paused: bool
    start_time: str
    close_time: str | None
    history_length: int
    search_attributes: dict[str, Any]
    raw: dict[str, Any]

    @classmethod
    def from_wire(cls, d: dict[str, Any]) -> WorkflowExecution:
        return cls(
            namespace=d["namespace"],
            workflow_id=d["workflow_id"],
            run_id=d["run_id"],
            workflow_type=d["workflow_type"],
            task_queue=d["task_queue"],
            status=WorkflowExecutionStatus(d["status"]),
            paused=d.get("paused", False),
            start_time=d["start_time"],
            close_time=d.get("close_time"),
            history_length=d["history_length"],
            search_attributes=dict(d.get("search_attributes") or {}),
            raw=d,
        )

    @property
    def id(self) -> str:
        """The workflow id (as Temporal's SDK names it)."""
        return self.workflow_id


@dataclass(frozen=True)
class WorkflowCountGroup:
    """One value of the group-by attribute and how many runs have it."""

    value: Any
    count: int

    @property
    def group_values(self) -> list[Any]:
        return [self.value]

    def __getitem__(self, key: str) -> Any:
        return {"value": self.value, "count": self.count}[key]


class WorkflowCount(int):
    """What ``count_workflows`` answers: the number itself, with ``.count`` and ``.groups``.

    It is an ``int`` (``n == 3``, ``n + 1``), and reads as a mapping too
    (``n["count"]``, ``n["groups"]``).
    """

    groups: list[WorkflowCountGroup]

    def __new__(cls, count: int, groups: list[WorkflowCountGroup] | None = None) -> WorkflowCount:
        obj = super().__new__(cls, count)
        obj.groups = list(groups or [])
        return obj

    @property
    def count(self) -> int:
        return int(self)

    def __getitem__(self, key: str) -> Any:
        if key == "count":
            return int(self)
        if key == "groups":
            return [{"value": g.value, "count": g.count} for g in self.groups]
        raise KeyError(key)


class WorkflowExecutionAsyncIterator:
    """The runs ``list_workflows`` reads, a page at a time (Temporal's
    ``WorkflowExecutionAsyncIterator``): ``async for`` goes through every page;
    ``fetch_next_page()`` reads one, into ``current_page``, and
    ``next_page_token`` is the token of the page after it (None after the last).
    """

    def __init__(
        self,
        fetch: Callable[[str | None, int | None], Awaitable[dict[str, Any]]],
        limit: int | None,
        next_page_token: str | None,
    ) -> None:
        self._fetch = fetch
        self._limit = limit
        self._yielded = 0
        self.current_page: list[WorkflowExecution] | None = None
        self.current_page_index = 0
        self.next_page_token = next_page_token

    def __aiter__(self) -> WorkflowExecutionAsyncIterator:
        return self

    async def fetch_next_page(self, *, page_size: int | None = None) -> None:
        """Read the page ``next_page_token`` names (the first when None) into
        ``current_page``; ``page_size`` overrides the call's for this page."""
        res = await self._fetch(self.next_page_token, page_size)
        self.current_page = [WorkflowExecution.from_wire(e) for e in res["executions"]]
        self.current_page_index = 0
        self.next_page_token = res.get("next_page_token") or None

    async def __anext__(self) -> WorkflowExecution:
        if self._limit is not None and self._limit < 0:
            raise InvalidArgumentError(
                f"limit must be 0 or more (None for every run), not {self._limit}"
            )
        if self._limit is not None and self._yielded >= self._limit:
            raise StopAsyncIteration
        while self.current_page is None or self.current_page_index >= len(self.current_page):
            if self.current_page is not None and not self.next_page_token:
                raise StopAsyncIteration
            await self.fetch_next_page()
        run = self.current_page[self.current_page_index]
        self.current_page_index += 1
        self._yielded += 1
        return run


def encode_search_attributes(attributes: Mapping[str, Any]) -> dict[str, Any]:
    """Search attribute values as the server takes them (datetimes as RFC 3339 UTC)."""
    out: dict[str, Any] = {}
    for name, value in checked_mapping(attributes, "search_attributes").items():
        if isinstance(value, datetime):
            if value.tzinfo is None:
                # a server in another zone would read it otherwise than meant
                raise InvalidArgumentError(
                    f"search attribute {name!r}: the datetime {value} has no timezone; "
                    "give it one (tzinfo=datetime.UTC)"
                )
            value = value.astimezone(UTC).isoformat().replace("+00:00", "Z")
        elif isinstance(value, float) and not math.isfinite(value):
            # not "send it as a string", as the body's own check says: a
            # number attribute takes numbers, and no Double can hold this one
            raise InvalidArgumentError(
                f"search attribute {name!r}: {value!r} is not a finite number; "
                "a Double or Int search attribute takes a finite number"
            )
        elif isinstance(value, tuple | set | frozenset):
            value = sorted(value) if isinstance(value, set | frozenset) else list(value)
        out[name] = value
    return out


class VisibilityMixin:
    """Client calls over many runs: list, count, search attributes, batch jobs."""

    namespace: str

    async def call(self, method: str, path: str, body: Any = None, **kw: Any) -> Any:
        raise NotImplementedError

    def list_workflows(
        self,
        query: str = "",
        *,
        page_size: int = 100,
        limit: int | None = None,
        status: str | None = None,
        workflow_type: str | None = None,
        task_queue: str | None = None,
        started_after: datetime | None = None,
        started_before: datetime | None = None,
        workflow_id_prefix: str | None = None,
        include_system: bool = False,
        next_page_token: str | bytes | None = None,
    ) -> WorkflowExecutionAsyncIterator:
        """Runs matching ``query`` (Temporal's list-filter syntax), page by page.

        The fixed filters (status, workflow_type, ...) are shorthand for the
        same query and cannot be combined with one. Pages follow stable
        tokens: a run that starts or closes meanwhile shifts no page.
        ``limit`` stops after that many runs (0: none, None: every one).
        ``include_system`` lists Baton's own workflows (batch jobs, schedules)
        too. As Temporal's iterator, the one returned reads a page at a time
        (``fetch_next_page()``, ``current_page``) and gives the token of the
        page after it (``next_page_token``), which a later call passes as
        ``next_page_token`` to go on from there.
        """
        _check_query(query)
        params = {
            "query": query or None,
            "status": status,
            "workflow_type": workflow_type,
            "task_queue": task_queue,
            "started_after": started_after.isoformat() if started_after else None,
            "started_before": started_before.isoformat() if started_before else None,
            "workflow_id_prefix": workflow_id_prefix,
            "page_size": page_size,
            "include_system": "true" if include_system else None,
        }

        async def fetch(token: str | None, size: int | None) -> dict[str, Any]:
            page = {**params, "page_token": token}
            if size is not None:
                page["page_size"] = size
            res: dict[str, Any] = await self.call(
                "GET", ns_path(self.namespace, "/workflows"), params=page
            )
            return res

        if isinstance(next_page_token, bytes):
            next_page_token = next_page_token.decode("ascii", "replace")
        return WorkflowExecutionAsyncIterator(fetch, limit, next_page_token or None)

    async def count_workflows(
        self, query: str = "", *, group_by: str | None = None, include_system: bool = False
    ) -> WorkflowCount:
        """How many runs match ``query``; with ``group_by``, per value of that
        attribute. ``include_system`` counts Baton's own workflows too."""
        _check_query(query)
        res: dict[str, Any] = await self.call(
            "GET",
            ns_path(self.namespace, "/workflow-count"),
            params={
                "query": query,
                "group_by": group_by,
                "include_system": "true" if include_system else None,
            },
        )
        return WorkflowCount(
            int(res["count"]),
            [WorkflowCountGroup(g["value"], int(g["count"])) for g in res["groups"]],
        )

    def _namespace_or_own(self, namespace: str | None) -> str:
        """``namespace``, or the client's when it is left out (None): a blank one
        is refused as the name it is, not taken for the client's."""
        return self.namespace if namespace is None else namespace

    async def add_search_attribute(
        self, name: str, type: str, *, namespace: str | None = None
    ) -> dict[str, Any]:
        """Register a custom search attribute (Keyword, Text, Int, Double, Bool,
        Datetime or KeywordList) in the namespace (the client's by default)."""
        res: dict[str, Any] = await self.call(
            "POST",
            ns_path(self._namespace_or_own(namespace), "/search-attributes"),
            {"name": name, "type": type},
        )
        return res

    async def remove_search_attribute(
        self, name: str, *, namespace: str | None = None
    ) -> dict[str, Any]:
        res: dict[str, Any] = await self.call(
            "DELETE",
            ns_path(
                self._namespace_or_own(namespace), f"/search-attributes/{quote(name, safe='')}"
            ),
        )
        return res

    async def list_search_attributes(self, *, namespace: str | None = None) -> list[dict[str, Any]]:
        res = await self.call(
            "GET", ns_path(self._namespace_or_own(namespace), "/search-attributes")
        )
        return list(res["attributes"])

    async def start_batch(
        self,
        query: str,
        operation: str,
        *,
        reason: str,
        params: Mapping[str, Any] | None = None,
        rps: float = 50.0,
        job_id: str | None = None,
        request_id: str | None = None,
    ) -> dict[str, Any]:
        """Start a durable batch job applying ``operation`` to every run ``query`` matches.

        ``operation`` is terminate, cancel, signal (params: signal_name and
        input, a list of encoded payloads) or reset (params: to, reapply). The
        job walks the runs at most ``rps`` operations a second, survives server
        restarts and failovers, and applies each operation once per run. A
        retried call with the same ``job_id`` or ``request_id`` starts no
        second job (without either a request id is drawn, so the transport's
        own retries of this call are safe).
        """
        if (
            isinstance(rps, bool)
            or not isinstance(rps, int | float)
            or not math.isfinite(rps)
            or not 0.01 <= rps <= 10_000
        ):
            # NaN passes every range check, and JSON cannot carry it
            raise InvalidArgumentError(
                f"rps must be a number of operations a second from 0.01 to 10000, not {rps!r}"
            )
        res: dict[str, Any] = await self.call(
            "POST",
            ns_path(self.namespace, "/batches"),
            {
                "query": query,
                "operation": {"kind": operation, "params": dict(params or {})},
                "rps": rps,
                "reason": reason,
                "job_id": job_id,
                # a job id makes a retry the same job already; without one
                # the server derives the job's id from this
                "request_id": None
                if request_id is None and job_id
                else given_or_new_id(request_id),
            },
        )
        if request_id is None and job_id is None and res.get("started") is False:
            # the job's id came from the request id this call drew: only its
            # own retry (its first answer lost) can find that job
            res = {**res, "started": True}
        return res

    def _batch_path(self, job_id: str, tail: str = "") -> str:
        # The rule a start applies: an id with a '/' or '?' (or dots alone)
        # would name another route, and the server would answer "no such route".
        if (
            not isinstance(job_id, str)
            or not re.fullmatch(JOB_ID_PATTERN, job_id)
            or not job_id.strip(".")
        ):
            raise InvalidArgumentError(
                f"{job_id!r} is not a batch job id: an id has 1 to 64 letters, digits, '.', "
                "'_' and '-', not dots alone (list_batches() gives the jobs)"
            )
        return ns_path(self.namespace, f"/batches/{quote(job_id, safe='')}{tail}")

    async def describe_batch(self, job_id: str) -> dict[str, Any]:
        """State, counts (done, skipped, failed) and kept failures of a batch job."""
        res: dict[str, Any] = await self.call("GET", self._batch_path(job_id))
        return res

    async def list_batches(self) -> list[dict[str, Any]]:
        """Every batch job of the namespace, newest first (all pages of the list)."""
        jobs: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            res = await self.call(
                "GET",
                ns_path(self.namespace, "/batches"),
                params={"page_size": 1000, "page_token": token},
            )
            jobs += res["jobs"]
            token = res.get("next_page_token")
            if not token:
                return jobs

    async def stop_batch(self, job_id: str, reason: str = "") -> dict[str, Any]:
        """Ask a batch job to stop after the page it is on."""
        res: dict[str, Any] = await self.call(
            "POST", self._batch_path(job_id, "/stop"), {"reason": reason}
        )
        return res


__all__ = [
    "VisibilityMixin",
    "WorkflowCount",
    "WorkflowCountGroup",
    "WorkflowExecution",
    "encode_search_attributes",
]


def _check_query(query: str) -> None:
    """Refuse a query longer than the server parses, as the server words it: sent
    in the URL, a long one would be refused before the server read it, untyped."""
    if isinstance(query, str) and len(query) > MAX_QUERY_CHARS:
        raise InvalidQueryError(
            f"query is {len(query)} characters; the limit is {MAX_QUERY_CHARS}",
            details={"position": MAX_QUERY_CHARS, "token": ""},
        )
