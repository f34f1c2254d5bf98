"""A real single-node Apache Kafka broker for Baton's local stack and tests.

The broker is Apache Kafka 4.x in KRaft mode, with the broker and the
controller in one JVM, run straight from the jars on Maven Central: no
distribution tarball is needed. The steps are:

1. :func:`ensure_jars` has Maven copy ``org.apache.kafka:kafka_2.13`` and its
   runtime dependencies (see ``ops/kafka-pom.xml``) into a cache folder, once
   (``ops/kafka_jars.py``).
2. :func:`write_config` writes ``server.properties`` (and a log4j2 file) into a
   state folder, :func:`format_storage` formats its log directory once.
3. :func:`start` launches ``java ... kafka.Kafka server.properties`` as a
   detached child and returns its PID; :func:`wait_ready` waits until the
   broker answers a real Kafka metadata request; :func:`stop` ends that PID
   (``ops/kafka_process.py``, ``ops/kafka_admin.py``).

:class:`KafkaBroker` bundles these steps for one broker. For manual use::

    python -m ops.kafka jars
    python -m ops.kafka up --dir DIR --port 9092 --controller-port 9093
    python -m ops.kafka down --dir DIR

Version choice: Kafka 4.4.0, the newest 4.x that Maven Central serves here.
aiokafka 0.14 was checked against it (idempotent producer with acks=all,
consumer with manual offsets: assign, seek, commit, committed) and works, so
the 3.9.x fallback that Kafka 4.0's removal of old protocol versions (KIP-896)
might have forced is not needed. Kafka 4.x needs Java 17 or newer.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import os
import random
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from ops.kafka_admin import create_topics, wait_ready
from ops.kafka_jars import CACHE_ENV as CACHE_ENV  # re-export; not in __all__
from ops.kafka_jars import (
    KAFKA_VERSION,
    KafkaError,
    default_cache_root,
    ensure_jars,
    tail_text,
)
from ops.kafka_process import (
    FORMAT_LOG,
    KRAFT_LOG_DIR,
    LOG4J2_PROPERTIES,
    LOGS_DIR,
    META_PROPERTIES,
    PID_FILE,
    SERVER_PROPERTIES,
    is_kafka_process,
    is_running,
    java_command,
    read_pid,
    start,
    stop,
)

__all__ = [
    "KAFKA_VERSION",
    "KafkaBroker",
    "KafkaError",
    "create_topics",
    "default_cache_root",
    "ensure_jars",
    "format_storage",
    "free_port",
    "free_ports",
    "is_running",
    "main",
    "read_pid",
    "start",
    "stop",
    "wait_ready",
    "write_config",
]

_LOG4J2_TEMPLATE = Path(__file__).resolve().parent / "kafka-log4j2.properties"
_STORAGE_TOOL = "kafka.tools.StorageTool"


# -------------------------------------------------------------------------- ports


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port on ``host`` that nothing listens on right now.

    Args:
        host: Address to probe; the broker listens on loopback only.

    Returns:
        A port number chosen by the kernel.
    """
    return free_ports(1, host)[0]


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """Return ``count`` distinct free TCP ports on ``host``.

    The ports lie below the kernel's ephemeral range when there is room: a
    port from that range can be taken, while its listener is down (a broker
    being restarted), as the local port of any outgoing connection, even of a
    client reconnecting to that very listener. All sockets stay bound until
    every port is chosen, so no port is handed out twice.

    Args:
        count: How many ports.
        host: Address to probe.

    Returns:
        Distinct port numbers.
    """
    low, _high = ephemeral_range()
    first = max(1024, low - _LISTEN_SPAN)
    with contextlib.ExitStack() as stack:
        ports: list[int] = []
        tries = 0
        while len(ports) < count:
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            tries += 1
            if low - first < 1000 or tries > 50 * count:
                sock.bind((host, 0))  # no room below the range: let the kernel choose
            else:
                try:
                    sock.bind((host, random.randrange(first, low)))
                except OSError:
                    continue
            port = int(sock.getsockname()[1])
            if port not in ports:
                ports.append(port)
        return ports


