"""What every ``baton`` command module shares.

The global-options state (:class:`CliState`), the command and group classes that
add ``--output`` and report errors uniformly, and small option parsers.
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import json
import math
import os
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import annotated_types
import asyncpg
import click
from aiokafka.errors import KafkaError
from click.exceptions import NoArgsIsHelpError
from pydantic import BaseModel

from ops import devstack
from ops.output import OUTPUT_CHOICES, print_error, to_json
from ops.pg import PgError
from scheduler.spec import SpecError, parse_duration
from store.config import BatonConfig, config_path, load_config
from store.errors import StoreError
from worker.client import Client
from worker.codec import KEY_ENV_VAR, AesGcmCodec
from worker.converter import DataConverter
from worker.errors import BatonError, WorkflowFailureError

__all__ = [
    "CLI_RETRY_S",
    "REQUEST_TIMEOUT_ENV",
    "REQUEST_TIMEOUT_S",
    "USAGE_ERROR",
    "BatonCommand",
    "BatonGroup",
    "CliInputError",
    "CliState",
    "InvalidValue",
    "Seconds",
    "ServerFailedError",
    "Timestamp",
    "enum_choice",
    "not_empty",
    "pass_state",
    "run_id_value",
    "spelled",
    "split_csv",
    "strict_json",
    "wire_max",
]

T = TypeVar("T")
E = TypeVar("E", bound=enum.Enum)

#: How long a CLI call keeps retrying an unreachable or moving region.
CLI_RETRY_S = 15.0

#: How long a server may take to answer one CLI request (beyond a wait the
#: request asks for, as ``workflow result`` or ``update`` do), unless
#: ``--request-timeout`` or ``$BATON_REQUEST_TIMEOUT`` says otherwise.
REQUEST_TIMEOUT_S = 30.0
REQUEST_TIMEOUT_ENV = "BATON_REQUEST_TIMEOUT"


class CliInputError(Exception):
    """A command-line value is not usable (bad JSON input, options that
    conflict): a usage error found before anything is sent, so the command
    exits 2 as click's own are, with this code naming the kind of problem."""

    code = "INVALID_ARGUMENT"

    #: A usage error's exit status, as click gives one.
    exit_code = 2


class ServerFailedError(Exception):
    """`baton server` could not start or stopped on its own."""

    code = "SERVER_FAILED"


@dataclass
class CliState:
    """Global options, shared by every command through the click context."""

    config: str | None
    namespace: str
    region: str | None
    #: How long a server may take to answer one request; it also bounds the
    #: retries of a server that cannot be reached.
    request_timeout_s: float = REQUEST_TIMEOUT_S

    @property
    def retry_for_s(self) -> float:
        """How long a call keeps retrying an unreachable or moving region."""
        return min(CLI_RETRY_S, self.request_timeout_s)

    @property
    def config_path(self) -> Path:
        """The config file this invocation reads."""
        return config_path(self.config)

    def load(self) -> BatonConfig:
        """Read the config file.

        A region database that does not take a connection within
        ``--request-timeout`` (if shorter than the config's own bound) counts
        as unreachable too.
        """
        config = load_config(self.config_path)
        if self.request_timeout_s < config.connect_timeout_s:
            config = dataclasses.replace(config, connect_timeout_s=self.request_timeout_s)
        return config

    def endpoints(self) -> list[str]:
        """URLs to talk to: the chosen region's, or every region's."""
        cfg = self.load()
        if self.region:
            return [cfg.region(self.region).url]
        return [r.url for r in cfg.regions.values()]

    def data_converter(self) -> DataConverter | None:
        """The SDK's AES-GCM codec when ``$BATON_ENCRYPTION_KEYS`` holds keys.

        The CLI then encrypts what it sends (inputs, signals, memos) and
        decrypts what it shows (results, query and update answers) as a
        worker with those keys does; without it an input would be stored in
        plaintext in a namespace whose workers encrypt everything.
        """
        if not os.environ.get(KEY_ENV_VAR, "").strip():
            return None
        return DataConverter(codec=AesGcmCodec.from_env())

    def run(self, fn: Callable[[Client], Awaitable[T]]) -> T:
        """Connect a client for the namespace, run ``fn`` with it, close it."""
        endpoints = self.endpoints()
        converter = self.data_converter()

        async def go() -> T:
            client = await Client.connect(
                endpoints,
                namespace=self.namespace,
                retry_for_s=self.retry_for_s,
                request_timeout_s=self.request_timeout_s,
                data_converter=converter,
            )
            async with client:
                return await fn(client)

        return asyncio.run(go())


