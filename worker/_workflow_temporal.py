"""Temporal's names for what a run already has: ``@workflow.init``, ``workflow.wait()`` and
``workflow.as_completed()``."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Iterator
from typing import Any, TypeVar

from worker.errors import NonDeterminismError

__all__ = [
    "INIT_MARK",
    "NondeterminismError",
    "as_completed",
    "init",
    "wait",
]

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")

#: Set on an ``__init__`` that ``@workflow.init`` marked.
INIT_MARK = "__baton_workflow_init__"

_MISSING: Any = object()

#: Temporal's spelling, as ``failure_exception_types=[workflow.NondeterminismError]`` names it.
NondeterminismError = NonDeterminismError


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
