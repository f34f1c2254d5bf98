"""What a client reads back as a type it names: a workflow's result, a query's
or an update's answer. A value that is plainly not of that type (a dict asked
for as an ``int``) raises :class:`~worker.errors.PayloadTypeError` rather than
come back as something else for the caller to trip over later."""

from __future__ import annotations

import types
import typing
from typing import Any

from worker.converter import _AS_DICT, _AS_LIST, _AS_SET, DataConverter, _mismatch
from worker.errors import PayloadTypeError
from worker.wire import Payload


async def decode_as(converter: DataConverter, payload: Payload, type_hint: Any) -> Any:
    """``payload`` decoded as ``type_hint`` (None: as JSON decoded it)."""
    try:
        value = (await converter.decode([payload], [type_hint]))[0]
    except (TypeError, ValueError) as exc:  # pydantic's ValidationError is a ValueError
        if type_hint is None:
            raise
        raise PayloadTypeError(
            f"the value cannot be read as {_name(type_hint)}: {exc}; decode it as the type "
            "it was sent as (type_hint=...), or with no type_hint"
        ) from exc
    problem = _kind_mismatch(value, type_hint, "the value")
    if problem is not None:
        raise PayloadTypeError(
            f"{problem}; decode it as the type it was sent as (type_hint=...), or with no type_hint"
        )
    return value


def _kind_mismatch(value: Any, hint: Any, where: str) -> str | None:
    """Why ``value`` (decoded by ``hint``) is not of ``hint``'s kind, or None.

    Scalars are checked at any depth (as a handler's inputs are); the value
    itself must be an instance of a class hint, or of a generic's container.
    Hints that name no class to check (``Any``, type variables, unions of
    several kinds, ``Literal``, ``TypedDict``) pass.
    """
    if value is None or hint is None or hint is typing.Any:
        return None
    problem = _mismatch(value, hint, where)
    if problem is not None:
        return problem
    origin = typing.get_origin(hint)
    if origin is typing.Union or origin is types.UnionType:
        kinds = [a for a in typing.get_args(hint) if a is not type(None)]
        return _kind_mismatch(value, kinds[0], where) if len(kinds) == 1 else None
    expected: Any = None
    if isinstance(hint, type):
        expected = hint
    elif origin in _AS_LIST:
        expected = list
    elif origin in _AS_SET:
        expected = (set, frozenset)
    elif origin in _AS_DICT:
        expected = dict
    elif origin is tuple:
        expected = tuple
    if expected is None or expected is type(None):
        return None
    if expected is float and isinstance(value, int):
        return None  # JSON writes 2.0 as 2
    try:
        fits = isinstance(value, expected)
    except TypeError:  # a hint isinstance cannot check (a TypedDict, a Protocol)
        return None
    if fits:
        return None
    return f"{where} is {type(value).__name__} {value!r:.60}, not {_name(hint)}"


def _name(hint: Any) -> str:
    return hint.__name__ if isinstance(hint, type) else str(hint)
