"""A call's arguments, given positionally or, as Temporal's SDK takes them, as ``args=``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from worker._start_options import checked_args
from worker.errors import ArgumentsGivenTwiceError


class _NoArg:
    """The default of ``arg=``: no single argument was given by that name."""

    def __repr__(self) -> str:
        return "NO_ARG"


#: ``arg=`` not given (None is an argument like any other).
NO_ARG: Any = _NoArg()


def call_args(
    positional: Sequence[Any], args: Sequence[Any] | None, what: str, arg: Any = NO_ARG
) -> Sequence[Any]:
    """The arguments of ``what``: ``args`` (a list or tuple) when given, else
    ``arg`` (Temporal's keyword for a single argument) when given, else the
    positional ones. Two of them at once is refused, as Temporal refuses an
    ``arg`` beside ``args`` (an empty ``args`` counts as not given, as there)."""
    if arg is not NO_ARG:
        if positional or (args is not None and checked_args(args, "args")):
            raise ArgumentsGivenTwiceError(
                f"{what} got arg= beside other arguments: pass the arguments one way, "
                "positionally, as arg=value (one) or as args=[...]",
                details={"argument": "arg"},
            )
        return [arg]
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
