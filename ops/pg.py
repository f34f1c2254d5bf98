"""A local PostgreSQL 15 cluster for Baton's dev stack and tests.

Debian's ``postgresql-15`` server binaries are used (installed with apt when
missing and running as root). PostgreSQL refuses to run as root, so as root
every server command runs as the ``postgres`` user in a data folder it owns.
The cluster listens on 127.0.0.1 only, with its socket in the data folder,
and trusts local connections: it is a development and test cluster.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

PG_VERSION = "15"
PG_BIN = Path(f"/usr/lib/postgresql/{PG_VERSION}/bin")


class PgError(RuntimeError):
    """The local PostgreSQL cluster could not be set up or started."""


def _as_postgres(cmd: list[str]) -> list[str]:
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *cmd]
    return cmd


def ensure_installed() -> Path:
    """The server binaries folder; installs postgresql-15 with apt when missing (as root)."""
    if (PG_BIN / "postgres").exists():
        return PG_BIN
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise PgError(
            f"PostgreSQL {PG_VERSION} server binaries not found in {PG_BIN}: "
            f"install Debian's postgresql-{PG_VERSION} package"
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-q"], check=True, env=env, capture_output=True)
    proc = subprocess.run(
        ["apt-get", "install", "-y", "-q", "--no-install-recommends", f"postgresql-{PG_VERSION}"],
        env=env,
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0 or not (PG_BIN / "postgres").exists():
        raise PgError(f"apt-get install postgresql-{PG_VERSION} failed:\n{proc.stderr[-2000:]}")
    return PG_BIN


def _chown_postgres(path: Path) -> None:
    if os.geteuid() == 0:
        shutil.chown(path, "postgres", "postgres")


@dataclass
class PgCluster:
    """One cluster in ``data_dir`` listening on ``port``."""

    data_dir: Path
    port: int
    host: str = "127.0.0.1"

    @property
    def log_file(self) -> Path:
        return self.data_dir.parent / "postgres.log"

    def dsn(self, dbname: str = "postgres") -> str:
        """libpq URL of a database, over the Unix socket in the data folder.

        A local socket costs far fewer cycles per round trip than TCP on
        loopback, and a history write makes several round trips.
        """
        return f"postgresql://postgres@/{dbname}?host={self.data_dir}&port={self.port}"

    def tcp_dsn(self, dbname: str = "postgres") -> str:
        """libpq URL of a database over TCP on loopback."""
        return f"postgresql://postgres@{self.host}:{self.port}/{dbname}"

    def init(self) -> bool:
        """Create the cluster unless it exists; True if it was created."""
        bin_dir = ensure_installed()
        if (self.data_dir / "PG_VERSION").exists():
            return False
        self.data_dir.mkdir(parents=True, exist_ok=True)
        # postgres must be able to reach its folder through the state folder.
        for parent in [self.data_dir.parent]:
            with contextlib.suppress(OSError):
                parent.chmod(parent.stat().st_mode | 0o711)
        self.data_dir.chmod(0o700)
        _chown_postgres(self.data_dir)
        self.log_file.touch()
        _chown_postgres(self.log_file)
        proc = subprocess.run(
            _as_postgres(
                [
                    str(bin_dir / "initdb"),
                    "-D",
                    str(self.data_dir),
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "-E",
                    "UTF8",
                    "--locale=C.UTF-8",
                ]
            ),
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0:
            raise PgError(f"initdb failed:\n{proc.stdout[-1500:]}\n{proc.stderr[-1500:]}")
        conf = self.data_dir / "postgresql.auto.conf"
        with conf.open("a") as fh:
            fh.write(
                # Loopback only; durable settings (fsync and synchronous_commit stay on).
                f"listen_addresses = '{self.host}'\n"
                f"port = {self.port}\n"
                f"unix_socket_directories = '{self.data_dir}'\n"
                "max_connections = 300\n"
                "shared_buffers = '256MB'\n"
                "wal_level = 'replica'\n"
                "max_wal_size = '2GB'\n"
                # statements per workflow in `baton bench` (a few per cent of overhead)
                "shared_preload_libraries = 'pg_stat_statements'\n"
                # the time of each WAL flush in `baton bench` (a clock read per flush)
                "track_wal_io_timing = on\n"
            )
        return True

    def pid(self) -> int | None:
        pidfile = self.data_dir / "postmaster.pid"
        try:
            pid = int(pidfile.read_text().splitlines()[0])
        except (OSError, ValueError, IndexError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            return pid
        return pid

    def start(self, timeout: float = 60.0) -> int:
        """Start the cluster (a no-op when it runs); returns the postmaster PID."""
        bin_dir = ensure_installed()
        self.init()
        pid = self.pid()
        if pid is not None:
            return pid
        proc = subprocess.run(
            _as_postgres(
                [
                    str(bin_dir / "pg_ctl"),
                    "-D",
                    str(self.data_dir),
                    "-l",
                    str(self.log_file),
                    "-w",
                    "-t",
                    str(int(timeout)),
                    "start",
                ]
            ),
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0:
            tail = self.log_file.read_text()[-2000:] if self.log_file.exists() else ""
            raise PgError(f"pg_ctl start failed: {proc.stderr.strip()}\n{tail}")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pid = self.pid()
            if pid is not None:
                return pid
            time.sleep(0.1)
        raise PgError("postgres did not write its PID file")

    def stop(self, timeout: float = 60.0, mode: Literal["fast", "immediate"] = "fast") -> None:
        """Stop the cluster this data folder runs.

        Args:
            timeout: Seconds ``pg_ctl`` waits for it.
            mode: ``fast`` (a checkpoint, then exit) or ``immediate`` (exit now:
                the next start recovers from the WAL; for a cluster thrown away).
        """
        if self.pid() is None:
            return
        subprocess.run(
            _as_postgres(
                [
                    str(PG_BIN / "pg_ctl"),
                    "-D",
                    str(self.data_dir),
                    "-m",
                    mode,
                    "-w",
                    "-t",
                    str(int(timeout)),
                    "stop",
                ]
            ),
            capture_output=True,
            text=True,
        )

    def kill(self) -> None:
        """SIGKILL the postmaster (for crash tests); its children exit with it."""
        pid = self.pid()
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, 9)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and self._alive(pid):
                time.sleep(0.05)

    @staticmethod
    def _alive(pid: int) -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True

    def psql(self, dbname: str, sql: str) -> str:
        proc = subprocess.run(
            [
                str(PG_BIN / "psql"),
                "-X",
                "-q",
                "-At",
                "-h",
                self.host,
                "-p",
                str(self.port),
                "-U",
                "postgres",
                "-d",
                dbname,
                "-c",
                sql,
            ],
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0:
            raise PgError(f"psql failed: {proc.stderr.strip()}")
        return proc.stdout

    def create_database(self, name: str) -> bool:
        """Create database ``name`` unless it exists; True if it was created."""
        exists = self.psql("postgres", f"SELECT 1 FROM pg_database WHERE datname = '{name}'")
        if exists.strip():
            return False
        self.psql("postgres", f'CREATE DATABASE "{name}"')
        return True

    def dump(self, dbname: str) -> str:
        """pg_dump of a database as SQL text."""
        proc = subprocess.run(
            [
                str(PG_BIN / "pg_dump"),
                "-h",
                self.host,
                "-p",
                str(self.port),
                "-U",
                "postgres",
                dbname,
            ],
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0:
            raise PgError(f"pg_dump failed: {proc.stderr.strip()}")
        return proc.stdout


def region_db_name(region: str) -> str:
    """Database name of a region: ``baton_region_a`` for ``region-a``."""
    return "baton_" + region.replace("-", "_")
