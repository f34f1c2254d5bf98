"""The Kafka broker as a process: its state folder layout, start, PID and stop.

:func:`start` launches ``java ... kafka.Kafka server.properties`` as a
detached child and records its PID in the state folder; :func:`stop` ends
that PID (SIGTERM, then SIGKILL). ``ops.kafka`` re-exports the public names.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from ops.kafka_jars import KafkaError, ensure_jars, tail_text

__all__ = [
    "is_kafka_process",
    "is_running",
    "read_pid",
    "start",
    "stop",
]

# Names inside a broker's state folder. One folder holds everything a broker
# owns, so deleting it (e.g. pytest's tmp_path) leaves nothing behind.
SERVER_PROPERTIES = "server.properties"
LOG4J2_PROPERTIES = "log4j2.properties"
KRAFT_LOG_DIR = "data"  # log.dirs: topic partitions and the metadata log
LOGS_DIR = "logs"  # log4j2 output (server.log)
STDOUT_LOG = "kafka.out"  # the JVM's own stdout/stderr (crashes, GC errors)
FORMAT_LOG = "format.log"
PID_FILE = "kafka.pid"
META_PROPERTIES = "meta.properties"

_MAIN_CLASS = "kafka.Kafka"

# Popen handles of the brokers this process started, by PID. Holding them
# keeps Popen.__del__ from warning "subprocess is still running" (an error under
# pytest's filterwarnings=error) and lets stop() reap the child it ends.
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


def _java() -> str:
    java_home = os.environ.get("JAVA_HOME")
    if java_home and (Path(java_home) / "bin" / "java").is_file():
        return str(Path(java_home) / "bin" / "java")
    java = shutil.which("java")
    if java is None:
        raise KafkaError("no 'java' on PATH (and JAVA_HOME unset); Kafka 4.x needs Java 17+")
    return java


def java_command(lib: Path, data_dir: Path, jvm_args: Sequence[str]) -> list[str]:
    """Return ``java`` with ``jvm_args``, the broker's log settings and classpath.

    Args:
        lib: Kafka jars.
        data_dir: The broker's state folder.
        jvm_args: JVM options.

    Returns:
        The command up to (not including) the main class.

    Raises:
        KafkaError: Java is missing.
    """
    return [
        _java(),
        *jvm_args,
        "-Djava.awt.headless=true",
        f"-Dkafka.logs.dir={data_dir / LOGS_DIR}",
        f"-Dlog4j2.configurationFile={data_dir / LOG4J2_PROPERTIES}",
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
    server_properties = data_dir / SERVER_PROPERTIES
    if not server_properties.is_file():
        raise KafkaError(f"{server_properties} is missing; call write_config() first")
    if not (data_dir / KRAFT_LOG_DIR / META_PROPERTIES).is_file():
        raise KafkaError(f"{data_dir / KRAFT_LOG_DIR} is not formatted; call format_storage()")
    lib = lib_dir if lib_dir is not None else ensure_jars()
    cmd = [
        *java_command(
            lib,
            data_dir,
            [
                f"-Xmx{heap_max}",
                f"-Xms{heap_min}",
                "-XX:+UseG1GC",
                "-XX:MaxGCPauseMillis=20",
                # The first JIT tier only. The broker shares the machine with
                # everything else here, and its second tier kept compiling
                # through hours of load: more CPU than the broker spent
                # serving (`baton bench --replicated`: Kafka 2.4-3.3 ms a
                # workflow with both tiers, 0.7-1.1 with the first alone).
                "-XX:TieredStopAtLevel=1",
                # A broker that ran out of heap is useless; let it die visibly.
                "-XX:+ExitOnOutOfMemoryError",
                *jvm_args,
            ],
        ),
        _MAIN_CLASS,
        str(server_properties),
    ]
    with (data_dir / STDOUT_LOG).open("ab") as out:
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
    (data_dir / PID_FILE).write_text(f"{proc.pid}\n")
    return proc.pid


def read_pid(data_dir: Path) -> int | None:
    """Return the PID recorded by :func:`start` in ``data_dir``, if any.

    Args:
        data_dir: The broker's state folder.

    Returns:
        The PID, or None if no (readable) PID file exists.
    """
    try:
        return int((data_dir / PID_FILE).read_text().strip())
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


def is_kafka_process(pid: int) -> bool:
    """Tell whether ``pid`` runs a Kafka broker (by its command line)."""
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


def broker_logs_tail(data_dir: Path | None, lines: int = 25) -> str:
    """Return the tails of the broker's stdout and server logs, for errors."""
    if data_dir is None:
        return ""
    parts = []
    for path in (data_dir / STDOUT_LOG, data_dir / LOGS_DIR / "server.log"):
        if path.is_file() and path.stat().st_size:
            parts.append(f"--- {path} ---\n{tail_text(path, lines)}")
    return "\n" + "\n".join(parts) if parts else ""