_LISTEN_SPAN = 12_000


def ephemeral_range() -> tuple[int, int]:
    """The kernel's range of ephemeral ports (Linux's default when unreadable)."""
    try:
        text = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text()
        low, high = (int(part) for part in text.split())
    except (OSError, ValueError):
        return 32768, 60999
    return low, high


# ------------------------------------------------------------------------- config


def write_config(
    data_dir: Path,
    port: int,
    controller_port: int,
    *,
    host: str = "127.0.0.1",
    node_id: int = 1,
    overrides: Mapping[str, str] | None = None,
) -> Path:
    """Write ``server.properties`` and ``log4j2.properties`` into ``data_dir``.

    The broker is a single KRaft node (broker and controller in one process),
    listening on ``host`` only, with every internal topic at replication
    factor 1 and min ISR 1, and sized for a 2-core machine. Topic
    auto-creation keeps Kafka's default; Baton creates its topics explicitly
    with :func:`create_topics`.

    Args:
        data_dir: The broker's state folder (created if missing).
        port: Client (PLAINTEXT) port.
        controller_port: KRaft controller port.
        host: Listener address; keep it on loopback.
        node_id: KRaft node id.
        overrides: Extra or replacement broker settings.

    Returns:
        Path of the written ``server.properties``.
    """
    data_dir = data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / LOGS_DIR).mkdir(exist_ok=True)
    props: dict[str, str] = {
        "process.roles": "broker,controller",
        "node.id": str(node_id),
        # Dynamic quorum (KIP-853): formatted with --standalone, see format_storage.
        "controller.quorum.bootstrap.servers": f"{host}:{controller_port}",
        "listeners": f"PLAINTEXT://{host}:{port},CONTROLLER://{host}:{controller_port}",
        "advertised.listeners": f"PLAINTEXT://{host}:{port},CONTROLLER://{host}:{controller_port}",
        "inter.broker.listener.name": "PLAINTEXT",
        "controller.listener.names": "CONTROLLER",
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        "log.dirs": str(data_dir / KRAFT_LOG_DIR),
        # One node: every replicated thing must be satisfiable by one replica.
        "num.partitions": "1",
        "default.replication.factor": "1",
        "min.insync.replicas": "1",
        "offsets.topic.replication.factor": "1",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        # Fewer internal partitions: the defaults (50) cost seconds on first use.
        "offsets.topic.num.partitions": "4",
        "transaction.state.log.num.partitions": "4",
        "share.coordinator.state.topic.num.partitions": "4",
        # A 2-core machine shared with PostgreSQL and Baton itself.
        "num.network.threads": "2",
        "num.io.threads": "2",
        "background.threads": "2",
        "num.recovery.threads.per.data.dir": "1",
        "log.cleaner.threads": "1",
        # Small segments keep a test broker's disk use and recovery short.
        "log.segment.bytes": str(16 * 1024 * 1024),
        # Consumers joining a group should not wait the default 3 s.
        "group.initial.rebalance.delay.ms": "0",
    }
    if overrides:
        props.update(overrides)
    server_properties = data_dir / SERVER_PROPERTIES
    server_properties.write_text(
        "# Written by ops/kafka.py; rewritten on every write_config().\n"
        + "".join(f"{key}={_escape_property(value)}\n" for key, value in props.items())
    )
    shutil.copyfile(_LOG4J2_TEMPLATE, data_dir / LOG4J2_PROPERTIES)
    return server_properties


def _escape_property(value: str) -> str:
    # java.util.Properties treats backslashes as escapes (a Windows path or
    # a value with '\' would otherwise be mangled).
    return value.replace("\\", "\\\\")


def _random_cluster_id() -> str:
    # Same format as Kafka's Uuid.randomUuid().toString() (what `kafka-storage
    # random-uuid` prints): 16 random bytes, URL-safe base64, no padding.
    # Generating it here saves a JVM start. Kafka rejects ids starting with '-'
    # and the two reserved all-zero / metadata-topic ids, hence the loop.
    while True:
        raw = os.urandom(16)
        text = base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")
        if not text.startswith("-") and int.from_bytes(raw, "big") > 1:
            return text


