"""The ``baton`` command line.

::

    baton dev up|down|status                 the local stack (ops.devstack)
    baton server --region R                  one region server, in the foreground
    baton migrate up|status                  schema migrations of region databases
    baton namespace create|describe|list
    baton workflow start|describe|history|result|list|signal|query|update|cancel|terminate

Global options pick the config file (``--config``, else ``$BATON_CONFIG``, else
``$BATON_HOME/baton.toml`` when ``$BATON_HOME`` is set, else
``.baton/baton.toml``), the namespace (``-n``, ``$BATON_NAMESPACE``) and
optionally one region to talk to (else every region's URL: the client follows
the namespace to its active region). Every command takes ``--output
table|json``; errors print ``error [CODE]: message`` on stderr (or a JSON
error document on stdout) and exit with status 1.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import click
import orjson
from rich.console import Group, RenderableType
from rich.text import Text

from ops import devstack
from ops.cli_tools import register_tools, run_fast
from ops.output import (
    OUTPUT_CHOICES,
    emit,
    err_console,
    kv_table,
    print_error,
    short,
    table,
    when,
)
from ops.pg import PgError
from store import db
from store.config import CONFIG_ENV, DEFAULT_CONFIG, BatonConfig, load_config
from store.errors import StoreError, wrap_exceptions
from store.migrations import migrate_up
from store.migrations import status as migration_status
from worker.client import Client, WorkflowHandle
from worker.errors import BatonError, WorkflowFailureError
from worker.wire import WorkflowIdReusePolicy, WorkflowStatus

__all__ = ["cli", "main"]

T = TypeVar("T")

#: How long a CLI call keeps retrying an unreachable or moving region.
CLI_RETRY_S = 15.0
#: How long `baton server` waits for its cleanup after SIGTERM before exiting anyway.
SERVER_STOP_GRACE_S = 20.0


class CliInputError(Exception):
    """A command-line value is not usable (bad JSON input, bad timestamp)."""

    code = "INVALID_ARGUMENT"


class ServerFailedError(Exception):
    """`baton server` could not start or stopped on its own."""

    code = "SERVER_FAILED"


@dataclass
class CliState:
    """Global options, shared by every command through the click context."""

    config: str | None
    namespace: str
    region: str | None

    @property
    def config_path(self) -> Path:
        """The config file this invocation reads."""
        if self.config:
            return Path(self.config)
        if os.environ.get(CONFIG_ENV):
            return Path(os.environ[CONFIG_ENV])
        # A stack brought up in $BATON_HOME writes its config there.
        if os.environ.get(devstack.HOME_ENV):
            return Path(os.environ[devstack.HOME_ENV]) / devstack.CONFIG_FILE
        return DEFAULT_CONFIG

    def load(self) -> BatonConfig:
        """Read the config file."""
        return load_config(self.config_path)

    def endpoints(self) -> list[str]:
        """URLs to talk to: the chosen region's, or every region's."""
        cfg = self.load()
        if self.region:
            return [cfg.region(self.region).url]
        return [r.url for r in cfg.regions.values()]

    def run(self, fn: Callable[[Client], Awaitable[T]]) -> T:
        """Connect a client for the namespace, run ``fn`` with it, close it."""
        endpoints = self.endpoints()

        async def go() -> T:
            client = await Client.connect(
                endpoints, namespace=self.namespace, retry_for_s=CLI_RETRY_S
            )
            async with client:
                return await fn(client)

        return asyncio.run(go())


def _error_of(exc: BaseException) -> tuple[str, str] | None:
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
    return None


class BatonCommand(click.Command):
    """A command with ``--output`` and uniform error reporting."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.params.append(
            click.Option(
                ["--output", "-o"],
                type=click.Choice(OUTPUT_CHOICES),
                default="table",
                show_default=True,
                help="Human tables or one JSON document on stdout.",
            )
        )

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            ctx.exit(130)
        except Exception as exc:
            described = _error_of(exc)
            if described is None:
                raise
            print_error(*described, ctx.params.get("output", "table"))
            ctx.exit(1)


