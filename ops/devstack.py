"""The local development stack: PostgreSQL plus one ``baton server`` per region.

Everything the stack needs lives in one state folder (``--state-dir``, else
``$BATON_HOME``, else ``.baton`` under the current directory)::

    STATE/stack.json        ports, PIDs and paths (the only record of what runs)
    STATE/baton.toml        the Baton config every command reads
    STATE/pg/               the PostgreSQL cluster (one database per region)
    STATE/postgres.log      its log
    STATE/logs/server-R.log each region server's output

:func:`stack_up` is idempotent: it starts what is not running and leaves the
rest alone. :func:`stack_down` stops exactly the PIDs ``stack.json`` records,
after checking that each still runs our command line, so a recycled PID is
never signalled. Kafka (replication) is not part of the stack yet; the place
where it will start is marked in :func:`stack_up`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import fcntl
import json
import os
import re
import signal
import socket
import stat
import sys
import time
from collections.abc import Coroutine, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
from rich.console import Console
from rich.text import Text

import ops
from ops.kafka import free_ports
from ops.pg import PgCluster, region_db_name
from store import db
from store.migrations import migrate_up

__all__ = [
    "DEFAULT_REGIONS",
    "HOME_ENV",
    "Component",
    "DevStackError",
    "ServerInfo",
    "StackInfo",
    "load_stack",
    "resolve_state_dir",
    "stack_down",
    "stack_status",
    "stack_up",
]

T = TypeVar("T")

#: Environment variable naming the state folder.
HOME_ENV = "BATON_HOME"
DEFAULT_STATE_DIR = Path(".baton")
DEFAULT_REGIONS: tuple[str, ...] = ("region-a", "region-b")
FAILOVER_VERSION_INCREMENT = 100
DEFAULT_NAMESPACE = "default"
STACK_FILE = "stack.json"
CONFIG_FILE = "baton.toml"
LOOPBACK = "127.0.0.1"

#: How long a server gets to answer /healthz after it is started.
SERVER_READY_TIMEOUT_S = 45.0
#: How long a server gets to exit after SIGTERM before it is killed.
SERVER_STOP_TIMEOUT_S = 15.0
#: How long a `baton dev` command waits for another one on the same state folder.
LOCK_TIMEOUT_S = 180.0

# Region names become database names and TOML keys: keep them plain.
_REGION_NAME = re.compile(r"^[a-z][a-z0-9-]{0,40}$")


class DevStackError(RuntimeError):
    """The local stack could not be brought up, inspected or stopped."""

    code = "DEV_STACK"


@dataclass
class ServerInfo:
    """One region server of the stack."""

    region: str
    """Region name."""
    port: int
    """Loopback port of its HTTP API."""
    initial_version: int
    """The region's initial failover version."""
    database: str
    """Name of the region's database in the stack's PostgreSQL."""
    pid: int | None = None
    """PID of the server process as last started (None: never started or stopped)."""
    log_file: Path | None = None
    """Where the server's stdout and stderr go."""

    @property
    def url(self) -> str:
        """Base URL of the region's API."""
        return f"http://{LOOPBACK}:{self.port}"


@dataclass
class Component:
    """One row of :func:`stack_status`."""

    component: str
    """``postgres`` or ``server REGION``."""
    pid: int | None
    """The recorded PID."""
    alive: bool
    """Whether that PID still runs the component (checked through /proc)."""
    address: str
    """Where it listens."""


