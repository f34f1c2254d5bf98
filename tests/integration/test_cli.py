"""The ``baton`` CLI against a real local stack (PostgreSQL, Kafka, two region servers).

One stack serves the whole module: ``stack_up`` brings it up in a fresh state
folder, the tests drive it through the real CLI (click's runner in-process, and
once through ``python -m ops.cli``), and the last test brings it down with
``baton dev down`` and checks that none of the processes it started survive.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# aiokafka ships no type information: see the mypy overrides in pyproject.toml.
from aiokafka.admin import AIOKafkaAdminClient
from click.testing import CliRunner, Result

import ops
from ops.cli import cli
from ops.devstack import REPLICATION_PARTITIONS, StackInfo, stack_down, stack_up
from store.config import load_config

pytestmark = pytest.mark.integration

PROJECT_ROOT = Path(ops.__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def stack() -> Iterator[StackInfo]:
    # Not pytest's tmp_path: its parents are mode 0700 and PostgreSQL runs as
    # the postgres user, which must reach the state folder.
    state = Path(tempfile.mkdtemp(prefix="baton-cli-test-"))
    state.chmod(0o755)
    try:
        yield stack_up(state)
    finally:
        try:
            stack_down(state)
        finally:
            shutil.rmtree(state, ignore_errors=True)


def run(stack: StackInfo, *args: str, ok: bool = True) -> Result:
    """Run ``baton --config STATE/baton.toml ARGS`` in-process."""
    runner = CliRunner()
    result = runner.invoke(
        cli,
        ["--config", str(stack.config_path), *args],
        env={"BATON_NAMESPACE": None, "BATON_CONFIG": None},
    )
    if ok:
        assert result.exit_code == 0, (result.output, result.exception)
    return result


def run_json(stack: StackInfo, *args: str) -> Any:
    return json.loads(run(stack, *args, "--output", "json").stdout)


def pid_running(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)  # our children: collect them once they exit
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def eventually(check: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"{check} still false after {timeout} s"
        time.sleep(0.05)


def recorded(stack: StackInfo) -> dict[str, Any]:
    """What ``stack.json`` records now."""
    data: dict[str, Any] = json.loads((stack.state_dir / "stack.json").read_text())
    return data


def server_pids(stack: StackInfo) -> dict[str, int | None]:
    return {r: s["pid"] for r, s in recorded(stack)["servers"].items()}


def kafka_pid(stack: StackInfo) -> int | None:
    pid: int | None = recorded(stack)["kafka"]["pid"]
    return pid


async def replication_topics(bootstrap: str) -> dict[str, int]:
    """Every ``baton.replication.*`` topic on the broker, with its partition count."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=15000)
    await admin.start()
    try:
        names = [t for t in await admin.list_topics() if t.startswith("baton.replication.")]
        described = await admin.describe_topics(names)
    finally:
        await admin.close()
    return {t["topic"]: len(t["partitions"]) for t in described if t["error_code"] == 0}


def test_dev_up_twice_changes_nothing(stack: StackInfo) -> None:
    before = server_pids(stack)
    broker = kafka_pid(stack)
    data = run_json(stack, "dev", "up", "--state-dir", str(stack.state_dir))
    assert data["changed"] is False and data["actions"] == []
    assert {r: s["pid"] for r, s in data["servers"].items()} == before
    assert data["postgres"]["pid"] == stack.pg_pid
    assert all(p is not None for p in before.values())
    assert broker is not None and data["kafka"]["pid"] == broker
    assert stack.kafka is not None and data["kafka"]["port"] == stack.kafka.port


def test_dev_status_json_shows_alive_components(stack: StackInfo) -> None:
    data = run_json(stack, "dev", "status", "--state-dir", str(stack.state_dir))
    rows = {c["component"]: c for c in data["components"]}
    assert set(rows) == {"postgres", "kafka", "server region-a", "server region-b"}
    assert all(c["alive"] for c in rows.values()) and data["running"] is True
    assert rows["server region-a"]["address"] == stack.url("region-a")
    assert rows["kafka"]["address"] == stack.kafka_bootstrap
    assert rows["kafka"]["pid"] == kafka_pid(stack)
    table = run(stack, "dev", "status", "--state-dir", str(stack.state_dir)).stdout
    assert "server region-b" in table and "kafka" in table


