"""``baton dev``, ``baton server`` and ``baton migrate``: running the stack."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
import threading
from typing import Any

import click
from rich.console import Group, RenderableType
from rich.text import Text

from ops import devstack
from ops.cli_base import (
    BatonCommand,
    BatonGroup,
    CliInputError,
    CliState,
    ServerFailedError,
    error_of,
    given,
    pass_state,
    split_csv,
)
from ops.cli_tools import run_fast
from ops.output import emit, err_console, table
from store.config import BatonConfig
from store.migrations import migrate_region
from worker.errors import UnavailableError

__all__ = ["register_stack"]

#: How long `baton server` waits for its cleanup after SIGTERM before exiting anyway.
SERVER_STOP_GRACE_S = 20.0
#: How long a graceful stop (long-polls answered, requests in flight finished)
#: may take before the server's work is cancelled.
SERVER_GRACEFUL_S = 5.0


# --------------------------------------------------------------------------- dev


@click.group(cls=BatonGroup)
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
        "down": [c["component"] for c in components if not c["alive"]],
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
    info = devstack.stack_up(state_dir, split_csv(regions), console=err_console)
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
@click.pass_context
def dev_status(ctx: click.Context, state_dir: str | None, output: str) -> None:
    """Show each component of the local stack: PID, alive, address. Exits 1
    when a component is down (or no stack is recorded), naming it, so a
    script or a health check can act on the answer."""
    data = _status_data(state_dir)

    def render(d: dict[str, Any]) -> RenderableType:
        if not d["components"]:
            return Text(f"no local stack in {d['state_dir']}: run `baton dev up`")
        return _components_table(d["components"])

    emit(data, output, render)
    if data["running"]:
        return
    if data["components"]:
        err_console.print(
            f"down: {', '.join(data['down'])}: `baton dev up` restarts what is not running"
        )
    elif output != "table":
        err_console.print(f"no local stack in {data['state_dir']}: run `baton dev up`")
    ctx.exit(1)


# --------------------------------------------------------------------------- server


@click.command("server", cls=BatonCommand)
@click.option(
    "--region",
    "server_region",
    default=None,
    help="Region this server serves (else the global --region).",
)
@click.option("--host", default=None, help="Listen address (default: from the region URL).")
@click.option(
    "--port",
    type=click.IntRange(1, 65535),
    default=None,
    help="Listen port (default: from the region URL).",
)
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
        loop_box["stop"] = graceful = asyncio.Event()
        from replication import server_checks, server_loops

        await serve(
            cfg,
            region,
            host=host,
            port=port,
            log_level=log_level,
            loops=server_loops(),
            before=server_checks(),
            stop=graceful,
        )

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
            # long-polls answer at once with no task and requests in flight
            # finish; a server still starting (no HTTP yet) is cancelled
            loop.call_soon_threadsafe(loop_box["stop"].set)
            thread.join(SERVER_GRACEFUL_S)
            if thread.is_alive():
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


@click.group(cls=BatonGroup)
def migrate() -> None:
    """Schema migrations of the region databases."""


def _migrate_regions(
    st: CliState, region: str | None, apply: bool
) -> tuple[list[dict[str, Any]], list[str]]:
    """Each chosen region's migrations (applied when ``apply``) and status, and
    the regions whose database could not be migrated (``REGION (CODE)``).

    Each database gets the config's connect bound (lowered by
    ``--request-timeout``); one that does not answer or refuses is named, and
    the other regions are still migrated: an upgrade with a region down brings
    the rest up to date and says which one is left.
    """
    cfg = st.load()
    chosen = region or st.region
    names = [chosen] if chosen else list(cfg.regions)
    rows: list[dict[str, Any]] = []
    failed: list[str] = []
    for name in names:
        try:
            applied, status = asyncio.run(migrate_region(cfg, name, apply=apply))
        except Exception as exc:
            described = error_of(exc)
            if described is None or len(names) == 1:
                raise
            failed.append(name)
            rows.append({"region": name, "error": {"code": described[0], "message": described[1]}})
            continue
        rows.append(
            {
                "region": name,
                "applied": applied,
                "current": status.current,
                "latest": status.latest,
                "pending": status.pending,
                "up_to_date": status.up_to_date,
            }
        )
    if len(failed) == len(names):
        raise UnavailableError(
            "no region database answered: "
            + "; ".join(f"{r['region']}: {r['error']['message']}" for r in rows)
        )
    return rows, failed


def _exit_if_failed(ctx: click.Context, failed: list[str], what: str) -> None:
    """After the rows (a failed region's with its error), say which failed, and exit 1."""
    if failed:
        err_console.print(
            f"error [UNAVAILABLE]: could not {what} {', '.join(failed)} (its row says why); "
            "the other regions are done: bring its database up, then run this again",
            markup=False,
        )
        ctx.exit(1)


def _failed(row: dict[str, Any]) -> str:
    return f"{row['error']['code']}: {row['error']['message']}"


_migrate_region_option = click.option(
    "--region",
    "migrate_region",
    default=None,
    callback=given("a region name, or leave the option out for every region"),
    help="Only this region (default: every region in the config).",
)


@migrate.command("up")
@_migrate_region_option
@click.pass_context
@pass_state
def migrate_up_cmd(
    st: CliState, ctx: click.Context, migrate_region: str | None, output: str
) -> None:
    """Apply pending migrations to each region's database (exit 1 if one failed)."""
    rows, failed = _migrate_regions(st, migrate_region, apply=True)
    emit(
        rows,
        output,
        lambda d: table(
            ["region", "applied", "current", "latest"],
            [
                [x["region"], _failed(x), "", ""]
                if "error" in x
                else [x["region"], ", ".join(x["applied"]) or "none", x["current"], x["latest"]]
                for x in d
            ],
        ),
    )
    _exit_if_failed(ctx, failed, "migrate")


@migrate.command("status")
@_migrate_region_option
@click.pass_context
@pass_state
def migrate_status_cmd(
    st: CliState, ctx: click.Context, migrate_region: str | None, output: str
) -> None:
    """Show each region's schema version and pending migrations (exit 1 if one failed)."""
    rows, failed = _migrate_regions(st, migrate_region, apply=False)
    for x in rows:
        x.pop("applied", None)
    emit(
        rows,
        output,
        lambda d: table(
            ["region", "current", "latest", "pending"],
            [
                [x["region"], _failed(x), "", ""]
                if "error" in x
                else [x["region"], x["current"], x["latest"], ", ".join(x["pending"]) or "none"]
                for x in d
            ],
        ),
    )
    _exit_if_failed(ctx, failed, "read the schema of")


def register_stack(cli: click.Group) -> None:
    """Add the ``dev``, ``server`` and ``migrate`` commands to the CLI group."""
    cli.add_command(dev)
    cli.add_command(server)
    cli.add_command(migrate)