@dataclass
class StackInfo:
    """What the state folder records about the stack, and what the last call did."""

    state_dir: Path
    """The state folder."""
    config_path: Path
    """The Baton config the stack's servers (and the CLI) read."""
    pg_port: int
    """Loopback port of PostgreSQL."""
    pg_pid: int | None
    """PID of the postmaster (None when stopped)."""
    servers: dict[str, ServerInfo]
    """Region servers by region name, in config order."""
    failover_version_increment: int = FAILOVER_VERSION_INCREMENT
    """Shared increment of failover versions."""
    kafka: dict[str, Any] | None = None
    """Kafka broker record; None until Kafka joins the stack."""
    actions: list[str] = field(default_factory=list)
    """What the last :func:`stack_up` or :func:`stack_down` did (empty: nothing)."""

    @property
    def regions(self) -> list[str]:
        """Region names in config order."""
        return list(self.servers)

    @property
    def endpoints(self) -> list[str]:
        """Every region's URL (what ``Client.connect`` takes)."""
        return [s.url for s in self.servers.values()]

    @property
    def changed(self) -> bool:
        """Whether the last call changed anything."""
        return bool(self.actions)

    @property
    def pg(self) -> PgCluster:
        """The stack's PostgreSQL cluster."""
        return PgCluster(self.state_dir / "pg", self.pg_port)

    def dsn(self, region: str) -> str:
        """libpq URL of ``region``'s database."""
        return self.pg.dsn(self.servers[region].database)

    def url(self, region: str) -> str:
        """Base URL of ``region``'s API."""
        return self.servers[region].url

    def to_dict(self) -> dict[str, Any]:
        """The record as JSON-ready data (the shape of ``stack.json``)."""
        return {
            "state_dir": str(self.state_dir),
            "config_path": str(self.config_path),
            "failover_version_increment": self.failover_version_increment,
            "postgres": {
                "port": self.pg_port,
                "pid": self.pg_pid,
                "data_dir": str(self.state_dir / "pg"),
            },
            "servers": {
                r: {
                    "port": s.port,
                    "url": s.url,
                    "pid": s.pid,
                    "initial_version": s.initial_version,
                    "database": s.database,
                    "log_file": str(s.log_file) if s.log_file else None,
                }
                for r, s in self.servers.items()
            },
            # Reserved for the replication broker (ops.kafka) once it joins the stack.
            "kafka": self.kafka,
        }

    @classmethod
    def from_dict(cls, state_dir: Path, raw: dict[str, Any]) -> StackInfo:
        """Rebuild the record read from ``stack.json``."""
        try:
            servers = {
                r: ServerInfo(
                    region=r,
                    port=int(s["port"]),
                    initial_version=int(s["initial_version"]),
                    database=str(s["database"]),
                    pid=s.get("pid"),
                    log_file=Path(s["log_file"]) if s.get("log_file") else None,
                )
                for r, s in raw["servers"].items()
            }
            return cls(
                state_dir=state_dir,
                config_path=state_dir / CONFIG_FILE,
                pg_port=int(raw["postgres"]["port"]),
                pg_pid=raw["postgres"].get("pid"),
                servers=servers,
                failover_version_increment=int(
                    raw.get("failover_version_increment", FAILOVER_VERSION_INCREMENT)
                ),
                kafka=raw.get("kafka"),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise DevStackError(
                f"{state_dir / STACK_FILE} is not a stack record this version understands "
                f"({exc!r}); stop what it started and remove the state folder"
            ) from exc


# --------------------------------------------------------------------------- public API


def resolve_state_dir(state_dir: str | os.PathLike[str] | None = None) -> Path:
    """The state folder: the argument, else ``$BATON_HOME``, else ``./.baton`` (absolute)."""
    if state_dir:
        return Path(state_dir).absolute()
    if os.environ.get(HOME_ENV):
        return Path(os.environ[HOME_ENV]).absolute()
    return DEFAULT_STATE_DIR.absolute()


def stack_up(
    state_dir: str | os.PathLike[str] | None = None,
    regions: Sequence[str] | None = None,
    *,
    console: Console | None = None,
) -> StackInfo:
    """Bring the local stack up, starting only what is not running.

    Args:
        state_dir: The state folder (see :func:`resolve_state_dir`).
        regions: Regions to run. None keeps the recorded ones (or
            ``region-a, region-b`` the first time); regions not yet recorded
            are added with the next free port and failover version.
        console: Where to show progress; None keeps quiet.

    Returns:
        The stack; ``actions`` lists what this call did (empty when everything
        was running already).

    Raises:
        DevStackError: A step failed; the message says which and why.
    """
    state = resolve_state_dir(state_dir)
    steps = _Steps(console)
    with _locked(state):
        info = _load_or_plan(state, regions)
        _save(info)

        with steps.step("PostgreSQL") as s:
            pg = info.pg
            was_running = pg.pid() is not None
            try:
                created = pg.init()
                info.pg_pid = pg.start()
            except Exception as exc:  # PgError, OSError: report with the stack's context
                raise DevStackError(f"PostgreSQL did not start: {exc}") from exc
            if created:
                info.actions.append("initialised PostgreSQL cluster")
            if not was_running:
                info.actions.append(f"started PostgreSQL (pid {info.pg_pid})")
            s.done(
                f"pid {info.pg_pid} on {LOOPBACK}:{info.pg_port}"
                + ("" if not was_running else " (already running)")
            )
            _save(info)

        with steps.step("databases and migrations") as s:
            notes = []
            for srv in info.servers.values():
                if pg.create_database(srv.database):
                    info.actions.append(f"created database {srv.database}")
                applied = _run(_migrate(info.dsn(srv.region)))
                if applied:
                    info.actions.append(f"migrated {srv.region}: {', '.join(applied)}")
                notes.append(f"{srv.database}" + (f" +{len(applied)}" if applied else ""))
            s.done(", ".join(notes))

        # --- Kafka (replication) ------------------------------------------------
        # The replication broker will start here with ops.kafka.KafkaBroker
        # (ports from free_ports, data in STATE/kafka, PID in stack.json
        # "kafka"), and _write_config will add [kafka] bootstrap. Until then the
        # stack runs without replication, so each region is on its own.
        # -------------------------------------------------------------------------

        with steps.step("config") as s:
            config_changed = _write_config(info)
            if config_changed:
                info.actions.append(f"wrote {info.config_path}")
            s.done(str(info.config_path))

        # Start every missing server first, then wait: they boot in parallel.
        started: dict[str, bool] = {}
        for srv in info.servers.values():
            if _server_alive(info, srv):
                if not config_changed:
                    continue
                # It read the old config (a region was added): restart it to pick it up.
                assert srv.pid is not None
                _terminate(srv.pid, SERVER_STOP_TIMEOUT_S)
            started[srv.region] = srv.pid is not None  # True: it had run before
            srv.pid = _start_server(info, srv)
            _save(info)
        for srv in info.servers.values():
            with steps.step(f"server {srv.region}") as s:
                _wait_healthy(srv, srv.pid if srv.region in started else None)
                if srv.region not in started:
                    s.done(f"pid {srv.pid} at {srv.url} (already running)")
                    continue
                verb = "restarted" if started[srv.region] else "started"
                info.actions.append(f"{verb} server {srv.region} (pid {srv.pid})")
                s.done(f"pid {srv.pid} at {srv.url}")

        with steps.step(f"namespace {DEFAULT_NAMESPACE}") as s:
            if _run(_ensure_default_namespace(info)):
                info.actions.append(f"created namespace {DEFAULT_NAMESPACE}")
                s.done(f"created (active in {info.regions[0]})")
            else:
                s.done("exists")
        _save(info)
    return info


def stack_down(
    state_dir: str | os.PathLike[str] | None = None, *, console: Console | None = None
) -> StackInfo | None:
    """Stop the region servers and PostgreSQL the state folder records.

    Only recorded PIDs are signalled, and only after /proc shows they still run
    our server (a PID the kernel gave to another program is left alone).
    Servers get SIGTERM, then SIGKILL after a grace period.

    Args:
        state_dir: The state folder (see :func:`resolve_state_dir`).
        console: Where to show progress; None keeps quiet.

    Returns:
        The stack with every PID cleared (``actions`` lists what was stopped),
        or None when the folder records no stack.
    """
    state = resolve_state_dir(state_dir)
    steps = _Steps(console)
    if not (state / STACK_FILE).exists():
        return None  # nothing recorded: do not create a state folder just to say so
    with _locked(state):
        info = _load(state)
        if info is None:
            return None
        for srv in info.servers.values():
            with steps.step(f"server {srv.region}") as s:
                if srv.pid is not None and _server_alive(info, srv):
                    how = _terminate(srv.pid, SERVER_STOP_TIMEOUT_S)
                    info.actions.append(f"stopped server {srv.region} (pid {srv.pid}, {how})")
                    s.done(f"pid {srv.pid} {how}")
                else:
                    if srv.pid is not None:
                        _reap(srv.pid)
                    s.done("not running")
                srv.pid = None
                _save(info)
        with steps.step("PostgreSQL") as s:
            pg = info.pg
            pid = pg.pid()
            if pid is not None:
                pg.stop()
                if pg.pid() is not None:
                    raise DevStackError(f"PostgreSQL (pid {pid}) did not stop; see {pg.log_file}")
                info.actions.append(f"stopped PostgreSQL (pid {pid})")
                s.done(f"pid {pid} stopped")
            else:
                s.done("not running")
            info.pg_pid = None
            _save(info)
    return info


def stack_status(state_dir: str | os.PathLike[str] | None = None) -> list[Component]:
    """Every recorded component with its PID and whether it is alive.

    Returns:
        One :class:`Component` per component, empty when the folder records no stack.
    """
    info = _load(resolve_state_dir(state_dir))
    if info is None:
        return []
    pg_pid = info.pg.pid()
    # postmaster.pid can outlive the postmaster; its PID then may name another program.
    pg_alive = (
        pg_pid is not None
        and _pid_alive(pg_pid)
        and (Path((_cmdline(pg_pid) or [""])[0]).name == "postgres")
    )
    rows = [
        Component(
            "postgres",
            pg_pid if pg_pid is not None else info.pg_pid,
            pg_alive,
            f"{LOOPBACK}:{info.pg_port}",
        )
    ]
    for srv in info.servers.values():
        alive = srv.pid is not None and _server_alive(info, srv)
        rows.append(Component(f"server {srv.region}", srv.pid, alive, srv.url))
    return rows


def load_stack(state_dir: str | os.PathLike[str] | None = None) -> StackInfo | None:
    """The stack recorded in the state folder, or None."""
    return _load(resolve_state_dir(state_dir))


# --------------------------------------------------------------------------- state file


def _load(state: Path) -> StackInfo | None:
    path = state / STACK_FILE
    if not path.exists():
        return None
    try:
        raw = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise DevStackError(f"cannot read {path}: {exc}") from exc
    return StackInfo.from_dict(state, raw)


def _save(info: StackInfo) -> None:
    path = info.state_dir / STACK_FILE
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(info.to_dict(), indent=2) + "\n")
    # Atomic replace: a crash mid-write must not lose the PIDs we are responsible for.
    tmp.replace(path)