def format_storage(
    data_dir: Path,
    lib_dir: Path | None = None,
    *,
    cluster_id: str | None = None,
    timeout: float = 120.0,
) -> bool:
    """Format the broker's KRaft log directory, unless it is already formatted.

    Runs Kafka's ``StorageTool format --standalone`` against the
    ``server.properties`` that :func:`write_config` wrote. A folder that
    already holds ``meta.properties`` is left alone, so this is safe before
    every start and a restarted broker keeps its data.

    Args:
        data_dir: The broker's state folder.
        lib_dir: Kafka jars; defaults to :func:`ensure_jars`.
        cluster_id: KRaft cluster id; a random one if omitted.
        timeout: Seconds to allow the tool.

    Returns:
        True if the folder was formatted now, False if it already was.

    Raises:
        KafkaError: ``server.properties`` is missing or the tool failed.
    """
    data_dir = data_dir.resolve()
    server_properties = data_dir / SERVER_PROPERTIES
    if not server_properties.is_file():
        raise KafkaError(f"{server_properties} is missing; call write_config() first")
    if (data_dir / KRAFT_LOG_DIR / META_PROPERTIES).is_file():
        return False
    lib = lib_dir if lib_dir is not None else ensure_jars()
    cmd = [
        *java_command(lib, data_dir, ["-Xmx256m"]),
        _STORAGE_TOOL,
        "format",
        "--standalone",
        "--ignore-formatted",
        "--cluster-id",
        cluster_id or _random_cluster_id(),
        "--config",
        str(server_properties),
    ]
    log_path = data_dir / FORMAT_LOG
    with log_path.open("wb") as log:
        try:
            rc = subprocess.run(
                cmd,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=data_dir,
                timeout=timeout,
                check=False,
            ).returncode
        except subprocess.TimeoutExpired:
            rc = None
    if rc != 0:
        what = "timed out" if rc is None else f"exited with {rc}"
        raise KafkaError(f"StorageTool format {what}:\n{tail_text(log_path, 30)}")
    return True


# ----------------------------------------------------------------------- process


# ------------------------------------------------------------------------ handle


@dataclass
class KafkaBroker:
    """One local broker: its state folder, ports and (once started) PID.

    Example::

        async with KafkaBroker.on_free_ports(tmp_path / "kafka") as broker:
            await create_topics(broker.bootstrap, ["events"], partitions=2)

    Attributes:
        data_dir: State folder (config, data, logs, PID file).
        port: Client (PLAINTEXT) port.
        controller_port: KRaft controller port.
        lib_dir: Kafka jars; resolved with :func:`ensure_jars` when None.
        host: Listener address (loopback).
        pid: PID of the running broker, set by :meth:`start`.
        overrides: Extra broker settings for :func:`write_config`.
    """

    data_dir: Path
    port: int
    controller_port: int
    lib_dir: Path | None = None
    host: str = "127.0.0.1"
    pid: int | None = None
    overrides: dict[str, str] = field(default_factory=dict)

    @classmethod
    def on_free_ports(cls, data_dir: Path, lib_dir: Path | None = None) -> KafkaBroker:
        """Make a broker handle on two currently free loopback ports.

        Args:
            data_dir: State folder.
            lib_dir: Kafka jars, or None to resolve them.

        Returns:
            A handle; nothing is started yet.
        """
        port, controller_port = free_ports(2)
        return cls(data_dir=data_dir, port=port, controller_port=controller_port, lib_dir=lib_dir)

    @property
    def bootstrap(self) -> str:
        """``host:port`` for Kafka clients' ``bootstrap_servers``."""
        return f"{self.host}:{self.port}"

    def prepare(self) -> None:
        """Resolve jars, write the config and format storage (if not yet)."""
        if self.lib_dir is None:
            self.lib_dir = ensure_jars()
        write_config(
            self.data_dir,
            self.port,
            self.controller_port,
            host=self.host,
            overrides=self.overrides,
        )
        format_storage(self.data_dir, self.lib_dir)

    def start(self) -> int:
        """Launch the broker (see :func:`start`).

        Returns:
            The broker's PID.
        """
        self.pid = start(self.data_dir, self.lib_dir)
        return self.pid

    async def wait_ready(self, timeout: float = 60.0) -> None:
        """Wait until the broker answers (see :func:`wait_ready`).

        Args:
            timeout: Seconds to wait.
        """
        await wait_ready(self.bootstrap, timeout, pid=self.pid, data_dir=self.data_dir)

    async def up(self, timeout: float = 60.0) -> int:
        """Prepare, start and wait for the broker; stop it again if it fails.

        Args:
            timeout: Seconds to wait for readiness.

        Returns:
            The broker's PID.
        """
        # Maven and the format tool block for seconds; keep the loop free.
        await asyncio.to_thread(self.prepare)
        pid = self.start()
        try:
            await self.wait_ready(timeout)
        except BaseException:
            stop(pid)
            raise
        return pid

    def stop(self, timeout: float = 30.0) -> bool:
        """Stop the broker this handle started (see :func:`stop`).

        Args:
            timeout: Seconds to wait after SIGTERM before SIGKILL.

        Returns:
            True if it was running.
        """
        if self.pid is None:
            return False
        stopped = stop(self.pid, timeout)
        self.pid = None
        return stopped

    async def __aenter__(self) -> KafkaBroker:
        await self.up()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await asyncio.to_thread(self.stop)