def error_of(exc: BaseException) -> tuple[str, str] | None:
    """(code, message) for errors the CLI reports without a traceback."""
    if isinstance(exc, BatonError):
        return exc.code, exc.message
    if isinstance(exc, StoreError):
        return exc.code.value, exc.message
    if isinstance(exc, WorkflowFailureError):
        return f"WORKFLOW_{exc.status.upper()}", exc.message
    if isinstance(exc, devstack.DevStackError):
        return devstack.DevStackError.code, str(exc)
    if isinstance(exc, PgError):
        return "POSTGRES", str(exc)
    if isinstance(exc, CliInputError | ServerFailedError):
        return exc.code, str(exc)
    if isinstance(exc, TimeoutError):
        return "TIMEOUT", str(exc) or "timed out"
    # Whatever a database or broker raises below the store's own errors: a
    # typed line with a next step, never a traceback.
    if isinstance(exc, asyncpg.PostgresError):
        return (
            "DATABASE_ERROR",
            f"a region database refused the operation ({type(exc).__name__}: {exc}); it changed "
            "nothing: check the region's dsn and `baton migrate status`, then run it again",
        )
    if isinstance(exc, asyncpg.InterfaceError | ConnectionError | OSError):
        return (
            "UNAVAILABLE",
            f"cannot reach a region database or server ({type(exc).__name__}: {exc}): check "
            "that it is up (`baton dev status` for the local stack), then run it again",
        )
    if isinstance(exc, KafkaError):
        return (
            "KAFKA_UNAVAILABLE",
            f"the Kafka broker failed the operation ({exc}): check `[kafka] bootstrap` and that "
            "the broker is up, then run it again",
        )
    return None


def error_details(exc: BaseException) -> dict[str, Any] | None:
    """What an error says beyond its message, for ``--output json``: the
    server's ``details`` (the run already running, the kind of request that
    used a request id), or how a workflow closed and with what failure."""
    if isinstance(exc, WorkflowFailureError):
        # every field, as `workflow describe` and the API give a failure: a
        # script reads the same keys (``cause``, ``timeout_type``) whichever it asked
        failure = exc.failure.model_dump(mode="json") if exc.failure else None
        return {"status": exc.status, "failure": failure}
    details = getattr(exc, "details", None)
    if isinstance(exc, BatonError | StoreError) and isinstance(details, dict):
        return details
    return None


#: Where the root group's ``--output`` (``baton -o json workflow list``) is kept.
_OUTPUT_KEY = "baton.output"


