"""Temporal's names for what a run already has: ``workflow.memo()``,
``workflow.memo_value()``, ``@workflow.init``, ``workflow.wait()`` and
``workflow.as_completed()``."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from typing import Any, TypeVar

from worker._workflow_api import _runtime
from worker.errors import NonDeterminismError

__all__ = [
    "INIT_MARK",
    "NondeterminismError",
    "as_completed",
    "init",
    "memo",
    "memo_value",
    "wait",
]

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")

#: Set on an ``__init__`` that ``@workflow.init`` marked.
INIT_MARK = "__baton_workflow_init__"

_MISSING: Any = object()

#: Temporal's spelling, as ``failure_exception_types=[workflow.NondeterminismError]`` names it.
NondeterminismError = NonDeterminismError


def memo() -> Mapping[str, Any]:
    """The run's memo as values, as Temporal's ``workflow.memo()`` (``info().memo``)."""
    return _runtime().info().memo


def memo_value(key: str, default: Any = _MISSING, *, type_hint: Any = None) -> Any:
    """One value of the run's memo, as Temporal's ``workflow.memo_value()``.

    Args:
        key: The memo key.
        default: What a memo without ``key`` gives; without it, ``KeyError``.
        type_hint: Decode the value as this type (a dataclass, a ``datetime``).
    """
    values = _runtime().info().memo
    if key not in values:
        if default is _MISSING:
            raise KeyError(f"the run's memo has no key {key!r}: pass a default")
        return default
    if type_hint is None:
        return values[key]
    converter = _runtime().payload_converter()
    return converter.from_payload(converter.to_payload(values[key]), type_hint)


def init(fn: F) -> F:
    """Mark a workflow's ``__init__`` to be given the run's input, as Temporal's
    ``@workflow.init``: it takes the arguments its run method takes, so the
    handlers a signal or update that came with the start runs find its state."""
    setattr(fn, INIT_MARK, True)
    return fn


async def wait(
    fs: Iterable[Awaitable[T]],
    *,
    timeout: float | None = None,
    return_when: str = asyncio.ALL_COMPLETED,
) -> tuple[list[asyncio.Future[T]], list[asyncio.Future[T]]]:
    """``asyncio.wait`` as Temporal's ``workflow.wait`` gives it: the done and
    pending futures as lists in the order given, where asyncio's sets iterate
    in an order a replay need not repeat. ``timeout`` is a durable timer."""
    futures = [asyncio.ensure_future(f) for f in fs]
    done, _ = await asyncio.wait(futures, timeout=timeout, return_when=return_when)
    return [f for f in futures if f in done], [f for f in futures if f not in done]


def as_completed(
    fs: Iterable[Awaitable[T]], *, timeout: float | None = None
) -> Iterator[Awaitable[T]]:
    """``asyncio.as_completed`` as Temporal's ``workflow.as_completed``: the
    awaitables become tasks in the order given (asyncio's makes them from a
    set, in an order a replay need not repeat), then come in completion order."""
    return asyncio.as_completed([asyncio.ensure_future(f) for f in fs], timeout=timeout)
