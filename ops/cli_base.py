"""What every ``baton`` command module shares.

The global-options state (:class:`CliState`), the command and group classes that
add ``--output`` and report errors uniformly, and small option parsers.
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import click
from aiokafka.errors import KafkaError
from click.exceptions import NoArgsIsHelpError

from ops import devstack
from ops.cli_encrypted import unreadable_note
from ops.cli_values import (
    CliInputError,
    FiniteRange,
    InvalidValue,
    Seconds,
    Timestamp,
    enum_choice,
    given,
    name_value_pairs,
    not_empty,
    request_id_option,
    run_id_value,
    spelled,
    split_csv,
    strict_json,
    wire_max,
)
from ops.output import OUTPUT_CHOICES, print_error, to_json
from ops.pg import PgError
from store.config import BatonConfig, config_path, load_config
from store.errors import StoreError, UnknownRegion
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
    "FiniteRange",
    "InvalidValue",
    "Seconds",
    "ServerFailedError",
    "Timestamp",
    "enum_choice",
    "given",
    "name_value_pairs",
    "not_empty",
    "pass_state",
    "request_id_option",
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
        if self.region and self.region not in config.regions:
            # a usage error as any other unusable option value (exit 2), before anything is sent
            known = ", ".join(sorted(config.regions)) or "none"
            raise CliInputError(f"unknown region {self.region!r}; the config has: {known}")
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
                result = await fn(client)
                note = await unreadable_note(result, converter)
                if note:
                    click.echo(note, err=True)
                return result

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
            ctx.exit(_exit_code(exc))


def _exit_code(exc: Exception) -> int:
    """2 for a usage error (an option value no command could act on, such as
    a region the config does not have), as click gives; 1 for a refusal."""
    if isinstance(exc, CliInputError):
        return exc.exit_code
    return 2 if isinstance(exc, UnknownRegion) else 1


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