class BatonGroup(click.Group):
    """A group whose commands are :class:`BatonCommand` and subgroups alike."""

    command_class = BatonCommand
    group_class = type  # subgroups are BatonGroups too


pass_state = click.make_pass_decorator(CliState, ensure=False)


# --------------------------------------------------------------------------- helpers


def _json_values(values: Sequence[str], what: str = "--input") -> list[Any]:
    out = []
    for i, raw in enumerate(values, 1):
        try:
            out.append(json.loads(raw))
        except ValueError as exc:
            raise CliInputError(
                f"{what} #{i} is not valid JSON ({exc}): {raw!r}; quote strings as '\"text\"'"
            ) from exc
    return out


def _timestamp(value: str | None, option: str) -> datetime | None:
    if value is None:
        return None
    try:
        ts = datetime.fromisoformat(value)
    except ValueError as exc:
        raise CliInputError(f"{option} {value!r} is not an ISO 8601 time: {exc}") from exc
    # A time without an offset is taken as UTC, the server's clock.
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


def _csv(value: str | None) -> list[str] | None:
    if not value:
        return None
    return [v.strip() for v in value.split(",") if v.strip()]


def _payload_value(p: dict[str, Any]) -> Any:
    """A payload as readable data for summaries (never fails)."""
    enc = p.get("metadata", {}).get("encoding", "json/plain")
    try:
        raw = base64.b64decode(p.get("data", ""))
    except ValueError:
        return "<payload>"
    if enc == "binary/null":
        return None
    if enc == "json/plain":
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            return "<payload>"
    # Encrypted or otherwise encoded: the CLI holds no codec, so do not guess.
    return f"<{enc} payload, {len(raw)} bytes>"


def _readable(value: Any) -> Any:
    if isinstance(value, dict):
        if "data" in value and "metadata" in value and isinstance(value["data"], str):
            return _payload_value(value)
        return {k: _readable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_readable(v) for v in value]
    return value


def _attr_summary(attrs: dict[str, Any], width: int = 90) -> str:
    parts = []
    for k, v in attrs.items():
        # Ids that are in every start add noise, not information, to a one-line summary.
        if v in (None, "", [], {}) or k in ("identity", "request_id", "first_run_id"):
            continue
        parts.append(f"{k}={short(_readable(v), 40)}")
    return short(", ".join(parts), width)


# --------------------------------------------------------------------------- root


@click.group(cls=BatonGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config",
    type=click.Path(dir_okay=False),
    default=None,
    help="Config file (else $BATON_CONFIG, $BATON_HOME/baton.toml, .baton/baton.toml).",
)
@click.option(
    "--namespace",
    "-n",
    envvar="BATON_NAMESPACE",
    default="default",
    show_default=True,
    help="Namespace to act in ($BATON_NAMESPACE).",
)
@click.option(
    "--region",
    default=None,
    help="Talk to this region's endpoint only (default: every region's; the "
    "client follows the namespace's active region).",
)
@click.version_option("0.1.0", prog_name="baton")
@click.pass_context
def cli(ctx: click.Context, config: str | None, namespace: str, region: str | None) -> None:
    """Baton: a durable-execution workflow store that survives the loss of a region."""
    ctx.obj = CliState(config=config, namespace=namespace, region=region)


# --------------------------------------------------------------------------- dev


@cli.group(cls=BatonGroup)
def dev() -> None:
    """The local development stack (PostgreSQL, Kafka and one server per region)."""


_state_dir_option = click.option(
    "--state-dir",
    type=click.Path(file_okay=False),
    default=None,
    help="State folder (else $BATON_HOME, else .baton in the current directory).",
)


def _components_table(components: list[dict[str, Any]]) -> RenderableType:
    return table(
        ["component", "pid", "alive", "address"],
        [[c["component"], c["pid"], c["alive"], c["address"]] for c in components],
    )


