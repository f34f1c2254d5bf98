"""Replaying a run's recorded history against workflow code, without a server.

The check a developer runs before deploying a change to a workflow (as
Temporal's ``temporalio.worker.Replayer``): does today's code, given what a
run recorded, issue the commands that run recorded? The history comes from
:meth:`worker.WorkflowHandle.fetch_history` or from the JSON of ``baton
workflow history -o json``. The replay is the worker's own
(:class:`worker._workflow_instance.WorkflowInstance`, on the calling thread),
so what passes here replays on a worker and what fails here would fail its
workflow tasks there.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

from worker._definition import WorkflowDefinition, by_name, exception_types
from worker._history import events_from_wire
from worker._payloads import decode_events
from worker._workflow_instance import WorkflowInstance, WorkflowTaskError
from worker.converter import DataConverter
from worker.errors import InvalidArgumentError, NonDeterminismError

__all__ = ["Replayer", "WorkflowHistory", "WorkflowReplayResult", "WorkflowReplayResults"]


@dataclasses.dataclass(frozen=True)
class WorkflowHistory:
    """One run's history as the server gives it.

    Attributes:
        workflow_id: The run's workflow id (``workflow.info().workflow_id``).
        run_id: The run's id: ``workflow.random()`` and ``workflow.uuid4()``
            draw from it, so a replay needs the run's own.
        events: The run's events in wire form (``event_id``, ``event_type``,
            ``event_time``, ``version``, ``attributes``), from event 1.
        namespace: The run's namespace (``workflow.info().namespace``).
    """

    workflow_id: str
    run_id: str
    events: Sequence[Mapping[str, Any]]
    namespace: str = "default"

    def to_json(self) -> str:
        """The history as the JSON :meth:`from_json` reads (and ``baton workflow
        history -o json`` prints), to keep it beside the tests that replay it."""
        return json.dumps(
            {"workflow_id": self.workflow_id, "run_id": self.run_id, "events": list(self.events)}
        )

    @staticmethod
    def from_json(
        workflow_id: str | None,
        history: str | bytes | Mapping[str, Any] | Sequence[Mapping[str, Any]],
        *,
        run_id: str | None = None,
        namespace: str = "default",
    ) -> WorkflowHistory:
        """A history read from the JSON ``baton workflow history -o json``
        prints (``{"workflow_id", "run_id", "events"}``), as text or parsed,
        or from its events alone.

        ``workflow_id`` and ``run_id`` given here win over the document's; a
        document without a run id gives the run's own, as its events say it
        (a reset run's copied first event names the run reset: its last
        reset's event names the run).

        Raises:
            InvalidArgumentError: Not such a document, or no run id in it nor given.
        """
        doc: Any = history
        if isinstance(history, str | bytes):
            try:
                doc = json.loads(history)
            except ValueError as exc:
                raise InvalidArgumentError(f"the history is not JSON: {exc}") from None
        if isinstance(doc, list):
            doc = {"events": doc}  # the events alone
        if not isinstance(doc, Mapping) or not isinstance(doc.get("events"), list):
            raise InvalidArgumentError(
                "a history is an object with an 'events' list, as `baton workflow history "
                "ID -o json` prints it"
            )
        events = list(doc["events"])
        wid = workflow_id or doc.get("workflow_id")
        rid = run_id or doc.get("run_id") or _own_run_id(events)
        if not wid or not rid:
            missing = "workflow_id" if not wid else "run_id"
            raise InvalidArgumentError(
                f"the history names no {missing}: pass {missing}= (workflow.info() reads it)"
            )
        return WorkflowHistory(str(wid), str(rid), events, namespace)


def _own_run_id(events: Sequence[Any]) -> str | None:
    """The id of the run whose history ``events`` are, from the events alone:
    the run a reset made (the last, if a reset run was reset again), else the
    run that wrote the started event (a start, a continue-as-new or a retry).
    (``workflow.random()`` draws from the events' own seeds either way.)"""
    for event in reversed(events):
        if not isinstance(event, Mapping):
            continue
        attrs = event.get("attributes") or {}
        if (
            event.get("event_type") == "WorkflowTaskFailed"
            and attrs.get("cause") == "ResetWorkflow"
            and attrs.get("new_run_id")
        ):
            return str(attrs["new_run_id"])
    first = events[0] if events and isinstance(events[0], Mapping) else {}
    started = (first.get("attributes") or {}).get("original_run_id")
    return None if started is None else str(started)


@dataclasses.dataclass(frozen=True)
class WorkflowReplayResult:
    """The outcome of one replay.

    Attributes:
        history: The history replayed.
        replay_failure: Why the code does not replay it (a
            :class:`~worker.errors.NonDeterminismError` naming the first
            command that differs, or the exception the code raised), or None.
    """

    history: WorkflowHistory
    replay_failure: Exception | None


@dataclasses.dataclass(frozen=True)
class WorkflowReplayResults:
    """The outcomes of several replays, in the order given."""

    replay_results: list[WorkflowReplayResult]

    @property
    def replay_failures(self) -> dict[str, Exception]:
        """Each failed replay's failure by run id."""
        return {
            r.history.run_id: r.replay_failure
            for r in self.replay_results
            if r.replay_failure is not None
        }


class Replayer:
    """Replays recorded histories against workflow code, as a worker would.

    Example::

        history = await client.get_workflow_handle("order-o-1").fetch_history()
        await Replayer(workflows=[Order]).replay_workflow(history)  # raises on a mismatch
    """

    def __init__(
        self,
        *,
        workflows: Sequence[type],
        data_converter: DataConverter | None = None,
        workflow_failure_exception_types: Sequence[type[BaseException]] = (),
        namespace: str | None = None,
        debug_mode: bool = False,
    ) -> None:
        """Args:
        workflows: The ``@workflow.defn`` classes, as given to a worker.
        data_converter: The worker's converter (with its codec, for an
            encrypted history).
        workflow_failure_exception_types: As the worker's.
        namespace: What ``workflow.info().namespace`` reads, in place of
            each history's.
        debug_mode: Taken for Temporal's signature: a replay always runs on
            the calling thread, without a deadlock timeout, so a debugger
            steps through it.

        Raises:
            ValueError: No workflows, or two of one name.
            TypeError: A class is not a workflow.
        """
        if not workflows:
            raise ValueError("a Replayer needs the workflow classes to replay (workflows=[...])")
        defs = by_name(map(WorkflowDefinition.from_class, workflows), "workflow")
        if extra := exception_types(
            workflow_failure_exception_types, "workflow_failure_exception_types"
        ):
            defs = by_name(
                (
                    dataclasses.replace(
                        d, failure_exception_types=(*d.failure_exception_types, *extra)
                    )
                    for d in defs.all()
                ),
                "workflow",
            )
        self._workflows = defs
        self._converter = data_converter or DataConverter()
        self._namespace = namespace
        del debug_mode

    async def replay_workflow(
        self,
        history: WorkflowHistory | Mapping[str, Any] | str,
        *,
        raise_on_replay_failure: bool = True,
    ) -> WorkflowReplayResult:
        """Replay one run's history.

        Args:
            history: A :class:`WorkflowHistory`, or the JSON ``baton workflow
                history -o json`` prints (text or parsed).
            raise_on_replay_failure: Raise the failure rather than return it.

        Raises:
            NonDeterminismError: The code issues other commands than the run
                recorded; the message names the first that differs.
            InvalidArgumentError: Not a history, or one of a workflow type not given.
            Exception: What the code raised replaying a task that had completed
                (a bug in the change).
        """
        if not isinstance(history, WorkflowHistory):
            history = WorkflowHistory.from_json(None, history)
        failure = await self._replay(history)
        if failure is not None and raise_on_replay_failure:
            raise failure
        return WorkflowReplayResult(history, failure)

    async def replay_workflows(
        self,
        histories: Sequence[WorkflowHistory | Mapping[str, Any] | str],
        *,
        raise_on_replay_failure: bool = True,
    ) -> WorkflowReplayResults:
        """Replay several histories; the first failure raises unless told not to."""
        results = [
            await self.replay_workflow(h, raise_on_replay_failure=raise_on_replay_failure)
            for h in histories
        ]
        return WorkflowReplayResults(results)

    async def _replay(self, history: WorkflowHistory) -> Exception | None:
        # decoding works in place: the caller's history stays as it was
        wire = copy.deepcopy([dict(e) for e in history.events])
        if not wire or wire[0].get("event_type") != "WorkflowExecutionStarted":
            raise InvalidArgumentError(
                f"the history of {history.workflow_id!r} does not begin with "
                "WorkflowExecutionStarted: give the run's whole history, from event 1"
            )
        wtype = str((wire[0].get("attributes") or {}).get("workflow_type"))
        defn = self._workflows.get(wtype)
        if defn is None:
            raise InvalidArgumentError(
                f"the history is of workflow type {wtype!r}, which this Replayer was not given "
                f"(it has: {', '.join(sorted(self._workflows))})"
            )
        await decode_events(wire, self._converter)
        events = events_from_wire(wire)
        inst = WorkflowInstance(
            definition=defn,
            namespace=self._namespace or history.namespace,
            workflow_id=history.workflow_id,
            run_id=history.run_id,
            converter=self._converter.payload_converter,
        )
        inst.deadlock_timeout_s = math.inf  # on the caller's thread, as a debugger runs it
        try:
            inst.activate(events, run_final=False)
            inst.end_replay()
        except NonDeterminismError as exc:
            return NonDeterminismError(
                f"workflow {history.workflow_id!r} (run {history.run_id}) does not replay: {exc}"
            )
        except WorkflowTaskError as exc:
            # the code's own exception, as a worker would report it
            cause = exc.__cause__
            return cause if isinstance(cause, Exception) else exc
        finally:
            inst.dispose()
        return None