def test_dev_status_of_no_stack_exits_1(stack: StackInfo, tmp_path: Path) -> None:
    answer = run(stack, "dev", "status", "--state-dir", str(tmp_path), "-o", "json", ok=False)
    assert answer.exit_code == 1, answer.output
    assert json.loads(answer.stdout)["running"] is False
    assert "no local stack" in answer.stderr


def test_config_names_the_kafka_broker(stack: StackInfo) -> None:
    raw = tomllib.loads(stack.config_path.read_text())
    assert stack.kafka is not None
    assert raw["kafka"] == {"bootstrap": f"127.0.0.1:{stack.kafka.port}"}
    # The same value as the server reads it.
    assert load_config(stack.config_path).kafka_bootstrap == stack.kafka_bootstrap
    assert recorded(stack)["kafka"]["bootstrap"] == stack.kafka_bootstrap


async def test_replication_topics_exist(stack: StackInfo) -> None:
    assert stack.kafka_bootstrap is not None
    topics = await replication_topics(stack.kafka_bootstrap)
    assert topics == {
        "baton.replication.region-a": REPLICATION_PARTITIONS,
        "baton.replication.region-b": REPLICATION_PARTITIONS,
    }
    assert REPLICATION_PARTITIONS == 8


def test_dead_server_is_restarted(stack: StackInfo) -> None:
    before = server_pids(stack)
    victim = before["region-b"]
    assert victim is not None
    os.kill(victim, signal.SIGKILL)
    eventually(lambda: not pid_running(victim))
    data = run_json(stack, "dev", "up", "--state-dir", str(stack.state_dir))
    after = {r: s["pid"] for r, s in data["servers"].items()}
    assert after["region-a"] == before["region-a"]
    assert after["region-b"] not in (None, victim)
    assert data["actions"] == [f"restarted server region-b (pid {after['region-b']})"]


def test_dead_broker_is_restarted(stack: StackInfo) -> None:
    victim = kafka_pid(stack)
    servers = server_pids(stack)
    assert victim is not None and pid_running(victim)
    os.kill(victim, signal.SIGKILL)
    eventually(lambda: not pid_running(victim))
    # A component down is exit 1 naming it (JSON and table alike), where it
    # was exit 0 and a script or health check could not tell.
    answer = run(
        stack, "dev", "status", "--state-dir", str(stack.state_dir), "-o", "json", ok=False
    )
    assert answer.exit_code == 1, answer.output
    status = json.loads(answer.stdout)
    rows = {c["component"]: c for c in status["components"]}
    assert rows["kafka"]["alive"] is False and status["running"] is False
    assert status["down"] == ["kafka"]
    answer = run(stack, "dev", "status", "--state-dir", str(stack.state_dir), ok=False)
    assert answer.exit_code == 1 and "down: kafka" in answer.stderr

    data = run_json(stack, "dev", "up", "--state-dir", str(stack.state_dir))
    new = data["kafka"]["pid"]
    assert new not in (None, victim) and pid_running(new)
    # Same ports, same (already formatted) storage, and the servers kept running.
    assert data["actions"] == [f"restarted Kafka broker (pid {new})"]
    assert data["kafka"]["bootstrap"] == stack.kafka_bootstrap
    assert {r: s["pid"] for r, s in data["servers"].items()} == servers