def _status_data(state_dir: str | None) -> dict[str, Any]:
    state = devstack.resolve_state_dir(state_dir)
    components = [vars(c) for c in devstack.stack_status(state)]
    return {
        "state_dir": str(state),
        "config_path": str(state / devstack.CONFIG_FILE),
        "running": bool(components) and all(c["alive"] for c in components),
        "components": components,
    }


@dev.command("up")
@_state_dir_option
@click.option(
    "--regions",
    default=None,
    help="Comma-separated regions (default: the recorded ones, or "
    "region-a,region-b the first time).",
)
def dev_up(state_dir: str | None, regions: str | None, output: str) -> None:
    """Start the local stack; starts only what is not running."""
    info = devstack.stack_up(state_dir, _csv(regions), console=err_console)
    data = {
        **info.to_dict(),
        "changed": info.changed,
        "actions": info.actions,
        "components": _status_data(str(info.state_dir))["components"],
    }

    def render(d: dict[str, Any]) -> RenderableType:
        head = (
            "stack is up: " + "; ".join(d["actions"])
            if d["changed"]
            else "stack was already up: nothing changed"
        )
        return Group(
            Text(head), _components_table(d["components"]), Text(f"config: {d['config_path']}")
        )

    emit(data, output, render)


@dev.command("down")
@_state_dir_option
def dev_down(state_dir: str | None, output: str) -> None:
    """Stop the processes the local stack started (and only those)."""
    state = devstack.resolve_state_dir(state_dir)
    info = devstack.stack_down(state, console=err_console)
    data = {
        "state_dir": str(state),
        "changed": bool(info and info.changed),
        "actions": info.actions if info else [],
    }

    def render(d: dict[str, Any]) -> RenderableType:
        if info is None:
            return Text(f"no local stack recorded in {d['state_dir']}: nothing to stop")
        return Text(
            "stopped: " + "; ".join(d["actions"]) if d["changed"] else "nothing was running"
        )

    emit(data, output, render)


@dev.command("status")
@_state_dir_option
def dev_status(state_dir: str | None, output: str) -> None:
    """Show each component of the local stack: PID, alive, address."""
    data = _status_data(state_dir)

    def render(d: dict[str, Any]) -> RenderableType:
        if not d["components"]:
            return Text(f"no local stack in {d['state_dir']}: run `baton dev up`")
        return _components_table(d["components"])

    emit(data, output, render)


# --------------------------------------------------------------------------- server