def remember_output(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    """Keep the root group's ``--output`` as the default of its commands' own."""
    if value is not None:
        ctx.meta[_OUTPUT_KEY] = value


def _output_default() -> str:
    ctx = click.get_current_context(silent=True)
    return str(ctx.meta.get(_OUTPUT_KEY, "table")) if ctx is not None else "table"


#: The code of a command line click refuses (exit status 2, nothing runs).
USAGE_ERROR = "USAGE_ERROR"


def _last_output(args: list[str]) -> str | None:
    """The last ``--output`` this (unparsed) command line gives, if any."""
    last = None
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            break
        if arg in ("-o", "--output"):
            last = args[i + 1] if i + 1 < len(args) else last
            i += 1
        elif arg.startswith("--output="):
            last = arg.removeprefix("--output=")
        elif arg[2:] in OUTPUT_CHOICES and arg.startswith("-o"):
            last = arg[2:]
        i += 1
    return last


def _json_asked(ctx: click.Context, args: list[str]) -> bool:
    """Whether this command line asks for JSON output, parsed or not: the
    last ``--output`` given wins (``-o json -o table`` is table), as it does
    for the command's own answer."""
    given = _last_output(args)
    if given is not None:
        return given == "json"
    return ctx.params.get("output") == "json" or ctx.meta.get(_OUTPUT_KEY) == "json"


def _usage_error_as_json(ctx: click.Context, args: list[str], exc: click.UsageError) -> None:
    """With JSON output asked for, a usage error is a JSON document on stdout too
    (click still prints the usage on stderr and exits 2)."""
    if not getattr(exc, "_baton_reported", False) and _json_asked(ctx, args):
        exc._baton_reported = True  # type: ignore[attr-defined]
        where = ctx.command_path or "baton"
        if isinstance(exc, NoArgsIsHelpError):  # its message is the whole help text
            message = f"`{where}` needs a command: `{where} --help` lists them"
        else:
            message = f"{exc.format_message()} (`{where} --help` shows the usage)"
        code = getattr(exc, "code", USAGE_ERROR)
        click.echo(to_json({"error": {"code": code, "message": message}}))


def _refuse_repeated_options(
    cmd: click.Command, ctx: click.Context, args: list[str], *, upto_command: bool = False
) -> None:
    """A usage error for an option of one value given twice (`--memo A --memo
    B`): click keeps the last and drops the rest without a word, which loses
    what the first said. ``--output`` may be given again (the last wins). A
    group looks only at what comes before its command's name."""
    takes_value = {
        name: param
        for param in cmd.params
        if isinstance(param, click.Option) and not param.is_flag and not param.count
        for name in param.opts + param.secondary_opts
    }
    seen: dict[str, int] = {}
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            break
        name = arg.split("=", 1)[0] if arg.startswith("--") else arg
        param = takes_value.get(name)
        if param is not None:
            if not param.multiple and param.name != "output":
                seen[str(param.name)] = seen.get(str(param.name), 0) + 1
                if seen[str(param.name)] > 1:
                    raise click.BadParameter(
                        "given more than once: give it once (only the last would count)",
                        ctx=ctx,
                        param=param,
                    )
            if "=" not in arg:
                i += 1  # its value, whatever it looks like
        elif upto_command and not arg.startswith("-"):
            break
        i += 1


class BatonCommand(click.Command):
    """A command with ``--output`` and uniform error reporting."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.params.append(
            click.Option(
                ["--output", "-o"],
                type=click.Choice(OUTPUT_CHOICES),
                default=_output_default,
                show_default="table, or the one given before the command",
                help="Human tables or one JSON document on stdout.",
            )
        )
        from ops.cli_globals import global_options  # it builds on this module

        taken = {o for p in self.params for o in (*p.opts, *p.secondary_opts)}
        self.params += global_options(taken)

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        given = list(args)  # click's parser consumes the list it parses
        try:
            rest = super().parse_args(ctx, args)
            _refuse_repeated_options(self, ctx, given)
            return rest
        except click.UsageError as exc:
            _usage_error_as_json(ctx, given, exc)
            raise

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.UsageError as exc:
            _usage_error_as_json(ctx, [], exc)
            raise
        except KeyboardInterrupt:
            if ctx.params.get("output") == "json":
                # a script reading stdout gets its one document, as for any error
                print_error(
                    "INTERRUPTED",
                    "the command was interrupted (Ctrl-C or SIGTERM) before it finished: "
                    "check what it was changing, then run it again",
                    "json",
                )
            click.echo("interrupted", err=True)
            ctx.exit(130)
        except Exception as exc:
            described = error_of(exc)
            if described is None:
                raise
            print_error(*described, ctx.params.get("output", "table"), error_details(exc))
            ctx.exit(exc.exit_code if isinstance(exc, CliInputError) else 1)


class BatonGroup(click.Group):
    """A group whose commands are :class:`BatonCommand` and subgroups alike."""

    command_class = BatonCommand
    group_class = type  # subgroups are BatonGroups too

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not any(p.name == "output" for p in self.params):
            # `baton workflow -o json list` as `baton -o json workflow list`: the
            # output may be chosen before any command of the line
            self.params.append(
                click.Option(
                    ["--output", "-o"],
                    type=click.Choice(OUTPUT_CHOICES),
                    default=None,
                    callback=remember_output,
                    expose_value=False,
                    is_eager=True,
                    help="Default of its commands' --output (which overrides it).",
                )
            )

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        given = list(args)  # click's parser consumes the list it parses
        try:
            rest = super().parse_args(ctx, args)
            # the group's own options (-n, --region, ...), before its command
            _refuse_repeated_options(self, ctx, given, upto_command=True)
            return rest
        except click.UsageError as exc:
            _usage_error_as_json(ctx, given, exc)
            raise

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        try:
            return super().resolve_command(ctx, args)
        except click.UsageError as exc:
            _usage_error_as_json(ctx, args, exc)
            raise


pass_state = click.make_pass_decorator(CliState, ensure=False)


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


def enum_choice(cls: type[E], what: str) -> dict[str, Any]:
    """The ``metavar`` and ``callback`` of an option whose value is one of
    ``cls``'s: written with hyphens or underscores, in any case
    (``reject-duplicate``, ``reject_duplicate``, ``RejectDuplicate``); a value
    that is none of them is a usage error naming them all."""

    def key(text: str) -> str:
        return text.strip().lower().replace("-", "").replace("_", "")

    def convert(_ctx: click.Context, param: click.Parameter, value: str | None) -> E | None:
        if value is None:
            return None
        for member in cls:
            if key(str(member.value)) == key(value):
                return member
        choices = ", ".join(spelled(m) for m in cls)
        raise click.BadParameter(f"{value!r} is not {what}: use one of {choices}.", param=param)

    return {"metavar": "[" + "|".join(spelled(m) for m in cls) + "]", "callback": convert}


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
