"""A handle to a workflow: its result, its description and its history
(signals, queries, updates, cancel, terminate and reset come from its mixins)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from worker._describe import WorkflowExecutionDescription
from worker._failure import close_failure_to_exception
from worker._handle_control import RunControlMixin, refuse_blank
from worker._handle_messages import MessagesMixin
from worker._handle_reset import ResetMixin
from worker._http import wf_path
from worker._payloads import decode_wire
from worker._replayer import WorkflowHistory
from worker._start_options import wait_limit
from worker.errors import WorkflowContinuedAsNewError, WorkflowFailureError
from worker.wire import CLOSE_EVENTS

if TYPE_CHECKING:
    from worker.client import Client


class WorkflowHandle(MessagesMixin, RunControlMixin, ResetMixin):
    """A workflow id (and optionally a run) to act on."""

    def __init__(
        self,
        client: Client,
        workflow_id: str,
        run_id: str | None,
        *,
        first_run_id: str | None = None,
        pinned: bool = False,
    ):
        self.client = client
        self.id = workflow_id
        self.run_id = run_id
        self.first_run_id = first_run_id
        self._pinned = pinned and run_id is not None
        #: What :meth:`result` decodes to without a ``type_hint``: the run
        #: method's return annotation when the handle came from a start by class.
        self.result_type: Any = None
        #: The run whose close :meth:`result` last answered with (the end of a
        #: continue-as-new chain), None before: what a caller names it by.
        self.result_run_id: str | None = None

    @property
    def first_execution_run_id(self) -> str | None:
        """Temporal's name for :attr:`first_run_id`: the run the start began."""
        return self.first_run_id

    @property
    def target_run_id(self) -> str | None:
        """The run signals, queries, updates, cancels and terminates go to: the one
        :meth:`Client.get_workflow_handle` was given (a run that closed then
        refuses them with ``WORKFLOW_NOT_RUNNING``), else None, the workflow's
        current run (so a handle from a start follows continue-as-new)."""
        return self.run_id if self._pinned else None

    def _path(self, suffix: str = "") -> str:
        return wf_path(self.client.namespace, self.id, suffix)

    async def result(
        self,
        *,
        follow_runs: bool = True,
        timeout: timedelta | float | None = None,
        type_hint: Any = None,
    ) -> Any:
        """The workflow's result, following continue-as-new, resets and
        retries to the last run (``follow_runs=False``, as in Temporal: the
        outcome of the handle's run itself).

        ``timeout`` (None: no limit; 0: ask once) bounds the whole wait.

        Raises:
            WorkflowFailureError: The run closed without a result; ``__cause__``
                is the failure.
            TimeoutError: ``timeout`` passed first.
            UnavailableError: No server answered within ``timeout`` (or ``retry_for_s``).
            InvalidArgumentError: ``timeout`` is negative or not finite.
        """
        deadline = None if timeout is None else time.monotonic() + wait_limit(timeout)
        while True:
            # ``timeout`` bounds the retries of an unreachable server too
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            res = await self.client.call(
                "GET",
                self._path("/result"),
                params={
                    "run_id": self.run_id,
                    "wait_s": 60.0 if left is None else min(60, left),
                    # (left out by default, as servers before it know none)
                    "follow": None if follow_runs else "false",
                },
                retry_for_s=None if left is None else min(left, self.client.transport.retry_for_s),
            )
            if res["closed"]:
                break
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"workflow {self.id!r} still running after {timeout}")
        self.result_run_id = res.get("run_id")
        return await self._outcome(res, type_hint)

    async def _outcome(self, res: dict[str, Any], type_hint: Any) -> Any:
        """The result of a closed run's outcome (``GET .../result``), or its error."""
        if res["status"] == "completed":
            return await self.client.decode_one(res["result"], type_hint or self.result_type)
        if res["status"] == "continued_as_new":
            # only with follow_runs=False: else the chain is followed
            raise WorkflowContinuedAsNewError(
                f"workflow {self.id!r} run {res['run_id']} continued as new",
                new_execution_run_id=res.get("continued_to_run_id"),
            )
        failure = await self.client.decode_failure(res.get("failure"))
        err = WorkflowFailureError(
            f"workflow {self.id!r} run {res['run_id']} {res['status']}"
            + (f": {failure.message}" if failure else ""),
            status=res["status"],
            failure=failure,
        )
        if failure is not None:
            err.__cause__ = close_failure_to_exception(
                res["status"], failure, self.client.data_converter.payload_converter
            )
        raise err

    async def describe(self) -> WorkflowExecutionDescription:
        """The run's row as the server describes it, its memo decoded: the run
        the handle was given, else the workflow's current run (so a handle
        from a start describes the run a continue-as-new or reset gave).

        With a codec, the run's failure, its workflow task's last failure and
        its pending activities (failures, heartbeat details) read as a worker
        with the same keys reads them; what the keys cannot open stays
        encoded (``Encoded failure``), as the CLI shows it.

        A dict (``d["execution"]["status"]``) that also reads as Temporal's
        ``WorkflowExecutionDescription`` (``d.status``, ``d.run_id``, ...)."""
        res: dict[str, Any] = await self.client.call(
            "GET", self._path(), params={"run_id": self.target_run_id}
        )
        execution = res.get("execution") or {}
        if execution.get("memo"):
            execution["memo"] = await self.client.decode_memo(execution["memo"])
        kinds = ("failure", "pending_workflow_task", "pending_activities")
        told = {k: res[k] for k in kinds if k in res}
        res.update(await decode_wire(told, self.client.data_converter, keep_unreadable=True))
        return WorkflowExecutionDescription(res)

    async def history(
        self, *, run_id: str | None = None, page_size: int | None = None
    ) -> list[dict[str, Any]]:
        """Every event of a run (the handle's run, or the current one), read in
        pages of ``page_size`` events (the server's largest when None).

        Raises:
            InvalidArgumentError: ``run_id`` is blank (an unset variable): read
                as "not given", it would give another run's events.
        """
        refuse_blank(run_id, "run_id", "out to read the handle's run", "run id")
        return (await self._run_history(run_id, page_size))[1]

    async def fetch_history(self, *, run_id: str | None = None) -> WorkflowHistory:
        """The run's history (as :meth:`history` reads it) with its ids, for
        :class:`worker.Replayer` (Temporal's ``fetch_history``).

        Raises:
            InvalidArgumentError: ``run_id`` is blank.
        """
        refuse_blank(run_id, "run_id", "out to read the handle's run", "run id")
        shown, events = await self._run_history(run_id, None)
        return WorkflowHistory(self.id, shown, events, self.client.namespace)

    async def fetch_history_events(
        self,
        *,
        page_size: int | None = None,
        wait_new_event: bool = False,
        run_id: str | None = None,
    ) -> AsyncIterator[dict[str, Any]]:
        """The run's events one by one as :meth:`history` reads them, for
        ``async for`` (Temporal's ``fetch_history_events``), read in pages of
        ``page_size``. ``wait_new_event``: go on with the events written after,
        waiting for each, until the run's closing event.

        Raises:
            InvalidArgumentError: ``run_id`` is blank.
        """
        refuse_blank(run_id, "run_id", "out to read the handle's run", "run id")
        nxt, run_id = 1, run_id if run_id is not None else self.run_id
        while True:
            params: dict[str, Any] = {
                "run_id": run_id,
                "from_event_id": nxt,
                "page_size": page_size,
            }
            if wait_new_event:
                params["wait_s"] = 60.0  # answered at the next event (or empty)
            res = await self.client.call("GET", self._path("/history"), params=params)
            run_id = res["run_id"]  # (later pages read the first page's run)
            for event in res["events"]:
                yield event
                nxt = int(event["event_id"]) + 1
                if event["event_type"] in CLOSE_EVENTS:
                    return
            if not wait_new_event and nxt >= int(res["next_event_id"]):
                return

    async def _run_history(
        self, run_id: str | None, page_size: int | None
    ) -> tuple[str, list[dict[str, Any]]]:
        events: list[dict[str, Any]] = []
        nxt, run_id = 1, run_id if run_id is not None else self.run_id
        while True:
            params = {"run_id": run_id, "from_event_id": nxt, "page_size": page_size}
            res = await self.client.call("GET", self._path("/history"), params=params)
            # later pages read the first page's run, even if the workflow
            # continues as new between them
            run_id = res["run_id"]
            events.extend(res["events"])
            if not res["events"] or events[-1]["event_id"] >= res["next_event_id"] - 1:
                return str(run_id), events
            nxt = events[-1]["event_id"] + 1
