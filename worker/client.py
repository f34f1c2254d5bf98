"""The client: start workflows and talk to them.

```python
client = await Client.connect("http://127.0.0.1:7233", namespace="default")
handle = await client.start_workflow(Pipeline, 3, id="order-42", task_queue="orders")
print(await handle.result())
```
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from typing import Any

from worker._call_args import NO_ARG, call_args
from worker._client_async_activity import AsyncActivityMixin
from worker._client_namespaces import NamespaceMixin
from worker._client_schedules import ScheduleMixin
from worker._client_versioning import VersioningMixin
from worker._client_visibility import (
    VisibilityMixin,
    encode_search_attributes,
)
from worker._definition import (
    SIGNAL,
    handler_name,
    result_type_of,
    workflow_name,
)
from worker._failure import (
    ENCODED_FAILURE_MESSAGE,
    failure_to_exception,
)
from worker._handle import WorkflowHandle
from worker._handle_control import (
    given_or_new_id,
    new_request_id,
    refuse_blank,
)
from worker._http import CONNECT_RETRY_S, Transport, ns_path
from worker._payloads import decode_wire, is_payload
from worker._result_types import decode_as
from worker._start_options import (
    checked_args,
    checked_behavior,
    checked_cron,
    checked_mapping,
    conflict_policy,
    option_seconds,
    reuse_policy,
    start_input,
    workflow_retry_policy,
)
from worker.common import RetryPolicy
from worker.converter import DataConverter, located
from worker.errors import (
    BatonError,
    InvalidArgumentError,
    QueryFailedError,
    UpdateFailedError,
    UpdateRejectedError,
)
from worker.wire import Failure, Payload, WorkflowIdConflictPolicy, WorkflowIdReusePolicy


def default_identity() -> str:
    return f"{os.getpid()}@{socket.gethostname()}"


_new_request_id = new_request_id
#: How long :meth:`Client.execute_workflow`'s start waits for the outcome
#: (then it waits as :meth:`WorkflowHandle.result` does).
EXECUTE_WAIT_S = 60.0


class Client(NamespaceMixin, VisibilityMixin, VersioningMixin, ScheduleMixin, AsyncActivityMixin):
    """Talks to a Baton deployment (every region's endpoint, so it follows failovers)."""

    def __init__(
        self, transport: Transport, *, namespace: str, data_converter: DataConverter, identity: str
    ):
        self.transport = transport
        self.namespace = namespace
        self.data_converter = data_converter
        self.identity = identity

    @classmethod
    async def connect(
        cls,
        endpoints: str | Sequence[str],
        *,
        namespace: str = "default",
        data_converter: DataConverter | None = None,
        identity: str | None = None,
        retry_for_s: float = 60.0,
        request_timeout_s: float = 150.0,
        follow_failover: bool = True,
        lazy: bool = False,
    ) -> Client:
        """A client for ``endpoints`` (one URL or every region's URLs).

        Connecting asks the endpoints' ``/healthz`` and returns once one
        answers, for up to ``retry_for_s`` or 15 s, whichever is shorter (a
        server's restart); if none does it raises ``UnavailableError`` naming
        each endpoint and why, where a wrong URL or a server that is down
        would otherwise surface only at the first call, after its retries.
        ``lazy=True`` skips the check (a worker started before its server).

        A namespace that moved to another region answers ``NAMESPACE_NOT_ACTIVE``
        with that region's URL, and the client follows it there. With
        ``follow_failover=False`` it raises the error instead: a worker that
        must serve one region only (as each server's own system worker does)
        never takes another region's tasks.

        ``retry_for_s`` bounds how long a call retries a server that cannot be
        reached or a namespace that is moving; ``request_timeout_s`` how long
        a server may take to answer one request beyond the wait the request
        asks of it (a result's ``wait_s``, an update's ``timeout``), so a
        server that accepts connections and never answers fails the call
        with ``UnavailableError`` after that long.
        """
        eps = [endpoints] if isinstance(endpoints, str) else list(endpoints)
        transport = Transport(
            eps,
            retry_for_s=retry_for_s,
            request_timeout_s=request_timeout_s,
            follow_failover=follow_failover,
        )
        if not lazy:
            try:
                await transport.probe(min(transport.retry_for_s, CONNECT_RETRY_S))
            except BaseException:
                await transport.close()
                raise
        return cls(
            transport,
            namespace=namespace,
            data_converter=data_converter or DataConverter(),
            identity=identity or default_identity(),
        )

    async def close(self) -> None:
        await self.transport.close()

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ------------------------------------------------------------------ payloads

    async def encode(self, values: Sequence[Any]) -> list[dict[str, Any]]:
        try:
            return [p.model_dump() for p in await self.data_converter.encode(values)]
        except InvalidArgumentError as exc:
            labelled = [(f"argument {i}", v) for i, v in enumerate(values, 1)]
            raise located(exc, self.data_converter.payload_converter, labelled) from exc

    async def encode_memo(self, memo: Mapping[str, Any] | None) -> dict[str, Any]:
        """A memo's values as payloads, through the data converter and its codec
        (an encrypting codec encrypts them, as it does arguments). An entry that
        is a payload already (a memo as a client without the key read it back)
        is kept as it is, as :meth:`decode_memo` reads it."""
        if not (memo := checked_mapping(memo, "memo")):
            return {}
        keys = [k for k in memo if not is_payload(memo[k])]
        try:
            payloads = await self.data_converter.encode([memo[k] for k in keys])
        except InvalidArgumentError as exc:
            labelled = [(f"memo[{k!r}]", memo[k]) for k in keys]
            raise located(exc, self.data_converter.payload_converter, labelled) from exc
        encoded = dict(zip(keys, [p.model_dump() for p in payloads], strict=True))
        return {k: encoded.get(k, memo[k]) for k in memo}

    async def decode_memo(self, memo: Mapping[str, Any] | None) -> dict[str, Any]:
        """A memo as values. An entry that is not a payload (a memo written as
        plain JSON by a client of an earlier release) is kept as it is, and so
        is one this client cannot decode (no key for it)."""
        out = dict(memo or {})
        for key, value in out.items():
            if is_payload(value):
                with contextlib.suppress(BatonError, ValueError):
                    out[key] = await self.decode_one(value)
        return out

    async def decode_one(self, payload: dict[str, Any] | None, type_hint: Any = None) -> Any:
        if payload is None:
            return None
        # a value plainly not of the type asked for raises PayloadTypeError
        return await decode_as(self.data_converter, Payload.model_validate(payload), type_hint)

    async def decode_failure(self, raw: dict[str, Any] | None) -> Failure | None:
        """A wire failure as received, with its payloads and text decoded."""
        if not raw:
            return None
        holder = await decode_wire({"failure": raw}, self.data_converter)
        return Failure.model_validate(holder["failure"])

    async def call(self, method: str, path: str, body: Any = None, **kw: Any) -> Any:
        try:
            return await self.transport.call(method, path, body, **kw)
        except (QueryFailedError, UpdateRejectedError, UpdateFailedError) as err:
            await self._decode_error_failure(err)
            raise

    async def _decode_error_failure(self, err: BatonError) -> None:
        # The server words these errors from the failure's message, which is
        # "Encoded failure" when a codec hid it: put the real text back.
        failure = await self.decode_failure(err.details.get("failure"))
        if failure is None:
            return
        err.details["failure"] = failure.model_dump()
        head, sep, tail = err.message.rpartition(ENCODED_FAILURE_MESSAGE)
        if sep and not tail:
            err.message = head + failure.message
            err.args = (err.message,)
        err.__cause__ = failure_to_exception(failure, self.data_converter.payload_converter)

    # ------------------------------------------------------------------ workflows

    async def start_workflow(
        self,
        workflow: str | type | Callable[..., Any],
        *positional: Any,
        arg: Any = NO_ARG,
        args: Sequence[Any] | None = None,
        id: str,
        task_queue: str,
        request_id: str | None = None,
        id_reuse_policy: WorkflowIdReusePolicy = WorkflowIdReusePolicy.ALLOW_DUPLICATE,
        id_conflict_policy: WorkflowIdConflictPolicy = WorkflowIdConflictPolicy.FAIL,
        task_timeout: timedelta | float = 10.0,
        run_timeout: timedelta | float | None = None,
        execution_timeout: timedelta | float | None = None,
        retry_policy: RetryPolicy | None = None,
        cron_schedule: str = "",
        start_delay: timedelta | float | None = None,
        memo: dict[str, Any] | None = None,
        search_attributes: Mapping[str, Any] | None = None,
        versioning_behavior: str | None = None,
        start_signal: str | Callable[..., Any] | None = None,
        start_signal_args: Sequence[Any] = (),
        result_type: Any = None,
    ) -> WorkflowHandle:
        """Start a workflow; a retried call with the same ``request_id`` never starts twice.

        ``workflow`` is its ``@workflow.defn`` class, its run method or its type
        name; its arguments go positionally or, as in Temporal, as ``args=[...]``
        (not both: :class:`~worker.errors.ArgumentsGivenTwiceError`).

        ``id_conflict_policy`` says what to do beside a running run of ``id``:
        ``FAIL`` (``WorkflowAlreadyStartedError``), ``USE_EXISTING`` (a handle
        to that run) or ``TERMINATE_EXISTING`` (end it, start anew), as in Temporal.

        ``search_attributes`` are custom attributes registered in the namespace
        (datetimes are sent as RFC 3339 in UTC). ``versioning_behavior``
        (``"pinned"`` or ``"auto-upgrade"``) overrides the workflow type's.

        As in Temporal, ``start_signal`` (with ``start_signal_args``) makes it a
        signal-with-start (:meth:`signal_with_start_workflow`), and
        ``result_type`` is what :meth:`WorkflowHandle.result` decodes to.

        ``execution_timeout`` bounds the whole chain from this start, as in
        Temporal: continue-as-new, retries and resets keep its deadline, and
        the run open then times out (a ``TimeoutError_`` cause whose
        ``timeout_type`` is ``"execution"``, where ``run_timeout``'s is ``"run"``).
        ``retry_policy`` retries the workflow when a run fails or reaches its
        run timeout, as Temporal's does (:meth:`WorkflowHandle.result` follows
        the retries; ``workflow.info().attempt`` counts them).
        ``cron_schedule`` (a cron string, ``@hourly`` or ``@every 10m``) makes
        it Temporal's cron workflow: the first run's code starts at the
        schedule's next time, and each run that completes, fails or times out
        hands on to a new run at the next time after it, with the same input
        (``workflow.get_last_completion_result()`` and
        ``workflow.get_last_failure()`` read what the last runs ended with),
        until a cancel, terminate or the execution timeout ends the chain.
        ``start_delay`` holds the run's first workflow task back that long, as
        Temporal's does (not with ``cron_schedule``).
        """
        handle, _ = await self._start(
            workflow,
            call_args(positional, args, "start_workflow", arg),
            id=id,
            task_queue=task_queue,
            request_id=request_id,
            id_reuse_policy=id_reuse_policy,
            id_conflict_policy=id_conflict_policy,
            task_timeout=task_timeout,
            run_timeout=run_timeout,
            execution_timeout=execution_timeout,
            retry_policy=retry_policy,
            cron_schedule=cron_schedule,
            start_delay=start_delay,
            memo=memo,
            search_attributes=search_attributes,
            versioning_behavior=versioning_behavior,
            start_signal=start_signal,
            start_signal_args=start_signal_args,
            result_type=result_type,
        )
        return handle

    async def _start(
        self,
        workflow: str | type | Callable[..., Any],
        args: Sequence[Any],
        *,
        id: str,
        task_queue: str,
        request_id: str | None = None,
        id_reuse_policy: WorkflowIdReusePolicy = WorkflowIdReusePolicy.ALLOW_DUPLICATE,
        id_conflict_policy: WorkflowIdConflictPolicy = WorkflowIdConflictPolicy.FAIL,
        task_timeout: timedelta | float = 10.0,
        run_timeout: timedelta | float | None = None,
        execution_timeout: timedelta | float | None = None,
        retry_policy: RetryPolicy | None = None,
        cron_schedule: str = "",
        start_delay: timedelta | float | None = None,
        memo: dict[str, Any] | None = None,
        search_attributes: Mapping[str, Any] | None = None,
        versioning_behavior: str | None = None,
        wait_result_s: float | None = None,
        route: str = "/workflows",
        extra: Mapping[str, Any] | None = None,
        start_signal: str | Callable[..., Any] | None = None,
        start_signal_args: Sequence[Any] = (),
        result_type: Any = None,
    ) -> tuple[WorkflowHandle, dict[str, Any]]:
        """A start (or, with ``route`` and ``extra`` or Temporal's ``start_signal``,
        a signal-with-start) and its answer."""
        if start_signal is not None:
            # a signal-with-start signals a running run: USE_EXISTING in all but name
            if conflict_policy(id_conflict_policy) == WorkflowIdConflictPolicy.TERMINATE_EXISTING:
                raise InvalidArgumentError(
                    "id_conflict_policy TERMINATE_EXISTING cannot go with start_signal: a "
                    "signal-with-start signals the running run; terminate it first"
                )
            id_conflict_policy = WorkflowIdConflictPolicy.FAIL
            wait_result_s = None  # (refused there: execute_workflow waits as result() does)
            route = "/signal-with-start"
            extra = {
                "signal_name": handler_name(start_signal, SIGNAL),
                "signal_input": await self.encode(
                    checked_args(start_signal_args, "start_signal_args")
                ),
            }
        elif len(checked_args(start_signal_args, "start_signal_args")):
            raise InvalidArgumentError(
                "start_signal_args were given without start_signal: name the signal to send"
            )
        body = {
            "workflow_id": id,
            "workflow_type": workflow_name(workflow),
            "task_queue": task_queue,
            "input": await self.encode(start_input(workflow, args, self.data_converter)),
            "request_id": given_or_new_id(request_id),
            "id_reuse_policy": reuse_policy(id_reuse_policy),
            "task_timeout_s": option_seconds(task_timeout, "task_timeout"),
            "run_timeout_s": option_seconds(run_timeout, "run_timeout"),
            "memo": await self.encode_memo(memo),
            "identity": self.identity,
            "search_attributes": encode_search_attributes(search_attributes or {}),
            "versioning_behavior": checked_behavior(versioning_behavior),
        }
        # (each left out unset, as servers before them know none)
        if execution_timeout is not None:
            body["execution_timeout_s"] = option_seconds(execution_timeout, "execution_timeout")
        if retry_policy is not None:
            body["retry_policy"] = workflow_retry_policy(retry_policy)
        if cron := checked_cron(cron_schedule):
            body["cron_schedule"] = cron
        if start_delay is not None:
            body["start_delay_s"] = option_seconds(start_delay, "start_delay")
        if wait_result_s is not None:
            body["wait_result_s"] = wait_result_s
        if (conflict := conflict_policy(id_conflict_policy)) != WorkflowIdConflictPolicy.FAIL:
            body["id_conflict_policy"] = conflict  # (left out, as servers before it know none)
        body.update(extra or {})
        res = await self.call("POST", ns_path(self.namespace, route), body)
        handle = WorkflowHandle(self, id, res["run_id"], first_run_id=res["run_id"])
        handle.result_type = result_type or result_type_of(workflow)
        return handle, res

    async def execute_workflow(
        self,
        workflow: str | type | Callable[..., Any],
        *positional: Any,
        arg: Any = NO_ARG,
        args: Sequence[Any] | None = None,
        id: str,
        task_queue: str,
        **kw: Any,
    ) -> Any:
        """Start a workflow and return its result (:meth:`start_workflow`'s options).

        One call when the run ends within a minute: the start waits for its
        outcome (a server of an earlier release answers without it, and the
        result is then waited for as :meth:`WorkflowHandle.result` does).
        """
        handle, res = await self._start(
            workflow,
            call_args(positional, args, "execute_workflow", arg),
            id=id,
            task_queue=task_queue,
            wait_result_s=EXECUTE_WAIT_S,
            **kw,
        )
        outcome = res.get("result")
        if isinstance(outcome, dict) and outcome.get("closed"):
            return await handle._outcome(outcome, None)
        return await handle.result()

    async def signal_with_start_workflow(
        self,
        workflow: str | type | Callable[..., Any],
        *positional: Any,
        arg: Any = NO_ARG,
        args: Sequence[Any] | None = None,
        id: str,
        task_queue: str,
        signal: str | Callable[..., Any],
        signal_args: Sequence[Any] = (),
        request_id: str | None = None,
        id_reuse_policy: WorkflowIdReusePolicy = WorkflowIdReusePolicy.ALLOW_DUPLICATE,
        task_timeout: timedelta | float = 10.0,
        run_timeout: timedelta | float | None = None,
        execution_timeout: timedelta | float | None = None,
        retry_policy: RetryPolicy | None = None,
        cron_schedule: str = "",
        start_delay: timedelta | float | None = None,
        memo: dict[str, Any] | None = None,
        search_attributes: Mapping[str, Any] | None = None,
        versioning_behavior: str | None = None,
    ) -> WorkflowHandle:
        """Signal the workflow's running run, or start one (with
        :meth:`start_workflow`'s options, which apply only then) and signal it,
        in one step."""
        handle, _ = await self._start(
            workflow,
            call_args(positional, args, "signal_with_start_workflow", arg),
            id=id,
            task_queue=task_queue,
            request_id=request_id,
            id_reuse_policy=id_reuse_policy,
            task_timeout=task_timeout,
            run_timeout=run_timeout,
            execution_timeout=execution_timeout,
            retry_policy=retry_policy,
            cron_schedule=cron_schedule,
            start_delay=start_delay,
            memo=memo,
            search_attributes=search_attributes,
            versioning_behavior=versioning_behavior,
            route="/signal-with-start",
            extra={
                "signal_name": handler_name(signal, SIGNAL),
                "signal_input": await self.encode(checked_args(signal_args, "signal_args")),
            },
        )
        return handle

    def get_workflow_handle(self, workflow_id: str, *, run_id: str | None = None) -> WorkflowHandle:
        """A handle to ``workflow_id``; with ``run_id``, every call acts on that run.

        Raises:
            InvalidArgumentError: ``run_id`` is blank (an unset variable): pinned,
                every call would send it and be refused as no UUID.
        """
        refuse_blank(run_id, "run_id", "out to act on the current run", "run id")
        return WorkflowHandle(self, workflow_id, run_id, first_run_id=run_id, pinned=True)

    def get_workflow_handle_for(
        self, workflow: type | Callable[..., Any], workflow_id: str, *, run_id: str | None = None
    ) -> WorkflowHandle:
        """:meth:`get_workflow_handle` whose :meth:`~WorkflowHandle.result` decodes
        to the run method's return annotation, as Temporal's of that name."""
        handle = self.get_workflow_handle(workflow_id, run_id=run_id)
        handle.result_type = result_type_of(workflow)
        return handle


__all__ = ["Client", "WorkflowHandle", "default_identity"]
