"""The local stack's record: its settings, ``stack.json`` and ``baton.toml``.

:class:`StackInfo` is what ``STATE/stack.json`` holds (ports, PIDs, paths of
PostgreSQL, the Kafka broker and every region server); this module reads and
writes it under the state folder's lock, plans ports for new components and
writes the Baton config the servers read. ``ops.devstack`` re-exports the
public names.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import stat
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ops import kafka
from ops.pg import PgCluster, region_db_name
from replication.publisher import topic_for
from worker import _config_file

__all__ = [
    "CONFIG_FILE",
    "DEFAULT_REGIONS",
    "HOME_ENV",
    "REPLICATION_PARTITIONS",
    "STACK_FILE",
    "Component",
    "DevStackError",
    "KafkaInfo",
    "ServerInfo",
    "StackInfo",
    "load_info",
    "load_or_plan",
    "locked",
    "replication_topic",
    "save_info",
    "write_config",
]

#: Environment variable naming the state folder, and the config file in it: the
#: names the SDK's and the CLI's config lookup use (worker/_config_file.py).
HOME_ENV = _config_file.HOME_ENV
DEFAULT_STATE_DIR = Path(".baton")
DEFAULT_REGIONS: tuple[str, ...] = ("region-a", "region-b")
FAILOVER_VERSION_INCREMENT = 100
DEFAULT_NAMESPACE = "default"
STACK_FILE = "stack.json"
CONFIG_FILE = _config_file.CONFIG_NAME
LOOPBACK = "127.0.0.1"

#: How long a server gets to answer /healthz after it is started.
SERVER_READY_TIMEOUT_S = 45.0
#: How long a server gets to exit after SIGTERM before it is killed.
SERVER_STOP_TIMEOUT_S = 15.0
#: How long a `baton dev` command waits for another one on the same state folder.
LOCK_TIMEOUT_S = 180.0
#: Prefix of the per-region replication topics.
REPLICATION_TOPIC_PREFIX = "baton.replication."
#: Partitions of each replication topic (key = namespace/workflow id keeps order).
REPLICATION_PARTITIONS = 8
# What ops.kafka.write_config writes into the broker's state folder; the broker
# runs `... kafka.Kafka <that file>`, which is how /proc tells it is ours.
KAFKA_MAIN_CLASS = "kafka.Kafka"
KAFKA_SERVER_PROPERTIES = "server.properties"

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
        return self.data_dir.resolve() / KAFKA_SERVER_PROPERTIES

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


# --------------------------------------------------------------------------- stack.json


def load_info(state: Path) -> StackInfo | None:
    path = state / STACK_FILE
    if not path.exists():
        return None
    try:
        raw = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise DevStackError(f"cannot read {path}: {exc}") from exc
    return StackInfo.from_dict(state, raw)


def save_info(info: StackInfo) -> None:
    path = info.state_dir / STACK_FILE
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(info.to_dict(), indent=2) + "\n")
    # Atomic replace: a crash mid-write must not lose the PIDs we are responsible for.
    tmp.replace(path)


@contextlib.contextmanager
def locked(state: Path) -> Iterator[None]:
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


def load_or_plan(state: Path, regions: Sequence[str] | None) -> StackInfo:
    info = load_info(state)
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


def write_config(info: StackInfo) -> bool:
    assert info.kafka is not None  # planned by load_or_plan
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