@contextlib.contextmanager
def _locked(state: Path) -> Iterator[None]:
    _prepare_state_dir(state)
    with (state / ".lock").open("a") as fh:
        # Two `up`s at once (a demo and a test, say) take turns instead of racing.
        deadline = time.monotonic() + LOCK_TIMEOUT_S
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise DevStackError(
                        f"another `baton dev` command has held {state / '.lock'} for "
                        f"{LOCK_TIMEOUT_S:.0f} s; is it stuck?"
                    ) from None
                time.sleep(0.1)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _prepare_state_dir(state: Path) -> None:
    state.mkdir(parents=True, exist_ok=True)
    (state / "logs").mkdir(exist_ok=True)
    # PostgreSQL runs as the postgres user (we may be root): it must reach STATE/pg.
    state.chmod(0o755)
    if os.geteuid() == 0:
        for parent in state.parents:
            mode = parent.stat().st_mode
            if not mode & stat.S_IXOTH:
                raise DevStackError(
                    f"the postgres user cannot reach {state}: {parent} has mode "
                    f"{stat.filemode(mode)}; choose a state folder whose parents are "
                    "world-searchable (for example one under /tmp)"
                )


def _load_or_plan(state: Path, regions: Sequence[str] | None) -> StackInfo:
    info = _load(state)
    wanted = list(regions) if regions else (list(DEFAULT_REGIONS) if info is None else [])
    for r in wanted:
        if not _REGION_NAME.match(r):
            raise DevStackError(
                f"region name {r!r} is not valid: use lowercase letters, digits and '-'"
            )
    if len(set(wanted)) != len(wanted):
        raise DevStackError(f"region list {wanted} names a region twice")
    new = [r for r in wanted if info is None or r not in info.servers]
    if len(new) + (len(info.servers) if info else 0) >= FAILOVER_VERSION_INCREMENT:
        raise DevStackError(f"at most {FAILOVER_VERSION_INCREMENT - 1} regions are supported")
    ports = free_ports(len(new) + (1 if info is None else 0), LOOPBACK)
    if info is None:
        info = StackInfo(
            state_dir=state,
            config_path=state / CONFIG_FILE,
            pg_port=ports.pop(),
            pg_pid=None,
            servers={},
        )
        info.actions.append(f"created stack record {state / STACK_FILE}")
    next_version = max((s.initial_version for s in info.servers.values()), default=0) + 1
    for r in new:
        info.servers[r] = ServerInfo(
            region=r,
            port=ports.pop(0),
            initial_version=next_version,
            database=region_db_name(r),
            log_file=state / "logs" / f"server-{r}.log",
        )
        next_version += 1
    return info


