"""A real single-node Apache Kafka broker for Baton's local stack and tests.

The broker is Apache Kafka 4.x in KRaft mode, with the broker and the
controller in one JVM, run straight from the jars on Maven Central: no
distribution tarball is needed. The steps are:

1. :func:`ensure_jars` has Maven copy ``org.apache.kafka:kafka_2.13`` and its
   runtime dependencies (see ``ops/kafka-pom.xml``) into a cache folder, once.
2. :func:`write_config` writes ``server.properties`` (and a log4j2 file) into a
   state folder, :func:`format_storage` formats its log directory once.
3. :func:`start` launches ``java ... kafka.Kafka server.properties`` as a
   detached child and returns its PID; :func:`wait_ready` waits until the
   broker answers a real Kafka metadata request; :func:`stop` ends that PID.

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
import fcntl
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

# aiokafka ships no type information (no py.typed): see the mypy overrides.
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError, for_code

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

#: Kafka release the broker runs; kept equal to the default in ops/kafka-pom.xml.
KAFKA_VERSION = "4.4.0"

#: Environment variable that overrides the default jar cache root.
CACHE_ENV = "BATON_KAFKA_CACHE"

_HERE = Path(__file__).resolve().parent
_POM = _HERE / "kafka-pom.xml"
_LOG4J2_TEMPLATE = _HERE / "kafka-log4j2.properties"

# Names inside a broker's state folder. One folder holds everything a broker
# owns, so deleting it (e.g. pytest's tmp_path) leaves nothing behind.
_SERVER_PROPERTIES = "server.properties"
_LOG4J2_PROPERTIES = "log4j2.properties"
_KRAFT_LOG_DIR = "data"  # log.dirs: topic partitions and the metadata log
_LOGS_DIR = "logs"  # log4j2 output (server.log)
_STDOUT_LOG = "kafka.out"  # the JVM's own stdout/stderr (crashes, GC errors)
_FORMAT_LOG = "format.log"
_PID_FILE = "kafka.pid"
_META_PROPERTIES = "meta.properties"

_COMPLETE_MARKER = ".complete"
_MAIN_CLASS = "kafka.Kafka"
_STORAGE_TOOL = "kafka.tools.StorageTool"

# Popen handles of the brokers this process started, by PID. Holding them
# keeps Popen.__del__ from warning "subprocess is still running" (an error under
# pytest's filterwarnings=error) and lets stop() reap the child it ends.
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


class KafkaError(RuntimeError):
    """Raised when the jars cannot be resolved or the broker does not come up."""


# --------------------------------------------------------------------------- jars


def default_cache_root() -> Path:
    """Return the folder under which ``kafka-<version>/lib`` is cached.

    Returns:
        ``$BATON_KAFKA_CACHE`` if set, else ``~/.cache/baton``.
    """
    env = os.environ.get(CACHE_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "baton"


def ensure_jars(cache_root: Path | None = None, *, version: str = KAFKA_VERSION) -> Path:
    """Resolve the Kafka broker jars into a cache folder, running Maven only once.

    The jars go to ``<cache_root>/kafka-<version>/lib``. A marker file is
    written only after Maven succeeded, so an interrupted download is redone
    rather than trusted; later calls that find the marker return at once. A
    file lock keeps concurrent callers (e.g. parallel test processes) from
    running Maven twice into the same folder.

    Args:
        cache_root: Folder that holds ``kafka-<version>``; defaults to
            :func:`default_cache_root`.
        version: Kafka version to resolve (``ops/kafka-pom.xml`` is written
            for 4.x).

    Returns:
        The folder holding the jars, for ``java -cp "<lib>/*"``.

    Raises:
        KafkaError: Maven is missing or failed; the message ends with the tail
            of Maven's log.
    """
    home = (cache_root if cache_root is not None else default_cache_root()) / f"kafka-{version}"
    lib = home / "lib"
    marker = home / _COMPLETE_MARKER
    if _jars_complete(lib, marker, version):
        return lib

    home.mkdir(parents=True, exist_ok=True)
    with _file_lock(home / ".lock"):
        # Another process may have finished the copy while we waited.
        if _jars_complete(lib, marker, version):
            return lib
        mvn = shutil.which("mvn")
        if mvn is None:
            raise KafkaError("Maven ('mvn') is not on PATH; it is needed once to fetch Kafka jars")
        partial = home / "lib.partial"
        shutil.rmtree(partial, ignore_errors=True)
        log_path = home / "maven.log"
        cmd = [
            mvn,
            "-B",  # batch mode: no colours, no prompts
            "-ntp",  # no transfer progress: keeps the log readable
            "-Dstyle.color=never",
            "-f",
            str(_POM),
            "dependency:copy-dependencies",
            "-DincludeScope=runtime",
            f"-DoutputDirectory={partial}",
            f"-Dkafka.version={version}",
        ]
        with log_path.open("wb") as log:
            try:
                rc = subprocess.run(
                    cmd,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    cwd=home,
                    timeout=900,
                    check=False,
                ).returncode
            except subprocess.TimeoutExpired:
                rc = None
        if rc != 0 or not (partial / f"kafka_2.13-{version}.jar").is_file():
            what = "timed out" if rc is None else f"exited with {rc}"
            raise KafkaError(
                f"Maven {what} resolving org.apache.kafka:kafka_2.13:{version} "
                f"(log: {log_path}):\n{_tail(log_path, 30)}"
            )
        shutil.rmtree(lib, ignore_errors=True)
        partial.rename(lib)
        jars = sorted(p.name for p in lib.glob("*.jar"))
        marker.write_text(f"kafka {version}\n" + "".join(f"{j}\n" for j in jars))
    return lib


def _jars_complete(lib: Path, marker: Path, version: str) -> bool:
    return marker.is_file() and (lib / f"kafka_2.13-{version}.jar").is_file()


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    with path.open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


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

    All sockets stay bound until every port is chosen, so the kernel cannot
    hand out the same port twice (two separate :func:`free_port` calls could).

    Args:
        count: How many ports.
        host: Address to probe.

    Returns:
        Distinct port numbers.
    """
    with contextlib.ExitStack() as stack:
        ports = []
        for _ in range(count):
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.bind((host, 0))
            ports.append(int(sock.getsockname()[1]))
        return ports


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
    (data_dir / _LOGS_DIR).mkdir(exist_ok=True)
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
        "log.dirs": str(data_dir / _KRAFT_LOG_DIR),
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
    server_properties = data_dir / _SERVER_PROPERTIES
    server_properties.write_text(
        "# Written by ops/kafka.py; rewritten on every write_config().\n"
        + "".join(f"{key}={_escape_property(value)}\n" for key, value in props.items())
    )
    shutil.copyfile(_LOG4J2_TEMPLATE, data_dir / _LOG4J2_PROPERTIES)
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
    server_properties = data_dir / _SERVER_PROPERTIES
    if not server_properties.is_file():
        raise KafkaError(f"{server_properties} is missing; call write_config() first")
    if (data_dir / _KRAFT_LOG_DIR / _META_PROPERTIES).is_file():
        return False
    lib = lib_dir if lib_dir is not None else ensure_jars()
    cmd = [
        *_java_command(lib, data_dir, ["-Xmx256m"]),
        _STORAGE_TOOL,
        "format",
        "--standalone",
        "--ignore-formatted",
        "--cluster-id",
        cluster_id or _random_cluster_id(),
        "--config",
        str(server_properties),
    ]
    log_path = data_dir / _FORMAT_LOG
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
        raise KafkaError(f"StorageTool format {what}:\n{_tail(log_path, 30)}")
    return True