def test_namespace_create_list_describe(stack: StackInfo) -> None:
    created = run_json(
        stack,
        "namespace",
        "create",
        "cli-orders",
        "--regions",
        "region-a,region-b",
        "--active",
        "region-a",
        "--retention-days",
        "3",
        "--description",
        "from the CLI test",
    )
    assert created["name"] == "cli-orders"
    assert created["regions"] == ["region-a", "region-b"]
    assert created["active_region"] == "region-a" and created["failover_version"] == 1
    assert created["retention_days"] == 3

    # Once through the real entry point, as an operator's shell runs it.
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "ops.cli",
            "--config",
            str(stack.config_path),
            "namespace",
            "list",
            "--output",
            "json",
        ],
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)},
    )
    assert proc.returncode == 0, proc.stderr
    names = {n["name"] for n in json.loads(proc.stdout)}
    assert {"default", "cli-orders"} <= names

    described = run_json(stack, "namespace", "describe", "cli-orders")
    assert described["description"] == "from the CLI test"
    assert described["state"] == "active"

    again = run(stack, "namespace", "create", "cli-orders", "--output", "json", ok=False)
    assert again.exit_code == 1
    assert json.loads(again.stdout)["error"]["code"] == "NAMESPACE_ALREADY_EXISTS"


def test_workflow_start_then_describe_and_list(stack: StackInfo) -> None:
    started = run_json(
        stack,
        "workflow",
        "start",
        "--type",
        "Pipeline",
        "--task-queue",
        "cli-q",
        "--id",
        "cli-wf-1",
        "--input",
        '{"order": 42}',
        "--input",
        '"rush"',
    )
    assert started["workflow_id"] == "cli-wf-1" and started["run_id"]

    described = run_json(stack, "workflow", "describe", "cli-wf-1")
    ex = described["execution"]
    assert ex["status"] == "running" and ex["run_id"] == started["run_id"]
    assert ex["workflow_type"] == "Pipeline" and ex["task_queue"] == "cli-q"

    listed = run_json(stack, "workflow", "list", "--prefix", "cli-wf-", "--status", "running")
    assert [(e["workflow_id"], e["status"]) for e in listed] == [("cli-wf-1", "running")]
    # as a query spells it, too
    listed = run_json(stack, "workflow", "list", "--prefix", "cli-wf-", "--status", "Running")
    assert [(e["workflow_id"], e["status"]) for e in listed] == [("cli-wf-1", "running")]

    history = run_json(stack, "workflow", "history", "cli-wf-1")
    first = history["events"][0]
    assert first["event_id"] == 1 and first["event_type"] == "WorkflowExecutionStarted"
    table = run(stack, "workflow", "history", "cli-wf-1").stdout
    assert "WorkflowExecutionStarted" in table and "order" in table


def test_bad_namespace_exits_1_with_error_code(stack: StackInfo) -> None:
    as_json = run(stack, "-n", "no-such-ns", "workflow", "list", "--output", "json", ok=False)
    assert as_json.exit_code == 1
    assert json.loads(as_json.stdout)["error"]["code"] == "NAMESPACE_NOT_FOUND"

    as_text = run(stack, "-n", "no-such-ns", "workflow", "describe", "x", ok=False)
    assert as_text.exit_code == 1
    assert as_text.stderr.startswith("error [NAMESPACE_NOT_FOUND]: ")
    assert "Traceback" not in as_text.output


def test_migrate_status_is_up_to_date(stack: StackInfo) -> None:
    rows = run_json(stack, "migrate", "status")
    assert {r["region"] for r in rows} == {"region-a", "region-b"}
    assert all(
        r["up_to_date"] and r["pending"] == [] and r["current"] == r["latest"] >= 1 for r in rows
    )
    table = run(stack, "migrate", "status", "--region", "region-a").stdout
    assert "region-a" in table and "region-b" not in table


