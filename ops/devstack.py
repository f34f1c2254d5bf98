"""The local development stack: PostgreSQL, a Kafka broker and one ``baton server`` per region.

Everything the stack needs lives in one state folder (``--state-dir``, else
``$BATON_HOME``, else ``.baton`` under the current directory)::

    STATE/stack.json        ports, PIDs and paths (the only record of what runs)
    STATE/baton.toml        the Baton config every command reads
    STATE/pg/               the PostgreSQL cluster (one database per region)
    STATE/postgres.log      its log
    STATE/kafka/            the Kafka broker (ops.kafka): server.properties, data/,
                            logs/server.log, kafka.out (the JVM's own output)
    STATE/logs/server-R.log each region server's output

The broker is a single-node Apache Kafka in KRaft mode run from Maven-resolved
jars (cached outside the state folder, see :func:`ops.kafka.ensure_jars`). It
carries one replication topic per region, ``baton.replication.<region>``.

:func:`stack_up` is idempotent: it starts what is not running and leaves the
rest alone. :func:`stack_down` stops exactly the PIDs ``stack.json`` records,
after checking that each still runs our command line, so a recycled PID is
never signalled.
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

# aiokafka ships no type information: see the mypy overrides in pyproject.toml.
from aiokafka.admin import AIOKafkaAdminClient
from rich.console import Console
from rich.text import Text

import ops
from ops import kafka
from ops.pg import PgCluster, region_db_name
from replication.publisher import topic_for
from store import db
from store.migrations import migrate_up

__all__ = [
    "DEFAULT_REGIONS",
    "HOME_ENV",
    "REPLICATION_PARTITIONS",
    "Component",
    "DevStackError",
    "KafkaInfo",
    "ServerInfo",
    "StackInfo",
    "load_stack",
    "replication_topic",
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
#: How long the Kafka broker gets to answer a metadata request after it is started.
KAFKA_READY_TIMEOUT_S = 90.0
#: How long the Kafka broker gets to exit after SIGTERM before it is killed.
KAFKA_STOP_TIMEOUT_S = 30.0
#: How long topic creation (until every partition has a leader) may take.
KAFKA_TOPICS_TIMEOUT_S = 60.0
#: Prefix of the per-region replication topics.
REPLICATION_TOPIC_PREFIX = "baton.replication."
#: Partitions of each replication topic (key = namespace/workflow id keeps order).
REPLICATION_PARTITIONS = 8
# What ops.kafka.write_config writes into the broker's state folder; the broker
# runs `... kafka.Kafka <that file>`, which is how /proc tells it is ours.
_KAFKA_MAIN_CLASS = "kafka.Kafka"
_KAFKA_SERVER_PROPERTIES = "server.properties"

# Region names become database names and TOML keys: keep them plain.
_REGION_NAME = re.compile(r"^[a-z][a-z0-9-]{0,40}$")


class DevStackError(RuntimeError):
    """The local stack could not be brought up, inspected or stopped."""

    code = "DEV_STACK"


def replication_topic(region: str) -> str:
    """The Kafka topic that carries ``region``'s replication stream."""
    return topic_for(region)


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
class KafkaInfo:
    """The stack's Kafka broker (one node, broker and controller in one JVM)."""

    port: int
    """Loopback port of the client (PLAINTEXT) listener."""
    controller_port: int
    """Loopback port of the KRaft controller listener."""
    data_dir: Path
    """The broker's state folder (``STATE/kafka``)."""
    pid: int | None = None
    """PID of the broker as last started (None: never started or stopped)."""

    @property
    def bootstrap(self) -> str:
        """``host:port`` for Kafka clients (``[kafka] bootstrap`` in the config)."""
        return f"{LOOPBACK}:{self.port}"

    @property
    def server_properties(self) -> Path:
        """The broker's config file, as its command line names it."""
        return self.data_dir.resolve() / _KAFKA_SERVER_PROPERTIES

    @property
    def log_file(self) -> Path:
        """The broker's log4j2 log."""
        return self.data_dir / "logs" / "server.log"