# ----------------------------------------------------------------------- process


def _java() -> str:
    java_home = os.environ.get("JAVA_HOME")
    if java_home and (Path(java_home) / "bin" / "java").is_file():
        return str(Path(java_home) / "bin" / "java")
    java = shutil.which("java")
    if java is None:
        raise KafkaError("no 'java' on PATH (and JAVA_HOME unset); Kafka 4.x needs Java 17+")
    return java


def _java_command(lib: Path, data_dir: Path, jvm_args: Sequence[str]) -> list[str]:
    return [
        _java(),
        *jvm_args,
        "-Djava.awt.headless=true",
        f"-Dkafka.logs.dir={data_dir / _LOGS_DIR}",
        f"-Dlog4j2.configurationFile={data_dir / _LOG4J2_PROPERTIES}",
        "-cp",
        # The JVM expands "<dir>/*" itself: no shell, and no long jar list.
        f"{lib}{os.sep}*",
    ]


def start(
    data_dir: Path,
    lib_dir: Path | None = None,
    *,
    heap_max: str = "512m",
    heap_min: str = "256m",
    jvm_args: Sequence[str] = (),
) -> int:
    """Launch the broker as a detached child process and return its PID.

    The JVM runs in a new session (so a terminal's Ctrl-C or the end of the
    starting process does not reach it), with stdout/stderr in
    ``<data_dir>/kafka.out`` and log4j2 output in ``<data_dir>/logs/``. The
    PID is also written to ``<data_dir>/kafka.pid``. This returns at once;
    use :func:`wait_ready` before talking to the broker.

    Args:
        data_dir: State folder prepared by :func:`write_config` and
            :func:`format_storage`.
        lib_dir: Kafka jars; defaults to :func:`ensure_jars`.
        heap_max: ``-Xmx`` value.
        heap_min: ``-Xms`` value.
        jvm_args: Extra JVM options.

    Returns:
        The broker's PID.

    Raises:
        KafkaError: The state folder is not prepared or Java is missing.
    """
    data_dir = data_dir.resolve()
    server_properties = data_dir / _SERVER_PROPERTIES
    if not server_properties.is_file():
        raise KafkaError(f"{server_properties} is missing; call write_config() first")
    if not (data_dir / _KRAFT_LOG_DIR / _META_PROPERTIES).is_file():
        raise KafkaError(f"{data_dir / _KRAFT_LOG_DIR} is not formatted; call format_storage()")
    lib = lib_dir if lib_dir is not None else ensure_jars()
    cmd = [
        *_java_command(
            lib,
            data_dir,
            [
                f"-Xmx{heap_max}",
                f"-Xms{heap_min}",
                "-XX:+UseG1GC",
                "-XX:MaxGCPauseMillis=20",
                # A broker that ran out of heap is useless; let it die visibly.
                "-XX:+ExitOnOutOfMemoryError",
                *jvm_args,
            ],
        ),
        _MAIN_CLASS,
        str(server_properties),
    ]
    with (data_dir / _STDOUT_LOG).open("ab") as out:
        proc = subprocess.Popen(
            cmd,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=data_dir,
            start_new_session=True,
            close_fds=True,
        )
    _CHILDREN[proc.pid] = proc
    (data_dir / _PID_FILE).write_text(f"{proc.pid}\n")
    return proc.pid


