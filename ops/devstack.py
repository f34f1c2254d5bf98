"""The local development stack: PostgreSQL, a Kafka broker and one ``baton server`` per region.

Everything the stack needs lives in one state folder (``--state-dir``, else
``$BATON_HOME``, else ``.baton`` under the current directory)::

    STATE/stack.json        ports, PIDs and paths (the only record of what runs)
    STATE/baton.toml        the Baton config every command reads
    STATE/pg/               the PostgreSQL cluster (one database per region)
    STATE/postgres.log      its log
    STATE/kafka/            the Kafka broker (ops.kafka): server.properties, data/,
                            logs/server.log, kafka.out (the JVM's own output)
    STATE/logs/server-R.log each region server's output

The broker is a single-node Apache Kafka in KRaft mode run from Maven-resolved
jars (cached outside the state folder, see :func:`ops.kafka.ensure_jars`). It
carries one replication topic per region, ``baton.replication.<region>``.

:func:`stack_up` is idempotent: it starts what is not running and leaves the
rest alone. :func:`stack_down` stops exactly the PIDs ``stack.json`` records,
after checking that each still runs our command line, so a recycled PID is
never signalled.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console

from ops.devstack_kafka import KAFKA_READY_TIMEOUT_S as KAFKA_READY_TIMEOUT_S
from ops.devstack_kafka import KAFKA_STOP_TIMEOUT_S as KAFKA_STOP_TIMEOUT_S
from ops.devstack_kafka import KAFKA_TOPICS_TIMEOUT_S as KAFKA_TOPICS_TIMEOUT_S
from ops.devstack_kafka import kafka_down, kafka_pid, kafka_up
from ops.devstack_procs import (
    Steps,
    cmdline,
    pid_alive,
    reap,
    run_sync,
    server_alive,
    start_server,
    terminate,
    wait_healthy,
)
from ops.devstack_state import CONFIG_FILE as CONFIG_FILE
from ops.devstack_state import (
    DEFAULT_NAMESPACE,
    DEFAULT_REGIONS,
    DEFAULT_STATE_DIR,
    HOME_ENV,
    LOOPBACK,
    REPLICATION_PARTITIONS,
    SERVER_STOP_TIMEOUT_S,
    STACK_FILE,
    Component,
    DevStackError,
    KafkaInfo,
    ServerInfo,
    StackInfo,
    load_info,
    load_or_plan,
    locked,
    replication_topic,
    save_info,
    write_config,
)
from ops.devstack_state import FAILOVER_VERSION_INCREMENT as FAILOVER_VERSION_INCREMENT
from ops.devstack_state import LOCK_TIMEOUT_S as LOCK_TIMEOUT_S
from ops.devstack_state import REPLICATION_TOPIC_PREFIX as REPLICATION_TOPIC_PREFIX
from ops.devstack_state import SERVER_READY_TIMEOUT_S as SERVER_READY_TIMEOUT_S
from store import db
from store.migrations import migrate_up

__all__ = [
    "DEFAULT_REGIONS",
    "HOME_ENV",
    "REPLICATION_PARTITIONS",
    "Component",
    "DevStackError",
    "KafkaInfo",
    "ServerInfo",
    "StackInfo",
    "load_stack",
    "replication_topic",
    "resolve_state_dir",
    "stack_down",
    "stack_status",
    "stack_up",
]


# --------------------------------------------------------------------------- public API


def resolve_state_dir(state_dir: str | os.PathLike[str] | None = None) -> Path:
    """The state folder: the argument, else ``$BATON_HOME``, else ``./.baton`` (absolute)."""
    if state_dir:
        return Path(state_dir).absolute()
    if os.environ.get(HOME_ENV):
        return Path(os.environ[HOME_ENV]).absolute()
    return DEFAULT_STATE_DIR.absolute()


def stack_up(
    state_dir: str | os.PathLike[str] | None = None,
    regions: Sequence[str] | None = None,
    *,
    console: Console | None = None,
) -> StackInfo:
    """Bring the local stack up, starting only what is not running.

    Args:
        state_dir: The state folder (see :func:`resolve_state_dir`).
        regions: Regions to run. None keeps the recorded ones (or
            ``region-a, region-b`` the first time); regions not yet recorded
            are added with the next free port and failover version.
        console: Where to show progress; None keeps quiet.

    Returns:
        The stack; ``actions`` lists what this call did (empty when everything
        was running already).

    Raises:
        DevStackError: A step failed; the message says which and why.
    """
    state = resolve_state_dir(state_dir)
    steps = Steps(console)
    with locked(state):
        info = load_or_plan(state, regions)
        save_info(info)

        with steps.step("PostgreSQL") as s:
            pg = info.pg
            was_running = pg.pid() is not None
            try:
                created = pg.init()
                info.pg_pid = pg.start()
            except Exception as exc:  # PgError, OSError: report with the stack's context
                raise DevStackError(f"PostgreSQL did not start: {exc}") from exc
            if created:
                info.actions.append("initialised PostgreSQL cluster")
            if not was_running:
                info.actions.append(f"started PostgreSQL (pid {info.pg_pid})")
            s.done(
                f"pid {info.pg_pid} on {LOOPBACK}:{info.pg_port}"
                + ("" if not was_running else " (already running)")
            )
            save_info(info)

        with steps.step("databases and migrations") as s:
            notes = []
            for srv in info.servers.values():
                if pg.create_database(srv.database):
                    info.actions.append(f"created database {srv.database}")
                applied = run_sync(_migrate(info.dsn(srv.region)))
                if applied:
                    info.actions.append(f"migrated {srv.region}: {', '.join(applied)}")
                notes.append(f"{srv.database}" + (f" +{len(applied)}" if applied else ""))
            s.done(", ".join(notes))

        kafka_up(info, steps)

        with steps.step("config") as s:
            config_changed = write_config(info)
            if config_changed:
                info.actions.append(f"wrote {info.config_path}")
            s.done(str(info.config_path))

        # Start every missing server first, then wait: they boot in parallel.
        started: dict[str, bool] = {}
        for srv in info.servers.values():
            if server_alive(info, srv):
                if not config_changed:
                    continue
                # It read the old config (a region was added): restart it to pick it up.
                assert srv.pid is not None
                terminate(srv.pid, SERVER_STOP_TIMEOUT_S)
            started[srv.region] = srv.pid is not None  # True: it had run before
            srv.pid = start_server(info, srv)
            save_info(info)
        for srv in info.servers.values():
            with steps.step(f"server {srv.region}") as s:
                wait_healthy(srv, srv.pid if srv.region in started else None)
                if srv.region not in started:
                    s.done(f"pid {srv.pid} at {srv.url} (already running)")
                    continue
                verb = "restarted" if started[srv.region] else "started"
                info.actions.append(f"{verb} server {srv.region} (pid {srv.pid})")
                s.done(f"pid {srv.pid} at {srv.url}")

        with steps.step(f"namespace {DEFAULT_NAMESPACE}") as s:
            if run_sync(_ensure_default_namespace(info)):
                info.actions.append(f"created namespace {DEFAULT_NAMESPACE}")
                s.done(f"created (active in {info.regions[0]})")
            else:
                s.done("exists")
        save_info(info)
    return info


def stack_down(
    state_dir: str | os.PathLike[str] | None = None, *, console: Console | None = None
) -> StackInfo | None:
    """Stop the region servers, the Kafka broker and PostgreSQL the state folder records.

    Servers go first (they use the other two), then Kafka, then PostgreSQL.
    Only recorded PIDs are signalled, and only after /proc shows they still run
    our server or broker (a PID the kernel gave to another program is left
    alone). Servers and the broker get SIGTERM, then SIGKILL after a grace period.

    Args:
        state_dir: The state folder (see :func:`resolve_state_dir`).
        console: Where to show progress; None keeps quiet.

    Returns:
        The stack with every PID cleared (``actions`` lists what was stopped),
        or None when the folder records no stack.
    """
    state = resolve_state_dir(state_dir)
    steps = Steps(console)
    if not (state / STACK_FILE).exists():
        return None  # nothing recorded: do not create a state folder just to say so
    with locked(state):
        info = load_info(state)
        if info is None:
            return None
        for srv in info.servers.values():
            with steps.step(f"server {srv.region}") as s:
                if srv.pid is not None and server_alive(info, srv):
                    how = terminate(srv.pid, SERVER_STOP_TIMEOUT_S)
                    info.actions.append(f"stopped server {srv.region} (pid {srv.pid}, {how})")
                    s.done(f"pid {srv.pid} {how}")
                else:
                    if srv.pid is not None:
                        reap(srv.pid)
                    s.done("not running")
                srv.pid = None
                save_info(info)
        kafka_down(info, steps)
        with steps.step("PostgreSQL") as s:
            pg = info.pg
            pid = pg.pid()
            if pid is not None:
                pg.stop()
                if pg.pid() is not None:
                    raise DevStackError(f"PostgreSQL (pid {pid}) did not stop; see {pg.log_file}")
                info.actions.append(f"stopped PostgreSQL (pid {pid})")
                s.done(f"pid {pid} stopped")
            else:
                s.done("not running")
            info.pg_pid = None
            save_info(info)
    return info


def stack_status(state_dir: str | os.PathLike[str] | None = None) -> list[Component]:
    """Every recorded component with its PID and whether it is alive.

    Returns:
        One :class:`Component` per component, empty when the folder records no stack.
    """
    info = load_info(resolve_state_dir(state_dir))
    if info is None:
        return []
    pg_pid = info.pg.pid()
    # postmaster.pid can outlive the postmaster; its PID then may name another program.
    pg_alive = (
        pg_pid is not None
        and pid_alive(pg_pid)
        and (Path((cmdline(pg_pid) or [""])[0]).name == "postgres")
    )
    rows = [
        Component(
            "postgres",
            pg_pid if pg_pid is not None else info.pg_pid,
            pg_alive,
            f"{LOOPBACK}:{info.pg_port}",
        )
    ]
    k = info.kafka
    kpid = kafka_pid(k) if k is not None else None
    rows.append(
        Component(
            "kafka",
            kpid if kpid is not None else (k.pid if k else None),
            kpid is not None,
            k.bootstrap if k else "not set up yet (run `baton dev up`)",
        )
    )
    for srv in info.servers.values():
        alive = srv.pid is not None and server_alive(info, srv)
        rows.append(Component(f"server {srv.region}", srv.pid, alive, srv.url))
    return rows


def load_stack(state_dir: str | os.PathLike[str] | None = None) -> StackInfo | None:
    """The stack recorded in the state folder, or None."""
    return load_info(resolve_state_dir(state_dir))


# --------------------------------------------------------------------------- async steps


async def _migrate(dsn: str) -> list[str]:
    conn = await db.connect(dsn)
    try:
        return await migrate_up(conn)
    finally:
        await conn.close()


async def _ensure_default_namespace(info: StackInfo) -> bool:
    # Imported here: the SDK client is only needed for this step.
    from worker.client import Client
    from worker.errors import NamespaceAlreadyExistsError, NamespaceNotFoundError

    active = info.regions[0]
    # Created through the active region; the namespace reaches the others by
    # replication (not running yet in the local stack).
    async with await Client.connect(info.url(active), retry_for_s=10.0) as client:
        try:
            await client.describe_namespace(DEFAULT_NAMESPACE)
            return False
        except NamespaceNotFoundError:
            pass
        try:
            await client.create_namespace(
                DEFAULT_NAMESPACE,
                regions=info.regions,
                active_region=active,
                description="created by `baton dev up`",
            )
        except NamespaceAlreadyExistsError:
            return False  # another `up` or operator created it in between
        return True
