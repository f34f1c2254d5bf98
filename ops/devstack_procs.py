"""Processes of the local stack: PID checks, the region servers, async steps, progress.

A recorded PID is trusted only while /proc shows it still runs our command
line, so a PID the kernel gave to another program is never signalled.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import signal
import socket
import sys
import time
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
from rich.console import Console
from rich.text import Text

import ops
from ops.devstack_state import (
    LOOPBACK,
    SERVER_READY_TIMEOUT_S,
    STACK_FILE,
    DevStackError,
    ServerInfo,
    StackInfo,
)

__all__ = [
    "Step",
    "Steps",
    "cmdline",
    "pid_alive",
    "port_free",
    "port_frees",
    "reap",
    "run_sync",
    "server_alive",
    "start_server",
    "terminate",
    "wait_healthy",
]

T = TypeVar("T")

PORT_WAIT_S = 5.0
"""How long `up` waits for a port held for a moment to be let go."""


def cmdline(pid: int) -> list[str] | None:
    """The command line of ``pid`` from /proc, or None if it cannot be read."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return [a.decode(errors="replace") for a in raw.split(b"\0") if a]


def reap(pid: int) -> None:
    """Collect ``pid``'s exit status if it is our child and has ended."""
    # Servers started by this process are our children: collect their exit status
    # so they do not linger as zombies that still "exist".
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def pid_alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    reap(pid)
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


def server_alive(info: StackInfo, srv: ServerInfo) -> bool:
    """True when the recorded PID still runs this stack's server of this region."""
    if srv.pid is None or not pid_alive(srv.pid):
        return False
    argv = cmdline(srv.pid)
    if argv is None:
        return False
    want = _server_argv(info, srv)[1:]
    # Compare everything after the interpreter: the PID is ours only if it runs
    # exactly our command (a recycled PID runs something else).
    return argv[1:] == want


def port_free(port: int) -> bool:
    """True when nothing listens on loopback ``port``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((LOOPBACK, port))
        except OSError:
            return False
    return True


def port_frees(port: int, timeout: float = PORT_WAIT_S) -> bool:
    """True once loopback ``port`` is free, waiting out a holder that lets go.

    A client socket that held the port for a moment (an outgoing connection
    given it as its local port) closes within a few seconds; a listener does
    not, and the caller reports it.
    """
    deadline = time.monotonic() + timeout
    while not port_free(port):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.2)
    return True


def start_server(info: StackInfo, srv: ServerInfo) -> int:
    """Spawn ``srv``'s ``baton server`` in its own session; returns its PID."""
    if not port_frees(srv.port):
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


def wait_healthy(srv: ServerInfo, pid: int | None, timeout: float = SERVER_READY_TIMEOUT_S) -> None:
    """Wait until ``srv`` answers /healthz; fail early if ``pid`` exits."""
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
            if pid is not None and not pid_alive(pid):
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


def terminate(pid: int, timeout: float) -> str:
    """SIGTERM ``pid``, SIGKILL it after ``timeout``; returns how it ended."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return "terminated"
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline and pid_alive(pid):
        time.sleep(0.05)
    return "killed after SIGTERM timeout"


# --------------------------------------------------------------------------- async steps


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to completion, also when the caller already runs an event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    # Called from async code (a test or the demo): use a private loop in a thread.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


# --------------------------------------------------------------------------- progress


class Step:
    """A running step; :meth:`done` sets the note shown when it ends."""

    def __init__(self, steps: Steps, name: str):
        self.steps = steps
        self.name = name
        self.note = ""

    def done(self, note: str) -> None:
        self.note = note


class Steps:
    """One line per step: a spinner while it runs, then a check mark and a note."""

    def __init__(self, console: Console | None):
        self.console = console

    @contextlib.contextmanager
    def step(self, name: str, running: str | None = None) -> Iterator[Step]:
        """One step; ``running`` replaces ``name…`` as the spinner's text."""
        st = Step(self, name)
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
