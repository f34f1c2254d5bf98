"""Workflow code's run-time handlers and memo reads (re-exported by :mod:`worker.workflow`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from worker._definition import QUERY, SIGNAL, UPDATE
from worker._payloads import is_payload
from worker._workflow_api import _Runtime, _runtime
from worker.wire import Payload

#: ``memo_value``'s default when none is given: a missing key raises.
_NO_DEFAULT: Any = object()


def memo_payload_value(runtime: _Runtime, key: str, default: Any, type_hint: Any) -> Any:
    """``key`` of the run's memo decoded as ``type_hint``, or ``default``."""
    payload = runtime.memo_payloads().get(key)
    if payload is None:
        if default is _NO_DEFAULT:
            raise KeyError(f"the memo has no key {key!r}")
        return default
    if not is_payload(payload):
        return payload  # plain JSON, written by a client of an earlier release
    return runtime.payload_converter().from_payload(Payload.model_validate(payload), type_hint)


def set_signal_handler(name: str, handler: Callable[..., Any] | None) -> None:
    """Set (or with None, remove) the handler of signal ``name`` at run time.

    Signals of that name buffered so far are delivered to it, in order.
    """
    _runtime().set_signal_handler(name, handler)


def set_query_handler(name: str, handler: Callable[..., Any] | None) -> None:
    """Set (or with None, remove) the handler of query ``name`` at run time."""
    _runtime().set_query_handler(name, handler)


def set_update_handler(
    name: str,
    handler: Callable[..., Any] | None,
    *,
    validator: Callable[..., Any] | None = None,
) -> None:
    """Set (or with None, remove) the handler of update ``name`` at run time,
    with an optional validator called with the same arguments (as Temporal's).

    It takes the updates that arrive from then on, over a ``@workflow.update``
    method of the name; one that arrived before it was set was rejected as
    unknown. Set it the same way on every replay, as any workflow code.
    """
    _runtime().set_update_handler(name, handler, validator)


def set_dynamic_signal_handler(handler: Callable[..., Any] | None) -> None:
    """Set (or with None, remove) the handler of every signal no handler of
    its name takes, called with ``(name, args: Sequence[RawValue])``, as
    Temporal's. The signals buffered so far go to it, in the order they came."""
    _runtime().set_signal_handler(None, handler)


def set_dynamic_query_handler(handler: Callable[..., Any] | None) -> None:
    """Set (or with None, remove) the handler of every query no handler of its
    name takes, called with ``(name, args: Sequence[RawValue])``."""
    _runtime().set_query_handler(None, handler)


def set_dynamic_update_handler(
    handler: Callable[..., Any] | None, *, validator: Callable[..., Any] | None = None
) -> None:
    """Set (or with None, remove) the handler of every update no handler of
    its name takes, called (as its validator) with ``(name, args: Sequence[RawValue])``."""
    _runtime().set_update_handler(None, handler, validator)


def get_signal_handler(name: str) -> Callable[..., Any] | None:
    """The handler of signal ``name`` (not the dynamic one), or None."""
    return _runtime().get_handler(SIGNAL, name)


def get_query_handler(name: str) -> Callable[..., Any] | None:
    """The handler of query ``name`` (not the dynamic one), or None."""
    return _runtime().get_handler(QUERY, name)


def get_update_handler(name: str) -> Callable[..., Any] | None:
    """The handler of update ``name`` (not the dynamic one), or None."""
    return _runtime().get_handler(UPDATE, name)


def get_dynamic_signal_handler() -> Callable[..., Any] | None:
    """The dynamic signal handler, or None."""
    return _runtime().get_handler(SIGNAL, None)


def get_dynamic_query_handler() -> Callable[..., Any] | None:
    """The dynamic query handler, or None."""
    return _runtime().get_handler(QUERY, None)


def get_dynamic_update_handler() -> Callable[..., Any] | None:
    """The dynamic update handler, or None."""
    return _runtime().get_handler(UPDATE, None)
