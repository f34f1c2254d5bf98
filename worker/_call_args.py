"""A call's arguments, given positionally or, as Temporal's SDK takes them, as ``args=``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from worker._start_options import checked_args
from worker.errors import ArgumentsGivenTwiceError


def call_args(positional: Sequence[Any], args: Sequence[Any] | None, what: str) -> Sequence[Any]:
    """The arguments of ``what``: ``args`` (a list or tuple) when given, else the
    positional ones. Both at once is refused, as Temporal refuses an ``arg``
    beside ``args`` (an empty ``args`` counts as not given, as there)."""
    if args is None:
        return positional
    given = checked_args(args, "args")
    if positional and given:
        raise ArgumentsGivenTwiceError(
            f"{what} got {len(positional)} positional argument(s) and args={given!r}: "
            "pass the arguments one way, positionally or as args=[...]",
            details={"argument": "args"},
        )
    return given or positional