def read_pid(data_dir: Path) -> int | None:
    """Return the PID recorded by :func:`start` in ``data_dir``, if any.

    Args:
        data_dir: The broker's state folder.

    Returns:
        The PID, or None if no (readable) PID file exists.
    """
    try:
        return int((data_dir / _PID_FILE).read_text().strip())
    except (OSError, ValueError):
        return None


def is_running(pid: int) -> bool:
    """Tell whether process ``pid`` is alive (a zombie counts as ended).

    Args:
        pid: Process id.

    Returns:
        True while the process runs.
    """
    proc = _CHILDREN.get(pid)
    if proc is not None:
        # poll() also reaps our own child, so it never lingers as a zombie.
        return proc.poll() is None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    # Someone else's dead child stays in the table until reaped: not running.
    with contextlib.suppress(OSError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rpartition(")")[2].split()[0] != "Z"
    return True


def _is_kafka_process(pid: int) -> bool:
    # Guards `down` against a stale PID file whose PID now belongs to another
    # program. Where /proc is missing we cannot tell, so we trust the file.
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except FileNotFoundError:
        return not Path("/proc/self").exists()
    except OSError:
        return False
    return _MAIN_CLASS.encode() in cmdline


def stop(pid: int, timeout: float = 30.0) -> bool:
    """Stop the broker with PID ``pid``: SIGTERM, wait, then SIGKILL if needed.

    Only that PID is signalled (never a process group). SIGTERM makes Kafka
    shut down cleanly, which keeps the next start's log recovery short.

    Args:
        pid: PID returned by :func:`start` (or read by :func:`read_pid`).
        timeout: Seconds to wait after SIGTERM before SIGKILL.

    Returns:
        True if the process was running when called, False if it was gone.
    """
    if not is_running(pid):
        _CHILDREN.pop(pid, None)
        return False
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        _CHILDREN.pop(pid, None)
        return False
    if not _wait_exit(pid, timeout):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        if not _wait_exit(pid, 10.0):
            raise KafkaError(f"broker PID {pid} survived SIGKILL")
    _CHILDREN.pop(pid, None)
    return True


def _wait_exit(pid: int, timeout: float) -> bool:
    proc = _CHILDREN.get(pid)
    if proc is not None:
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return False
        return True
    deadline = time.monotonic() + timeout
    while is_running(pid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)
    return True


def _tail(path: Path, lines: int) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"({path} unreadable)"
    return "\n".join(text.splitlines()[-lines:])


def _broker_logs_tail(data_dir: Path | None, lines: int = 25) -> str:
    if data_dir is None:
        return ""
    parts = []
    for path in (data_dir / _STDOUT_LOG, data_dir / _LOGS_DIR / "server.log"):
        if path.is_file() and path.stat().st_size:
            parts.append(f"--- {path} ---\n{_tail(path, lines)}")
    return "\n" + "\n".join(parts) if parts else ""


# ----------------------------------------------------------------- protocol level


async def wait_ready(
    bootstrap: str,
    # A parameter rather than asyncio.timeout(): on expiry the error carries the
    # broker's log tail and the last failure, which a bare cancellation loses.
    timeout: float = 60.0,
    *,
    pid: int | None = None,
    data_dir: Path | None = None,
) -> None:
    """Wait until the broker answers a Kafka metadata request.

    An open port alone proves little (any program could hold it, and a JVM
    still starting up cannot serve requests yet), so each try starts an
    aiokafka admin client and asks for the cluster metadata; the broker is
    ready when it lists itself and a controller.

    Args:
        bootstrap: ``host:port`` of the PLAINTEXT listener.
        timeout: Seconds to wait in all.
        pid: If given, fail at once when this process exits.
        data_dir: If given, log tails from it are added to errors.

    Raises:
        KafkaError: The broker exited or was not ready in time.
    """
    host, _, port_text = bootstrap.rpartition(":")
    port = int(port_text)
    deadline = time.monotonic() + timeout
    last_error: str = "no answer yet"
    while True:
        if pid is not None and not is_running(pid):
            raise KafkaError(
                f"broker PID {pid} exited before it was ready{_broker_logs_tail(data_dir)}"
            )
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise KafkaError(
                f"broker at {bootstrap} not ready after {timeout:.0f}s ({last_error})"
                f"{_broker_logs_tail(data_dir)}"
            )
        # Cheap check first, so aiokafka does not log a connection error for
        # every try while the JVM is still starting.
        if await _tcp_open(host, port, min(1.0, remaining)):
            admin = AIOKafkaAdminClient(
                bootstrap_servers=bootstrap,
                request_timeout_ms=int(max(1.0, min(5.0, remaining)) * 1000),
            )
            try:
                await admin.start()
                cluster = await admin.describe_cluster()
                if cluster.get("brokers") and cluster.get("controller_id", -1) != -1:
                    return
                last_error = f"metadata not complete yet: {cluster!r}"
            except Exception as exc:  # any failure here means "not ready yet"
                text = str(exc)
                name = type(exc).__name__
                last_error = text if text.startswith(name) else f"{name}: {text}"
            finally:
                await admin.close()
        else:
            last_error = "connection refused"
        await asyncio.sleep(0.2)


async def _tcp_open(host: str, port: int, limit: float) -> bool:
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), limit)
    except (TimeoutError, OSError):
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True