@dataclass
class Component:
    """One row of :func:`stack_status`."""

    component: str
    """``postgres``, ``kafka`` or ``server REGION``."""
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
    kafka: KafkaInfo | None = None
    """The Kafka broker (None only in a record written before Kafka joined the stack;
    the next :func:`stack_up` adds it)."""
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

    @property
    def kafka_bootstrap(self) -> str | None:
        """``host:port`` of the Kafka broker (None if the record has none yet)."""
        return self.kafka.bootstrap if self.kafka else None

    @property
    def replication_topics(self) -> list[str]:
        """The replication topic of every region, in config order."""
        return [replication_topic(r) for r in self.servers]

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
            "kafka": (
                {
                    "port": self.kafka.port,
                    "controller_port": self.kafka.controller_port,
                    "bootstrap": self.kafka.bootstrap,
                    "pid": self.kafka.pid,
                    "data_dir": str(self.kafka.data_dir),
                    "log_file": str(self.kafka.log_file),
                    "topics": self.replication_topics,
                    "partitions": REPLICATION_PARTITIONS,
                }
                if self.kafka
                else None
            ),
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
            raw_kafka = raw.get("kafka")
            kafka_info = (
                KafkaInfo(
                    port=int(raw_kafka["port"]),
                    controller_port=int(raw_kafka["controller_port"]),
                    data_dir=state_dir / "kafka",
                    pid=raw_kafka.get("pid"),
                )
                if raw_kafka is not None
                else None
            )
            return cls(
                state_dir=state_dir,
                config_path=state_dir / CONFIG_FILE,
                pg_port=int(raw["postgres"]["port"]),
                pg_pid=raw["postgres"].get("pid"),
                servers=servers,
                failover_version_increment=int(
                    raw.get("failover_version_increment", FAILOVER_VERSION_INCREMENT)
                ),
                kafka=kafka_info,
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

        _kafka_up(info, steps)

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
    """Stop the region servers, the Kafka broker and PostgreSQL the state folder records.

    Servers go first (they use the other two), then Kafka, then PostgreSQL.
    Only recorded PIDs are signalled, and only after /proc shows they still run
    our server or broker (a PID the kernel gave to another program is left
    alone). Servers and the broker get SIGTERM, then SIGKILL after a grace period.

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
        if info.kafka is not None:
            with steps.step("Kafka broker") as s:
                k = info.kafka
                kpid = _kafka_pid(k)
                if kpid is not None:
                    try:
                        kafka.stop(kpid, KAFKA_STOP_TIMEOUT_S)
                    except kafka.KafkaError as exc:
                        raise DevStackError(
                            f"Kafka broker (pid {kpid}) did not stop: {exc}"
                        ) from exc
                    info.actions.append(f"stopped Kafka broker (pid {kpid})")
                    s.done(f"pid {kpid} stopped")
                else:
                    if k.pid is not None:
                        _reap(k.pid)
                    s.done("not running")
                k.pid = None
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
    k = info.kafka
    kpid = _kafka_pid(k) if k is not None else None
    rows.append(
        Component(
            "kafka",
            kpid if kpid is not None else (k.pid if k else None),
            kpid is not None,
            k.bootstrap if k else "not set up yet (run `baton dev up`)",
        )
    )
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
    need_kafka = info is None or info.kafka is None
    ports = _new_ports(
        len(new) + (1 if info is None else 0) + (2 if need_kafka else 0),
        _recorded_ports(info) if info else set(),
    )
    if info is None:
        info = StackInfo(
            state_dir=state,
            config_path=state / CONFIG_FILE,
            pg_port=ports.pop(),
            pg_pid=None,
            servers={},
        )
        info.actions.append(f"created stack record {state / STACK_FILE}")
    if info.kafka is None:
        # Chosen once and kept: the config and every client name this address.
        info.kafka = KafkaInfo(
            port=ports.pop(), controller_port=ports.pop(), data_dir=state / "kafka"
        )
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


def _recorded_ports(info: StackInfo) -> set[int]:
    ports = {info.pg_port, *(s.port for s in info.servers.values())}
    if info.kafka is not None:
        ports |= {info.kafka.port, info.kafka.controller_port}
    return ports


def _new_ports(count: int, taken: set[int]) -> list[int]:
    """``count`` distinct free loopback ports, none of them already recorded.

    A recorded port may be free right now only because its component is
    stopped; handing it out again would make two components collide later.
    """
    ports: list[int] = []
    while len(ports) < count:
        for port in kafka.free_ports(count - len(ports), LOOPBACK):
            if port not in taken and port not in ports:
                ports.append(port)
    return ports


def _write_config(info: StackInfo) -> bool:
    assert info.kafka is not None  # planned by _load_or_plan
    lines = [
        "# Written by `baton dev up`; rewritten on every up (edits are lost).",
        "[baton]",
        f"failover_version_increment = {info.failover_version_increment}",
        "",
        "# The stack's Kafka broker; topics baton.replication.<region>.",
        "[kafka]",
        f"bootstrap = {json.dumps(info.kafka.bootstrap)}",
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


# --------------------------------------------------------------------------- Kafka


def _kafka_runs(k: KafkaInfo, pid: int) -> bool:
    """True when ``pid`` runs this stack's broker (``java ... kafka.Kafka STATE/kafka/...``)."""
    if not _pid_alive(pid):
        return False
    argv = _cmdline(pid)
    # The config path names this state folder: a recycled PID, or another
    # stack's broker, runs something else.
    return argv is not None and argv[-2:] == [_KAFKA_MAIN_CLASS, str(k.server_properties)]


def _kafka_pid(k: KafkaInfo) -> int | None:
    """The PID of this stack's running broker, or None.

    ``stack.json`` first; the broker's own PID file (written by
    :func:`ops.kafka.start` before ``stack.json`` is saved) covers an ``up``
    that died in between.
    """
    for pid in (k.pid, kafka.read_pid(k.data_dir)):
        if pid is not None and _kafka_runs(k, pid):
            return pid
    return None


def _kafka_up(info: StackInfo, steps: _Steps) -> None:
    """Resolve the jars, start the broker if it is not running, create the topics."""
    k = info.kafka
    assert k is not None  # planned by _load_or_plan
    # ensure_jars caches into <root>/kafka-<version>/lib; say so when Maven must run.
    jar = (
        kafka.default_cache_root()
        / f"kafka-{kafka.KAFKA_VERSION}"
        / "lib"
        / f"kafka_2.13-{kafka.KAFKA_VERSION}.jar"
    )
    cached = jar.is_file()
    fetching = f"Kafka jars: Maven fetches Kafka {kafka.KAFKA_VERSION} (first run only)…"
    with steps.step("Kafka jars", None if cached else fetching) as s:
        t0 = time.monotonic()
        try:
            lib = kafka.ensure_jars()
        except kafka.KafkaError as exc:
            raise DevStackError(f"the Kafka jars could not be resolved: {exc}") from exc
        fetched = "" if cached else f", fetched with Maven in {time.monotonic() - t0:.0f} s"
        s.done(f"Kafka {kafka.KAFKA_VERSION} in {lib}{fetched}")

    with steps.step("Kafka broker") as s:
        pid = _kafka_pid(k)
        if pid is not None:
            k.pid = pid
            try:
                # Running already: only make sure it answers.
                _run(kafka.wait_ready(k.bootstrap, KAFKA_READY_TIMEOUT_S, pid=pid))
            except kafka.KafkaError as exc:
                raise DevStackError(
                    f"the Kafka broker (pid {pid}) runs but does not answer: {exc}; "
                    f"see {k.log_file}, or `baton dev down` and up again"
                ) from exc
            s.done(f"pid {pid} at {k.bootstrap} (already running)")
        else:
            had_run = k.pid is not None
            if k.pid is not None:
                _reap(k.pid)
            for name, port in (("client", k.port), ("controller", k.controller_port)):
                if not _port_free(port):
                    raise DevStackError(
                        f"Kafka {name} port {port} is taken by another process; "
                        f"stop it, or edit the port in {info.state_dir / STACK_FILE}"
                    )
            try:
                kafka.write_config(k.data_dir, k.port, k.controller_port, host=LOOPBACK)
                if kafka.format_storage(k.data_dir, lib):
                    info.actions.append(f"formatted Kafka storage in {k.data_dir}")
                k.pid = kafka.start(k.data_dir, lib)
            except kafka.KafkaError as exc:
                raise DevStackError(f"the Kafka broker did not start: {exc}") from exc
            _save(info)
            try:
                _run(
                    kafka.wait_ready(
                        k.bootstrap, KAFKA_READY_TIMEOUT_S, pid=k.pid, data_dir=k.data_dir
                    )
                )
            except BaseException as exc:
                # Leave nothing half-started behind (a later up starts it afresh).
                kafka.stop(k.pid, KAFKA_STOP_TIMEOUT_S)
                k.pid = None
                _save(info)
                if isinstance(exc, kafka.KafkaError):
                    raise DevStackError(f"the Kafka broker did not become ready: {exc}") from exc
                raise
            info.actions.append(
                f"{'restarted' if had_run else 'started'} Kafka broker (pid {k.pid})"
            )
            s.done(f"pid {k.pid} at {k.bootstrap}")
        _save(info)

    with steps.step("Kafka topics") as s:
        topics = info.replication_topics
        try:
            created = _run(_ensure_topics(k.bootstrap, topics))
        except Exception as exc:  # ops.kafka.KafkaError or an aiokafka error
            raise DevStackError(f"the replication topics could not be created: {exc}") from exc
        if created:
            info.actions.append(
                f"created Kafka topic {created[0]} ({REPLICATION_PARTITIONS} partitions)"
                if len(created) == 1
                else f"created Kafka topics {', '.join(created)} "
                f"({REPLICATION_PARTITIONS} partitions each)"
            )
        s.done(
            f"{', '.join(topics)} ({REPLICATION_PARTITIONS} partitions"
            + (f"; created {len(created)})" if created else ")")
        )


async def _ensure_topics(bootstrap: str, topics: list[str]) -> list[str]:
    """Create the missing ``topics``; returns the ones created now."""
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap, request_timeout_ms=int(KAFKA_TOPICS_TIMEOUT_S * 1000)
    )
    try:
        await admin.start()
        existing = set(await admin.list_topics())
    finally:
        await admin.close()
    missing = [t for t in topics if t not in existing]
    # For every topic, not only the missing ones: it also waits until each
    # partition has a leader (a freshly restarted broker may not have elected
    # them yet). An existing topic is left as it is.
    await kafka.create_topics(
        bootstrap, topics, REPLICATION_PARTITIONS, timeout=KAFKA_TOPICS_TIMEOUT_S
    )
    return missing


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
    def step(self, name: str, running: str | None = None) -> Iterator[_Step]:
        """One step; ``running`` replaces ``name…`` as the spinner's text."""
        st = _Step(self, name)
        if self.console is None:
            yield st
            return
        try:
            with self.console.status(running or f"{name}…"):
                yield st
        except BaseException:
            self.console.print(Text.assemble(("✗ ", "red"), name))
            raise
        # Text, not markup: notes hold paths and messages that may contain brackets.
        self.console.print(Text.assemble(("✓ ", "green"), f"{name}: {st.note}"))
