"""Test helpers shared by the integration and end-to-end tiers."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx

from ops import kafka

T = TypeVar("T")
ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    """A free loopback port below the ephemeral range (see ``ops.kafka.free_ports``)."""
    return kafka.free_port()


async def eventually(
    fn: Callable[[], Awaitable[T]],
    *,
    timeout: float = 30.0,
    interval: float = 0.1,
    what: str = "condition",
) -> T:
    """Call ``fn`` until it returns a truthy value (and return it) or time runs out."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            last = await fn()
            if last:
                return last
        except AssertionError as exc:
            last = exc
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {timeout}s (last: {last!r})")
        await asyncio.sleep(interval)


def write_config(path: Path, regions: dict[str, tuple[int, str]], **baton: Any) -> Path:
    """A Baton config file: regions maps name -> (port, dsn)."""
    lines = ["[baton]"]
    for k, v in baton.items():
        if isinstance(v, bool):
            lines.append(f"{k} = {str(v).lower()}")
        else:
            lines.append(f"{k} = {v!r}" if not isinstance(v, str) else f'{k} = "{v}"')
    for i, (name, (port, dsn)) in enumerate(regions.items(), start=1):
        lines += [
            "",
            f"[regions.{name}]",
            f'url = "http://127.0.0.1:{port}"',
            f'dsn = "{dsn}"',
            f"initial_version = {i}",
        ]
    path.write_text("\n".join(lines) + "\n")
    return path


class Proc:
    """A child process of the test (a server or a worker), stopped by PID."""

    def __init__(self, args: list[str], log: Path, env: dict[str, str] | None = None):
        self.args = args
        self.log = log
        self.env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Proc:
        fh = self.log.open("ab")
        self.proc = subprocess.Popen(
            self.args,
            stdout=fh,
            stderr=subprocess.STDOUT,
            env=self.env,
            cwd=ROOT,
            start_new_session=True,
        )
        fh.close()
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def kill(self) -> None:
        """SIGKILL, as a crash would."""
        if self.proc and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()

    def tail(self, n: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-n:] if self.log.exists() else ""


def server_proc(config: Path, region: str, log: Path) -> Proc:
    return Proc(
        [sys.executable, "-m", "ops.cli", "--config", str(config), "server", "--region", region],
        log,
    )


def worker_proc(url: str, log: Path, *args: str) -> Proc:
    return Proc([sys.executable, "-m", "tests.apps.worker_app", "--url", url, *args], log)


async def wait_healthy(url: str, timeout: float = 30.0, proc: Proc | None = None) -> None:
    async with httpx.AsyncClient() as http:

        async def ok() -> bool:
            if proc is not None and proc.proc is not None and proc.proc.poll() is not None:
                raise RuntimeError(f"process exited:\n{proc.tail()}")
            with contextlib.suppress(httpx.HTTPError):
                r = await http.get(f"{url}/healthz", timeout=2)
                return r.status_code == 200
            return False

        await eventually(ok, timeout=timeout, what=f"{url} healthy")


async def baton_json(config: Path, *args: str, namespace: str = "default") -> tuple[int, Any, str]:
    """Run ``baton ARGS --output json`` as a subprocess: (exit code, JSON on stdout, stderr)."""
    import json

    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "ops.cli",
        "--config",
        str(config),
        "--namespace",
        namespace,
        *args,
        "--output",
        "json",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    return int(proc.returncode or 0), json.loads(out or b"null"), err.decode()