def test_failover_verify_and_namespace_regions_through_the_cli(stack: StackInfo) -> None:
    run_json(stack, "namespace", "create", "cli-move", "--regions", "region-a,region-b")
    run_json(
        stack,
        "-n",
        "cli-move",
        "workflow",
        "start",
        "--type",
        "Pipeline",
        "--task-queue",
        "cli-q",
        "--id",
        "cli-move-1",
    )

    def verified() -> bool:
        r = run(stack, "replication", "verify", "cli-move", "--output", "json", ok=False)
        return r.exit_code == 0 and json.loads(r.stdout)["runs_compared"] == 1

    eventually(verified, timeout=30)
    moved = run_json(stack, "failover", "cli-move", "--to", "region-b")
    assert (moved["source"], moved["target"], moved["version"]) == ("region-a", "region-b", 2)
    assert moved["forced"] is False and moved["workflows_rebuilt"] == 1
    # the same failover again (a retry after a lost answer): nothing moves, no error
    again = run_json(stack, "failover", "cli-move", "--to", "region-b")
    assert again["already_active"] is True and again["version"] == 2
    assert again["workflows_rebuilt"] == 0
    alone = run(stack, "failover", "cli-move", "--to", "region-a", "--allow-behind", ok=False)
    assert alone.exit_code == 2 and "goes with --force only" in alone.output
    # (two regions: no other standby to be behind, so --allow-behind changes nothing)
    forced = run_json(
        stack, "failover", "cli-move", "--to", "region-a", "--force", "--allow-behind"
    )
    assert forced["forced"] is True and forced["version"] == 101
    described = run_json(stack, "namespace", "describe", "cli-move")
    assert described["active_region"] == "region-a" and described["failover_version"] == 101
    assert run_json(stack, "replication", "conflicts", "--namespace", "cli-move") == []
    assert run_json(stack, "replication", "dlq", "list") == []
    active = run(
        stack, "namespace", "remove-region", "cli-move", "region-a", "--output", "json", ok=False
    )
    assert json.loads(active.stdout)["error"]["code"] == "INVALID_ARGUMENT"
    left = run_json(stack, "namespace", "remove-region", "cli-move", "region-b")
    assert left["regions"] == ["region-a"]


def test_namespace_list_shows_the_namespaces_of_every_region(stack: StackInfo) -> None:
    # region-b alone holds it: region-a, the first region, does not know it
    run_json(
        stack, "namespace", "create", "cli-only-b", "--regions", "region-b", "--active", "region-b"
    )
    listed = {n["name"]: n for n in run_json(stack, "namespace", "list")}
    assert listed["cli-only-b"]["active_region"] == "region-b"
    assert {"default", "cli-orders"} <= set(listed)
    in_a = {n["name"] for n in run_json(stack, "--region", "region-a", "namespace", "list")}
    assert "cli-only-b" not in in_a and "default" in in_a


def test_replication_status_of_a_one_region_namespace_says_so(stack: StackInfo) -> None:
    run_json(stack, "namespace", "create", "cli-alone", "--regions", "region-a")
    assert run_json(stack, "replication", "status", "--namespace", "cli-alone") == []
    text = run(stack, "replication", "status", "--namespace", "cli-alone").output
    assert "cli-alone has one region" in text and "replication is off" not in text


def test_dev_down_leaves_nothing_running(stack: StackInfo) -> None:
    pids = [p for p in server_pids(stack).values() if p is not None]
    pg_pid = stack.pg.pid()
    broker = kafka_pid(stack)
    assert pg_pid is not None and broker is not None and len(pids) == 2
    assert pid_running(broker)
    data = run_json(stack, "dev", "down", "--state-dir", str(stack.state_dir))
    assert data["changed"] is True
    # Servers first (they use Kafka and PostgreSQL), then Kafka, then PostgreSQL.
    assert [a.split(" (")[0] for a in data["actions"]] == [
        "stopped server region-a",
        "stopped server region-b",
        "stopped Kafka broker",
        "stopped PostgreSQL",
    ]
    for pid in [*pids, broker, pg_pid]:
        assert not pid_running(pid), f"pid {pid} still runs after dev down"
    assert recorded(stack)["kafka"]["pid"] is None
    # a stopped stack is down: exit 1, every component named
    answer = run(
        stack, "dev", "status", "--state-dir", str(stack.state_dir), "-o", "json", ok=False
    )
    assert answer.exit_code == 1, answer.output
    status = json.loads(answer.stdout)
    assert not any(c["alive"] for c in status["components"])
    assert len(status["down"]) == 4
    # SIGTERM shut the servers down cleanly (no traceback in their logs).
    for log in (stack.state_dir / "logs").glob("server-*.log"):
        assert "Traceback" not in log.read_text(), log.read_text()[-2000:]
