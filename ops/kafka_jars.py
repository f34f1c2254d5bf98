"""The Kafka broker's jars: resolved from Maven Central into a local cache.

:func:`ensure_jars` has Maven copy ``org.apache.kafka:kafka_2.13`` and its
runtime dependencies (see ``ops/kafka-pom.xml``) into
``<cache_root>/kafka-<version>/lib`` once; later calls find a marker file and
return at once. :class:`KafkaError` is the error of every ``ops.kafka*``
module; ``ops.kafka`` re-exports the public names.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

__all__ = [
    "CACHE_ENV",
    "KAFKA_VERSION",
    "KafkaError",
    "default_cache_root",
    "ensure_jars",
    "tail_text",
]

#: Kafka release the broker runs; kept equal to the default in ops/kafka-pom.xml.
KAFKA_VERSION = "4.4.0"

#: Environment variable that overrides the default jar cache root.
CACHE_ENV = "BATON_KAFKA_CACHE"

_POM = Path(__file__).resolve().parent / "kafka-pom.xml"
_COMPLETE_MARKER = ".complete"


class KafkaError(RuntimeError):
    """Raised when the jars cannot be resolved or the broker does not come up."""


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
                f"(log: {log_path}):\n{tail_text(log_path, 30)}"
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


def tail_text(path: Path, lines: int) -> str:
    """Return the last ``lines`` lines of a log file, for error messages.

    Args:
        path: The log file.
        lines: How many lines.

    Returns:
        The tail, or a note that the file is unreadable.
    """
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"({path} unreadable)"
    return "\n".join(text.splitlines()[-lines:])