def _write_config(info: StackInfo) -> bool:
    lines = [
        "# Written by `baton dev up`; rewritten on every up (edits are lost).",
        "[baton]",
        f"failover_version_increment = {info.failover_version_increment}",
        "",
        '# [kafka] bootstrap = "127.0.0.1:PORT" once the stack runs a broker:',
        "# until then replication between the regions is off.",
        "",
    ]
    for srv in info.servers.values():
        lines += [
            f'[regions."{srv.region}"]',
            f"url = {json.dumps(srv.url)}",
            f"dsn = {json.dumps(info.dsn(srv.region))}",
            f"initial_version = {srv.initial_version}",
            "",
        ]
    text = "\n".join(lines)
    path = info.config_path
    if path.exists() and path.read_text() == text:
        return False
    tmp = path.with_suffix(".toml.tmp")
    tmp.write_text(text)
    tmp.replace(path)
    return True


# --------------------------------------------------------------------------- processes


def _cmdline(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return [a.decode(errors="replace") for a in raw.split(b"\0") if a]


def _reap(pid: int) -> None:
    # Servers started by this process are our children: collect their exit status
    # so they do not linger as zombies that still "exist".
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def _pid_alive(pid: int) -> bool:
    _reap(pid)
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return False
    return fields[0] not in ("Z", "X")


def _server_argv(info: StackInfo, srv: ServerInfo) -> list[str]:
    return [
        sys.executable,
        "-m",
        "ops.cli",
        "--config",
        str(info.config_path),
        "server",
        "--region",
        srv.region,
    ]


def _server_alive(info: StackInfo, srv: ServerInfo) -> bool:
    """True when the recorded PID still runs this stack's server of this region."""
    if srv.pid is None or not _pid_alive(srv.pid):
        return False
    argv = _cmdline(srv.pid)
    if argv is None:
        return False
    want = _server_argv(info, srv)[1:]
    # Compare everything after the interpreter: the PID is ours only if it runs
    # exactly our command (a recycled PID runs something else).
    return argv[1:] == want


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((LOOPBACK, port))
        except OSError:
            return False
    return True


def _start_server(info: StackInfo, srv: ServerInfo) -> int:
    if not _port_free(srv.port):
        raise DevStackError(
            f"port {srv.port} of region {srv.region} is taken by another process; "
            f"stop it, or edit the port in {info.state_dir / STACK_FILE}"
        )
    assert srv.log_file is not None
    srv.log_file.parent.mkdir(parents=True, exist_ok=True)
    root = str(Path(ops.__file__).resolve().parent.parent)
    env = dict(os.environ)
    # The server imports the project's packages even when they are not installed.
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    env["PYTHONUNBUFFERED"] = "1"
    argv = _server_argv(info, srv)
    with srv.log_file.open("a") as log:
        log.write(f"--- {time.strftime('%Y-%m-%dT%H:%M:%S%z')} starting: {' '.join(argv)}\n")
    # posix_spawn rather than Popen: the server outlives this call, and a Popen
    # object dropped while its child runs warns (and would be reaped behind our back).
    return os.posix_spawn(
        sys.executable,
        argv,
        env,
        file_actions=[
            (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
            (
                os.POSIX_SPAWN_OPEN,
                1,
                str(srv.log_file),
                os.O_WRONLY | os.O_CREAT | os.O_APPEND,
                0o644,
            ),
            (os.POSIX_SPAWN_DUP2, 1, 2),
        ],
        setsid=True,  # its own session: a Ctrl-C in our terminal does not reach it
    )


def _log_tail(path: Path | None, lines: int = 25) -> str:
    if path is None or not path.exists():
        return "(no log)"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def _wait_healthy(
    srv: ServerInfo, pid: int | None, timeout: float = SERVER_READY_TIMEOUT_S
) -> None:
    deadline = time.monotonic() + timeout
    last = ""
    with httpx.Client(timeout=2.0) as http:
        while True:
            try:
                resp = http.get(f"{srv.url}/healthz")
                if resp.status_code == 200:
                    return
                last = f"HTTP {resp.status_code}: {resp.text[:200]}"
            except httpx.HTTPError as exc:
                last = repr(exc)
            if pid is not None and not _pid_alive(pid):
                raise DevStackError(
                    f"server {srv.region} (pid {pid}) exited during startup; "
                    f"last lines of {srv.log_file}:\n{_log_tail(srv.log_file)}"
                )
            if time.monotonic() > deadline:
                raise DevStackError(
                    f"server {srv.region} did not answer {srv.url}/healthz within "
                    f"{timeout:.0f} s (last: {last}); last lines of {srv.log_file}:\n"
                    f"{_log_tail(srv.log_file)}"
                )
            time.sleep(0.1)


def _terminate(pid: int, timeout: float) -> str:
    """SIGTERM ``pid``, SIGKILL it after ``timeout``; returns how it ended."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _pid_alive(pid):
            return "terminated"
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline and _pid_alive(pid):
        time.sleep(0.05)
    return "killed after SIGTERM timeout"


# --------------------------------------------------------------------------- async steps


def _run(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to completion, also when the caller already runs an event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    # Called from async code (a test or the demo): use a private loop in a thread.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


async def _migrate(dsn: str) -> list[str]:
    conn = await db.connect(dsn)
    try:
        return await migrate_up(conn)
    finally:
        await conn.close()


async def _ensure_default_namespace(info: StackInfo) -> bool:
    # Imported here: the SDK client is only needed for this step.
    from worker.client import Client
    from worker.errors import NamespaceAlreadyExistsError, NamespaceNotFoundError

    active = info.regions[0]
    # Created through the active region; the namespace reaches the others by
    # replication (not running yet in the local stack).
    async with await Client.connect(info.url(active), retry_for_s=10.0) as client:
        try:
            await client.describe_namespace(DEFAULT_NAMESPACE)
            return False
        except NamespaceNotFoundError:
            pass
        try:
            await client.create_namespace(
                DEFAULT_NAMESPACE,
                regions=info.regions,
                active_region=active,
                description="created by `baton dev up`",
            )
        except NamespaceAlreadyExistsError:
            return False  # another `up` or operator created it in between
        return True


# --------------------------------------------------------------------------- progress


class _Step:
    def __init__(self, steps: _Steps, name: str):
        self.steps = steps
        self.name = name
        self.note = ""

    def done(self, note: str) -> None:
        self.note = note


class _Steps:
    """One line per step: a spinner while it runs, then a check mark and a note."""

    def __init__(self, console: Console | None):
        self.console = console

    @contextlib.contextmanager
    def step(self, name: str) -> Iterator[_Step]:
        st = _Step(self, name)
        if self.console is None:
            yield st
            return
        try:
            with self.console.status(f"{name}…"):
                yield st
        except BaseException:
            self.console.print(Text.assemble(("✗ ", "red"), name))
            raise
        # Text, not markup: notes hold paths and messages that may contain brackets.
        self.console.print(Text.assemble(("✓ ", "green"), f"{name}: {st.note}"))
