"""The README's main job: ``baton demo`` on a fresh local stack (its own
PostgreSQL, Kafka and region servers), run as a user runs it."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

import ops
from ops.devstack import stack_down

pytestmark = pytest.mark.integration
PROJECT_ROOT = Path(ops.__file__).resolve().parent.parent


def test_the_demo_survives_a_killed_worker_and_moves_running_orders() -> None:
    # Not pytest's tmp_path: PostgreSQL runs as the postgres user, which must
    # reach the state folder.
    state = Path(tempfile.mkdtemp(prefix="baton-demo-test-"))
    state.chmod(0o755)
    try:
        proc = subprocess.run(
            [
                *(sys.executable, "-m", "ops.cli", "demo", "--state-dir", str(state)),
                *("--orders", "3", "--output", "json"),
            ],
            cwd=PROJECT_ROOT,
            capture_output=True,
            timeout=280,
        )
        assert proc.returncode == 0, proc.stderr.decode()[-3000:]
        report = json.loads(proc.stdout)
    finally:
        try:
            stack_down(state)
        finally:
            shutil.rmtree(state, ignore_errors=True)
    assert report["all_completed"], report
    # act one: the worker was killed while every charge ran, and each resumed
    assert report["killed_worker"]["orders_mid_charge"] == 3, report
    assert all(o["activities_completed"] == 3 for o in report["orders"]), report
    # act two: the orders were still open when the namespace moved, and
    # finished in the region they moved to
    moved = report["failover"]
    assert moved["workflows_moved"] == 3, moved
    assert moved["orders_completed"] == 3, moved
    done_in = {r["region"]: r["completed_here"] for r in moved["regions"]}
    assert done_in[moved["to"]] == 3 and done_in[moved["from"]] == 0, moved
    assert moved["verify"]["clean"], moved