async def create_topics(
    bootstrap: str,
    names: Iterable[str],
    partitions: int = 1,
    *,
    replication_factor: int = 1,
    configs: Mapping[str, str] | None = None,
    # Also sent to the broker as the CreateTopics timeout, so not asyncio.timeout().
    timeout: float = 30.0,
) -> None:
    """Create topics (an existing topic is fine) and wait until they are usable.

    Waiting until every partition has a leader means a producer or an
    ``assign()``-ing consumer started right after this call finds them.

    Args:
        bootstrap: ``host:port`` of the broker.
        names: Topic names.
        partitions: Partitions per new topic (an existing topic is not changed).
        replication_factor: Replicas per partition; 1 on a single node.
        configs: Topic-level settings for new topics.
        timeout: Seconds for creation and for the partitions to get leaders.

    Raises:
        KafkaError: The broker refused a topic or its partitions got no leader
            in time.
    """
    wanted = list(dict.fromkeys(names))
    if not wanted:
        return
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=int(timeout * 1000))
    try:
        await admin.start()
        response = await admin.create_topics(
            [
                NewTopic(
                    name,
                    num_partitions=partitions,
                    replication_factor=replication_factor,
                    topic_configs=dict(configs or {}),
                )
                for name in wanted
            ],
            timeout_ms=int(timeout * 1000),
        )
        failures = []
        for topic, code, *rest in response.topic_errors:
            if code and code != TopicAlreadyExistsError.errno:
                message = rest[0] if rest else ""
                failures.append(f"{topic}: {for_code(code).__name__} {message or ''}".rstrip())
        if failures:
            raise KafkaError("could not create topics: " + "; ".join(failures))
        await _wait_for_leaders(admin, wanted, time.monotonic() + timeout)
    finally:
        await admin.close()


async def _wait_for_leaders(admin: Any, topics: list[str], deadline: float) -> None:
    while True:
        described = await admin.describe_topics(topics)
        pending = [
            t["topic"]
            for t in described
            if t["error_code"]
            or not t["partitions"]
            or any(p["error_code"] or p["leader"] < 0 for p in t["partitions"])
        ]
        if not pending:
            return
        if time.monotonic() >= deadline:
            raise KafkaError(f"topics without partition leaders: {pending}")
        await asyncio.sleep(0.1)


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
            if old is not None and is_running(old) and _is_kafka_process(old):
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
            (data_dir / _PID_FILE).unlink(missing_ok=True)
            return 0
        if not _is_kafka_process(pid_or_none):
            print(
                f"PID {pid_or_none} is not a Kafka broker; stale PID file left alone",
                file=sys.stderr,
            )
            return 1
        stop(pid_or_none, args.timeout)
        (data_dir / _PID_FILE).unlink(missing_ok=True)
        print(f"stopped PID {pid_or_none}")
        return 0
    except KafkaError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
