"""Temporal's names for what a run already has: ``workflow.memo()``,
``workflow.memo_value()`` and ``@workflow.init``."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from worker._workflow_api import _runtime

__all__ = ["INIT_MARK", "init", "memo", "memo_value"]

F = TypeVar("F", bound=Callable[..., Any])

#: Set on an ``__init__`` that ``@workflow.init`` marked.
INIT_MARK = "__baton_workflow_init__"

_MISSING: Any = object()


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
