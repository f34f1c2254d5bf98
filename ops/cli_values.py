"""Value types and option callbacks every ``baton`` command module shares:
durations, timestamps, enum choices, JSON arguments, run ids.

Re-exported by :mod:`ops.cli_base`.
"""

from __future__ import annotations

import enum
import json
import math
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

import annotated_types
import click
from pydantic import BaseModel

from scheduler.spec import SpecError, parse_duration

E = TypeVar("E", bound=enum.Enum)


class CliInputError(Exception):
    """A command-line value is not usable (bad JSON input, options that
    conflict): a usage error found before anything is sent, so the command
    exits 2 as click's own are, with this code naming the kind of problem."""

    code = "INVALID_ARGUMENT"

    #: A usage error's exit status, as click gives one.
    exit_code = 2


class FiniteRange(click.FloatRange):
    """A FloatRange that refuses NaN, which compares false with every bound and
    so passes any range."""

    #: What the refusal says the value is not a finite one of.
    what = "number"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, str):
            try:
                float(value)
            except ValueError:
                # click's own words read "'abc' is not a valid seconds"
                self.fail(f"{value!r} is not a {self.what}.", param, ctx)
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite {self.what}.", param, ctx)
        return number


class Seconds(FiniteRange):
    """A length of time: a finite number of seconds above zero (and at most
    ``max``), or a span as Temporal's CLI and the schedule options take it
    (``1h30m``, ``15m``, ``90s``, ``2d``)."""

    name = "seconds"
    what = "number of seconds or a span like 1h30m, 15m or 90s"

    def __init__(self, max: float | None = None) -> None:
        super().__init__(min=0, min_open=True, max=max)

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, str):
            try:
                float(value)
            except ValueError:
                try:
                    value = parse_duration(value).total_seconds()
                except SpecError:
                    self.fail(f"{value!r} is not a {self.what}.", param, ctx)
        return super().convert(value, param, ctx)


class Timestamp(click.ParamType[datetime, Any]):
    """An ISO 8601 time (``2026-01-01T00:00:00Z``; UTC when it has no offset) as
    an aware datetime. Anything else (``yesterday``, ``""``) is a usage error
    naming the option, as a bad number of seconds is."""

    name = "time"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, datetime):
            return value
        try:
            ts = datetime.fromisoformat(str(value).strip())
        except ValueError:
            self.fail(
                f"{value!r} is not an ISO 8601 time: give one like 2026-01-01T00:00:00Z "
                "(UTC if it has no offset)",
                param,
                ctx,
            )
        # A time without an offset is taken as UTC, the server's clock.
        return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


def wire_max(model: type[BaseModel], field: str) -> float:
    """The most a wire request's numeric ``field`` takes (its ``le`` bound), so
    an option refuses what the server would, naming the option."""
    info = model.model_fields[field]
    bound: Any = next(m.le for m in info.metadata if isinstance(m, annotated_types.Le))
    return float(bound)


def spelled(value: enum.Enum) -> str:
    """An enum's value as the CLI writes it: ``reject-duplicate``, ``timed-out``."""
    return str(value.value).replace("_", "-")


def enum_choice(cls: type[E], what: str, *extra: str) -> dict[str, Any]:
    """The ``metavar`` and ``callback`` of an option whose value is one of
    ``cls``'s: written with hyphens or underscores, in any case
    (``reject-duplicate``, ``reject_duplicate``, ``RejectDuplicate``); a value
    that is none of them is a usage error naming them all, and the ``extra``
    values the option's own callback takes before this one."""

    def key(text: str) -> str:
        return text.strip().lower().replace("-", "").replace("_", "")

    def convert(_ctx: click.Context, param: click.Parameter, value: str | None) -> E | None:
        if value is None:
            return None
        for member in cls:
            if key(str(member.value)) == key(value):
                return member
        choices = ", ".join([*(spelled(m) for m in cls), *extra])
        raise click.BadParameter(f"{value!r} is not {what}: use one of {choices}.", param=param)

    metavar = "[" + "|".join([*(spelled(m) for m in cls), *extra]) + "]"
    return {"metavar": metavar, "callback": convert}


def not_empty(_ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """An id option given as "" (an unset shell variable) is refused: taken as
    not given, it would act on another run or under a fresh id a retry cannot
    find."""
    if value is not None and not value.strip():
        raise click.BadParameter(
            f"{value!r} is empty: give an id, or leave the option out", param=param
        )
    return value


class InvalidValue(click.BadParameter):
    """A value the CLI refuses itself before sending anything: a usage error
    (exit 2) whose JSON document carries ``INVALID_ARGUMENT``, as the
    server would have answered it."""

    code = "INVALID_ARGUMENT"


def run_id_value(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """A ``--run-id`` that is not empty and is a UUID, refused before anything
    is sent (where the server's refusal made it exit 1 as a failed request)."""
    value = not_empty(ctx, param, value)
    if value is not None:
        try:
            uuid.UUID(value)
        except ValueError:
            raise InvalidValue(
                f"run id {value!r} is not a UUID: pass a run id as `baton workflow list` "
                "or `describe` shows it, or leave it out for the workflow's current run",
                param=param,
            ) from None
    return value


def given(what: str) -> Callable[[click.Context, click.Parameter, str | None], str | None]:
    """A callback refusing a required value given as "" (an unset shell
    variable) as a usage error naming the option and what it takes, before
    anything is sent (the server's answer would be a bare "String should have
    at least 1 character")."""

    def check(_ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise click.BadParameter(f"{value!r} is empty: give {what}", param=param)
        return value

    return check


def split_csv(value: str | None) -> list[str] | None:
    """A comma-separated option as a list (None when empty)."""
    if not value:
        return None
    return [v.strip() for v in value.split(",") if v.strip()]


def _finite(text: str) -> float:
    """A JSON number as a float, or ValueError when it is none (NaN, past ±1.8e308)."""
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is not a finite number")
    return value


def _not_json(text: str) -> Any:
    """``NaN`` and ``Infinity`` are not JSON, though Python's parser takes them."""
    raise ValueError(f"{text} is not JSON")


def strict_json(raw: str) -> Any:
    """``raw`` as JSON, and only JSON: ``NaN``, ``Infinity`` and a number past a
    double's range (``1e400``) are ValueError, where Python's parser takes the
    first two and makes the third infinite (which no request can carry)."""
    return json.loads(raw, parse_float=_finite, parse_constant=_not_json)


def name_value_pairs(values: Sequence[str], option: str) -> dict[str, Any]:
    """NAME=JSON pairs (``--search-attribute`` and the like); a value that is
    not JSON is taken as a string (a Keyword).

    NaN and infinities are not JSON either: taken as the text typed, like
    ``inf``, so a Double or Int attribute refuses them all with one message
    (the type it takes) and a Keyword stores them as written.
    """
    out: dict[str, Any] = {}
    for raw in values:
        name, sep, value = raw.partition("=")
        if not sep or not name.strip():
            raise CliInputError(f"{option} {raw!r} is not NAME=VALUE, e.g. {option} Team=ops")
        try:
            out[name.strip()] = strict_json(value)
        except ValueError:
            out[name.strip()] = value
    return out


#: ``--request-id`` of a command that changes something: a retried command
#: passes the id it used (a lost reply, a timeout) and acts once.
request_id_option = click.option(
    "--request-id",
    default=None,
    callback=not_empty,
    help="A retried request with this id acts once (default: a fresh id).",
)