@cli.command("server")
@click.option(
    "--region",
    "server_region",
    default=None,
    help="Region this server serves (else the global --region).",
)
@click.option("--host", default=None, help="Listen address (default: from the region URL).")
@click.option("--port", type=int, default=None, help="Listen port (default: from the region URL).")
@click.option(
    "--log-level",
    type=click.Choice(["critical", "error", "warning", "info", "debug"]),
    default="warning",
    show_default=True,
)
@pass_state
def server(
    st: CliState,
    server_region: str | None,
    host: str | None,
    port: int | None,
    log_level: str,
    output: str,
) -> None:
    """Run one region server in the foreground until SIGTERM or SIGINT."""
    region = server_region or st.region
    if not region:
        raise CliInputError("which region? pass --region NAME")
    cfg = st.load()
    cfg.region(region)  # unknown region: a clear error before anything starts
    logging.basicConfig(
        level=log_level.upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    _serve_until_signalled(cfg, region, host, port, log_level)


def _serve_until_signalled(
    cfg: BatonConfig, region: str, host: str | None, port: int | None, log_level: str
) -> None:
    """Run the server in a thread; the main thread turns SIGTERM/SIGINT into a clean stop.

    The server's event loop runs outside the main thread on purpose: uvicorn then
    leaves signal handling to us instead of re-raising the signal after its own
    shutdown (which would kill the process before the store closes its pool).
    """
    from store.server import serve  # FastAPI and uvicorn load only for this command

    stop = threading.Event()
    result: dict[str, BaseException | None] = {"error": None}
    loop_box: dict[str, Any] = {}

    async def main() -> None:
        loop_box["loop"] = asyncio.get_running_loop()
        loop_box["task"] = asyncio.current_task()
        from replication import server_loops

        await serve(cfg, region, host=host, port=port, log_level=log_level, loops=server_loops())

    def run() -> None:
        try:
            run_fast(main())
        except asyncio.CancelledError:
            pass
        except BaseException as exc:  # reported by the main thread
            result["error"] = exc
        finally:
            stop.set()

    def on_signal(signum: int, _frame: object) -> None:
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    thread = threading.Thread(target=run, name="baton-server", daemon=True)
    thread.start()
    try:
        while not stop.wait(0.5):
            pass
        loop, task = loop_box.get("loop"), loop_box.get("task")
        if thread.is_alive() and loop is not None and task is not None:
            logging.getLogger("baton.server").warning("stopping server of %s", region)
            loop.call_soon_threadsafe(task.cancel)
        thread.join(SERVER_STOP_GRACE_S)
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
    err = result["error"]
    if isinstance(err, SystemExit):
        # uvicorn exits this way when it cannot listen; its log line says why.
        raise ServerFailedError(
            f"server of {region} stopped during startup (exit status {err.code}); "
            "see the messages above"
        )
    if err is not None:
        raise err


# --------------------------------------------------------------------------- migrate


@cli.group(cls=BatonGroup)
def migrate() -> None:
    """Schema migrations of the region databases."""


def _regions_for(st: CliState, region: str | None) -> list[tuple[str, str]]:
    cfg = st.load()
    chosen = region or st.region
    names = [chosen] if chosen else list(cfg.regions)
    return [(r, cfg.region(r).dsn) for r in names]


async def _migrate_region(dsn: str, apply: bool) -> dict[str, Any]:
    conn = await db.connect(dsn)
    try:
        with wrap_exceptions():
            applied = await migrate_up(conn) if apply else []
            st = await migration_status(conn)
    finally:
        await conn.close()
    return {
        "applied": applied,
        "current": st.current,
        "latest": st.latest,
        "pending": st.pending,
        "up_to_date": st.up_to_date,
    }


_migrate_region_option = click.option(
    "--region",
    "migrate_region",
    default=None,
    help="Only this region (default: every region in the config).",
)


@migrate.command("up")
@_migrate_region_option
@pass_state
def migrate_up_cmd(st: CliState, migrate_region: str | None, output: str) -> None:
    """Apply pending migrations to each region's database."""
    rows = [
        {"region": r, **asyncio.run(_migrate_region(dsn, True))}
        for r, dsn in _regions_for(st, migrate_region)
    ]
    emit(
        rows,
        output,
        lambda d: table(
            ["region", "applied", "current", "latest"],
            [
                [x["region"], ", ".join(x["applied"]) or "none", x["current"], x["latest"]]
                for x in d
            ],
        ),
    )


@migrate.command("status")
@_migrate_region_option
@pass_state
def migrate_status_cmd(st: CliState, migrate_region: str | None, output: str) -> None:
    """Show each region's schema version and pending migrations."""
    rows = [
        {"region": r, **asyncio.run(_migrate_region(dsn, False))}
        for r, dsn in _regions_for(st, migrate_region)
    ]
    for x in rows:
        del x["applied"]
    emit(
        rows,
        output,
        lambda d: table(
            ["region", "current", "latest", "pending"],
            [
                [x["region"], x["current"], x["latest"], ", ".join(x["pending"]) or "none"]
                for x in d
            ],
        ),
    )


# --------------------------------------------------------------------------- namespace


@cli.group(cls=BatonGroup)
def namespace() -> None:
    """Create and inspect namespaces."""


def _namespace_view(d: dict[str, Any]) -> RenderableType:
    view = dict(d)
    if isinstance(view.get("executions"), dict):
        view["executions"] = ", ".join(f"{k}={v}" for k, v in view["executions"].items()) or "0"
    return kv_table(view)


@namespace.command("create")
@click.argument("name")
@click.option("--regions", default=None, help="Comma-separated regions (default: all).")
@click.option("--active", "active", default=None, help="Active region (default: the first).")
@click.option("--retention-days", type=click.IntRange(1, 3650), default=7, show_default=True)
@click.option("--description", default="", help="Free text.")
@pass_state
def namespace_create(
    st: CliState,
    name: str,
    regions: str | None,
    active: str | None,
    retention_days: int,
    description: str,
    output: str,
) -> None:
    """Create namespace NAME."""
    region_list = _csv(regions) or list(st.load().regions)
    data = st.run(
        lambda c: c.create_namespace(
            name,
            regions=region_list,
            active_region=active or region_list[0],
            retention_days=retention_days,
            description=description,
        )
    )
    emit(data, output, _namespace_view)


@namespace.command("describe")
@click.argument("name")
@pass_state
def namespace_describe(st: CliState, name: str, output: str) -> None:
    """Show namespace NAME with its execution counts."""
    emit(st.run(lambda c: c.describe_namespace(name)), output, _namespace_view)


@namespace.command("list")
@pass_state
def namespace_list(st: CliState, output: str) -> None:
    """List namespaces."""
    emit(
        st.run(lambda c: c.list_namespaces()),
        output,
        lambda d: table(
            ["name", "active region", "regions", "version", "state", "retention", "description"],
            [
                [
                    n["name"],
                    n["active_region"],
                    n["regions"],
                    n["failover_version"],
                    n["state"],
                    f"{n['retention_days']} d",
                    n.get("description", ""),
                ]
                for n in d
            ],
        ),
    )


# --------------------------------------------------------------------------- workflow


@cli.group(cls=BatonGroup)
def workflow() -> None:
    """Start workflows and act on them."""


_input_option = click.option(
    "--input",
    "-i",
    "inputs",
    multiple=True,
    help="One argument as JSON (repeat for several): --input '\"text\"' --input 42.",
)
_run_id_option = click.option("--run-id", default=None, help="A specific run (default: latest).")


@workflow.command("start")
@click.option("--type", "-t", "workflow_type", required=True, help="Workflow type name.")
@click.option("--task-queue", "-q", required=True, help="Task queue workers poll.")
@click.option("--id", "workflow_id", required=True, help="Workflow id.")
@_input_option
@click.option(
    "--request-id",
    default=None,
    help="Idempotency key: a retried start with the same key never starts twice.",
)
@click.option(
    "--id-reuse-policy",
    type=click.Choice([p.value for p in WorkflowIdReusePolicy]),
    default=WorkflowIdReusePolicy.ALLOW_DUPLICATE.value,
    show_default=True,
)
@pass_state
def workflow_start(
    st: CliState,
    workflow_type: str,
    task_queue: str,
    workflow_id: str,
    inputs: tuple[str, ...],
    request_id: str | None,
    id_reuse_policy: str,
    output: str,
) -> None:
    """Start a workflow."""
    args = _json_values(inputs)

    async def go(c: Client) -> dict[str, Any]:
        h = await c.start_workflow(
            workflow_type,
            *args,
            id=workflow_id,
            task_queue=task_queue,
            request_id=request_id,
            id_reuse_policy=WorkflowIdReusePolicy(id_reuse_policy),
        )
        return {
            "namespace": c.namespace,
            "workflow_id": h.id,
            "run_id": h.run_id,
            "workflow_type": workflow_type,
            "task_queue": task_queue,
        }

    emit(st.run(go), output, kv_table)


def _describe_view(d: dict[str, Any]) -> RenderableType:
    ex = d["execution"]
    keys = [
        "workflow_id",
        "run_id",
        "workflow_type",
        "task_queue",
        "status",
        "paused",
        "start_time",
        "close_time",
        "history_length",
        "last_write_version",
        "continued_from_run_id",
        "continued_to_run_id",
    ]
    parts: list[RenderableType] = [
        kv_table({k: ex.get(k) for k in keys}, title=f"workflow {ex['workflow_id']}")
    ]
    if d.get("pending_workflow_task"):
        parts.append(kv_table(d["pending_workflow_task"], title="pending workflow task"))
    if d.get("pending_activities"):
        parts.append(
            table(
                ["activity id", "type", "state", "attempt", "last failure"],
                [
                    [
                        a["activity_id"],
                        a["activity_type"],
                        a["state"],
                        a["attempt"],
                        (a.get("last_failure") or {}).get("message"),
                    ]
                    for a in d["pending_activities"]
                ],
                title="pending activities",
            )
        )
    if d.get("pending_timers"):
        parts.append(
            table(["timer"], [[short(t, 100)] for t in d["pending_timers"]], title="pending timers")
        )
    return Group(*parts)


@workflow.command("describe")
@click.argument("workflow_id")
@_run_id_option
@pass_state
def workflow_describe(st: CliState, workflow_id: str, run_id: str | None, output: str) -> None:
    """Show a workflow's state, pending activities and timers."""
    emit(
        st.run(lambda c: c.get_workflow_handle(workflow_id, run_id=run_id).describe()),
        output,
        _describe_view,
    )


@workflow.command("history")
@click.argument("workflow_id")
@_run_id_option
@pass_state
def workflow_history(st: CliState, workflow_id: str, run_id: str | None, output: str) -> None:
    """Show a run's event history."""
    events = st.run(lambda c: c.get_workflow_handle(workflow_id).history(run_id=run_id))
    data = {"workflow_id": workflow_id, "run_id": run_id, "events": events}
    emit(
        data,
        output,
        lambda d: table(
            ["id", "type", "time", "version", "attributes"],
            [
                [
                    e["event_id"],
                    e["event_type"],
                    when(e["event_time"]),
                    e["version"],
                    _attr_summary(e.get("attributes") or {}),
                ]
                for e in d["events"]
            ],
            no_wrap=["id", "type", "version"],
        ),
    )


@workflow.command("result")
@click.argument("workflow_id")
@_run_id_option
@click.option("--timeout", type=float, default=None, help="Give up after S seconds.")
@pass_state
def workflow_result(
    st: CliState, workflow_id: str, run_id: str | None, timeout: float | None, output: str
) -> None:
    """Wait for a workflow's result (following continue-as-new)."""

    async def go(c: Client) -> dict[str, Any]:
        h = c.get_workflow_handle(workflow_id, run_id=run_id)
        value = await h.result(timeout=timeout)
        return {
            "workflow_id": workflow_id,
            "status": WorkflowStatus.COMPLETED.value,
            "result": value,
        }

    emit(st.run(go), output, kv_table)


@workflow.command("list")
@click.option("--status", type=click.Choice([s.value for s in WorkflowStatus]), default=None)
@click.option("--type", "workflow_type", default=None, help="Workflow type name.")
@click.option("--task-queue", default=None)
@click.option("--started-after", default=None, help="ISO 8601 time (UTC if no offset).")
@click.option("--started-before", default=None, help="ISO 8601 time (UTC if no offset).")
@click.option("--prefix", default=None, help="Workflow id prefix.")
@click.option("--limit", type=click.IntRange(1), default=100, show_default=True)
@pass_state
def workflow_list(
    st: CliState,
    status: str | None,
    workflow_type: str | None,
    task_queue: str | None,
    started_after: str | None,
    started_before: str | None,
    prefix: str | None,
    limit: int,
    output: str,
) -> None:
    """List workflow runs, newest first."""
    after = _timestamp(started_after, "--started-after")
    before = _timestamp(started_before, "--started-before")

    async def go(c: Client) -> list[dict[str, Any]]:
        return [
            e.raw
            async for e in c.list_workflows(
                status=status,
                workflow_type=workflow_type,
                task_queue=task_queue,
                started_after=after,
                started_before=before,
                workflow_id_prefix=prefix,
                page_size=min(limit, 100),
                limit=limit,
            )
        ]

    emit(
        st.run(go),
        output,
        lambda d: table(
            [
                "workflow id",
                "run id",
                "type",
                "task queue",
                "status",
                "started",
                "closed",
                "events",
            ],
            [
                [
                    e["workflow_id"],
                    e["run_id"],
                    e["workflow_type"],
                    e["task_queue"],
                    e["status"] + (" (paused)" if e.get("paused") else ""),
                    when(e["start_time"]),
                    when(e.get("close_time")),
                    e["history_length"],
                ]
                for e in d
            ],
            no_wrap=["workflow id", "status"],
        ),
    )


def _act(st: CliState, workflow_id: str, fn: Callable[[WorkflowHandle], Awaitable[Any]]) -> Any:
    return st.run(lambda c: fn(c.get_workflow_handle(workflow_id)))


@workflow.command("signal")
@click.argument("workflow_id")
@click.argument("name")
@_input_option
@pass_state
def workflow_signal(
    st: CliState, workflow_id: str, name: str, inputs: tuple[str, ...], output: str
) -> None:
    """Send signal NAME to a workflow."""
    args = _json_values(inputs)
    _act(st, workflow_id, lambda h: h.signal(name, *args))
    emit(
        {"workflow_id": workflow_id, "signal": name, "signaled": True},
        output,
        lambda d: Text(f"signaled {d['workflow_id']} with {d['signal']}"),
    )


@workflow.command("query")
@click.argument("workflow_id")
@click.argument("name")
@_input_option
@pass_state
def workflow_query(
    st: CliState, workflow_id: str, name: str, inputs: tuple[str, ...], output: str
) -> None:
    """Ask a workflow's query handler NAME (needs a worker polling its task queue)."""
    args = _json_values(inputs)
    value = _act(st, workflow_id, lambda h: h.query(name, *args))
    emit({"workflow_id": workflow_id, "query": name, "result": value}, output, kv_table)


@workflow.command("update")
@click.argument("workflow_id")
@click.argument("name")
@_input_option
@click.option(
    "--update-id",
    default=None,
    help="Idempotency key: the same id returns the same update's result.",
)
@pass_state
def workflow_update(
    st: CliState,
    workflow_id: str,
    name: str,
    inputs: tuple[str, ...],
    update_id: str | None,
    output: str,
) -> None:
    """Send update NAME to a workflow and wait for its result."""
    args = _json_values(inputs)
    value = _act(st, workflow_id, lambda h: h.update(name, *args, update_id=update_id))
    emit(
        {"workflow_id": workflow_id, "update": name, "update_id": update_id, "result": value},
        output,
        kv_table,
    )


@workflow.command("cancel")
@click.argument("workflow_id")
@click.option("--reason", default="", help="Recorded in the history.")
@pass_state
def workflow_cancel(st: CliState, workflow_id: str, reason: str, output: str) -> None:
    """Request cancellation of a workflow (its code decides how to wind down)."""
    _act(st, workflow_id, lambda h: h.cancel(reason))
    emit(
        {"workflow_id": workflow_id, "cancel_requested": True, "reason": reason},
        output,
        lambda d: Text(f"cancellation requested for {d['workflow_id']}"),
    )


@workflow.command("terminate")
@click.argument("workflow_id")
@click.option("--reason", default="", help="Recorded in the history.")
@pass_state
def workflow_terminate(st: CliState, workflow_id: str, reason: str, output: str) -> None:
    """Terminate a workflow at once (no workflow code runs)."""
    _act(st, workflow_id, lambda h: h.terminate(reason))
    emit(
        {"workflow_id": workflow_id, "terminated": True, "reason": reason},
        output,
        lambda d: Text(f"terminated {d['workflow_id']}"),
    )


# --------------------------------------------------------------------------- entry point

register_tools(cli)


def main(argv: Sequence[str] | None = None) -> None:
    """Run the CLI (the ``baton`` console script)."""
    cli.main(args=list(argv) if argv is not None else None, prog_name="baton")


if __name__ == "__main__":
    main()