# --------------------------------------------------------------------------- CLI


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m ops.kafka {jars,up,down}``.

    Args:
        argv: Arguments without the program name; ``sys.argv[1:]`` if None.

    Returns:
        Process exit code.
    """
    parser = argparse.ArgumentParser(
        prog="python -m ops.kafka", description="Run a local single-node Kafka broker."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("jars", help="resolve the Kafka jars into the cache and print the folder")
    up = sub.add_parser("up", help="start a broker in DIR and wait until it answers")
    up.add_argument("--dir", type=Path, required=True, help="state folder")
    up.add_argument("--port", type=int, default=9092, help="client port (default 9092)")
    up.add_argument(
        "--controller-port", type=int, default=9093, help="controller port (default 9093)"
    )
    up.add_argument("--timeout", type=float, default=90.0, help="seconds to wait for readiness")
    down = sub.add_parser("down", help="stop the broker whose PID is in DIR/kafka.pid")
    down.add_argument("--dir", type=Path, required=True, help="state folder")
    down.add_argument("--timeout", type=float, default=30.0, help="seconds before SIGKILL")
    args = parser.parse_args(argv)

    try:
        if args.command == "jars":
            print(ensure_jars())
            return 0
        if args.command == "up":
            data_dir: Path = args.dir.resolve()
            old = read_pid(data_dir)
            if old is not None and is_running(old) and is_kafka_process(old):
                print(f"already running: PID {old}", file=sys.stderr)
                return 1
            broker = KafkaBroker(data_dir, args.port, args.controller_port)
            t0 = time.monotonic()
            pid = asyncio.run(broker.up(args.timeout))
            print(
                f"kafka {KAFKA_VERSION} ready at {broker.bootstrap}, PID {pid} "
                f"({time.monotonic() - t0:.1f}s)"
            )
            return 0
        # down
        data_dir = args.dir.resolve()
        pid_or_none = read_pid(data_dir)
        if pid_or_none is None or not is_running(pid_or_none):
            print("not running")
            (data_dir / PID_FILE).unlink(missing_ok=True)
            return 0
        if not is_kafka_process(pid_or_none):
            print(
                f"PID {pid_or_none} is not a Kafka broker; stale PID file left alone",
                file=sys.stderr,
            )
            return 1
        stop(pid_or_none, args.timeout)
        (data_dir / PID_FILE).unlink(missing_ok=True)
        print(f"stopped PID {pid_or_none}")
        return 0
    except KafkaError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
