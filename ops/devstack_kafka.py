"""The local stack's Kafka broker: start or check it, create the topics, stop it.

The broker itself is :mod:`ops.kafka`; this module runs it as part of
``baton dev up/down/status``, with its PID and ports recorded in ``stack.json``
(:class:`KafkaInfo`).
"""

from __future__ import annotations

import time

# aiokafka ships no type information: see the mypy overrides in pyproject.toml.
from aiokafka.admin import AIOKafkaAdminClient

from ops import kafka
from ops.devstack_procs import Steps, cmdline, pid_alive, port_frees, reap, run_sync
from ops.devstack_state import (
    KAFKA_MAIN_CLASS,
    LOOPBACK,
    REPLICATION_PARTITIONS,
    STACK_FILE,
    DevStackError,
    KafkaInfo,
    StackInfo,
    save_info,
)

__all__ = ["KafkaInfo", "kafka_down", "kafka_pid", "kafka_up"]

#: How long the Kafka broker gets to answer a metadata request after it is started.
KAFKA_READY_TIMEOUT_S = 90.0
#: How long the Kafka broker gets to exit after SIGTERM before it is killed.
KAFKA_STOP_TIMEOUT_S = 30.0
#: How long topic creation (until every partition has a leader) may take.
KAFKA_TOPICS_TIMEOUT_S = 60.0


def _kafka_runs(k: KafkaInfo, pid: int) -> bool:
    """True when ``pid`` runs this stack's broker (``java ... kafka.Kafka STATE/kafka/...``)."""
    if not pid_alive(pid):
        return False
    argv = cmdline(pid)
    # The config path names this state folder: a recycled PID, or another
    # stack's broker, runs something else.
    return argv is not None and argv[-2:] == [KAFKA_MAIN_CLASS, str(k.server_properties)]


def kafka_pid(k: KafkaInfo) -> int | None:
    """The PID of this stack's running broker, or None.

    ``stack.json`` first; the broker's own PID file (written by
    :func:`ops.kafka.start` before ``stack.json`` is saved) covers an ``up``
    that died in between.
    """
    for pid in (k.pid, kafka.read_pid(k.data_dir)):
        if pid is not None and _kafka_runs(k, pid):
            return pid
    return None


def kafka_up(info: StackInfo, steps: Steps) -> None:
    """Resolve the jars, start the broker if it is not running, create the topics."""
    k = info.kafka
    assert k is not None  # planned by load_or_plan
    # ensure_jars caches into <root>/kafka-<version>/lib; say so when Maven must run.
    jar = (
        kafka.default_cache_root()
        / f"kafka-{kafka.KAFKA_VERSION}"
        / "lib"
        / f"kafka_2.13-{kafka.KAFKA_VERSION}.jar"
    )
    cached = jar.is_file()
    fetching = f"Kafka jars: Maven fetches Kafka {kafka.KAFKA_VERSION} (first run only)…"
    with steps.step("Kafka jars", None if cached else fetching) as s:
        t0 = time.monotonic()
        try:
            lib = kafka.ensure_jars()
        except kafka.KafkaError as exc:
            raise DevStackError(f"the Kafka jars could not be resolved: {exc}") from exc
        fetched = "" if cached else f", fetched with Maven in {time.monotonic() - t0:.0f} s"
        s.done(f"Kafka {kafka.KAFKA_VERSION} in {lib}{fetched}")

    with steps.step("Kafka broker") as s:
        pid = kafka_pid(k)
        if pid is not None:
            k.pid = pid
            try:
                # Running already: only make sure it answers.
                run_sync(kafka.wait_ready(k.bootstrap, KAFKA_READY_TIMEOUT_S, pid=pid))
            except kafka.KafkaError as exc:
                raise DevStackError(
                    f"the Kafka broker (pid {pid}) runs but does not answer: {exc}; "
                    f"see {k.log_file}, or `baton dev down` and up again"
                ) from exc
            s.done(f"pid {pid} at {k.bootstrap} (already running)")
        else:
            had_run = k.pid is not None
            if k.pid is not None:
                reap(k.pid)
            for name, port in (("client", k.port), ("controller", k.controller_port)):
                if not port_frees(port):
                    raise DevStackError(
                        f"Kafka {name} port {port} is taken by another process; "
                        f"stop it, or edit the port in {info.state_dir / STACK_FILE}"
                    )
            try:
                kafka.write_config(k.data_dir, k.port, k.controller_port, host=LOOPBACK)
                if kafka.format_storage(k.data_dir, lib):
                    info.actions.append(f"formatted Kafka storage in {k.data_dir}")
                k.pid = kafka.start(k.data_dir, lib)
            except kafka.KafkaError as exc:
                raise DevStackError(f"the Kafka broker did not start: {exc}") from exc
            save_info(info)
            try:
                run_sync(
                    kafka.wait_ready(
                        k.bootstrap, KAFKA_READY_TIMEOUT_S, pid=k.pid, data_dir=k.data_dir
                    )
                )
            except BaseException as exc:
                # Leave nothing half-started behind (a later up starts it afresh).
                kafka.stop(k.pid, KAFKA_STOP_TIMEOUT_S)
                k.pid = None
                save_info(info)
                if isinstance(exc, kafka.KafkaError):
                    raise DevStackError(f"the Kafka broker did not become ready: {exc}") from exc
                raise
            info.actions.append(
                f"{'restarted' if had_run else 'started'} Kafka broker (pid {k.pid})"
            )
            s.done(f"pid {k.pid} at {k.bootstrap}")
        save_info(info)

    with steps.step("Kafka topics") as s:
        topics = info.replication_topics
        try:
            created = run_sync(_ensure_topics(k.bootstrap, topics))
        except Exception as exc:  # ops.kafka.KafkaError or an aiokafka error
            raise DevStackError(f"the replication topics could not be created: {exc}") from exc
        if created:
            info.actions.append(
                f"created Kafka topic {created[0]} ({REPLICATION_PARTITIONS} partitions)"
                if len(created) == 1
                else f"created Kafka topics {', '.join(created)} "
                f"({REPLICATION_PARTITIONS} partitions each)"
            )
        s.done(
            f"{', '.join(topics)} ({REPLICATION_PARTITIONS} partitions"
            + (f"; created {len(created)})" if created else ")")
        )


async def _ensure_topics(bootstrap: str, topics: list[str]) -> list[str]:
    """Create the missing ``topics``; returns the ones created now."""
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap, request_timeout_ms=int(KAFKA_TOPICS_TIMEOUT_S * 1000)
    )
    try:
        await admin.start()
        existing = set(await admin.list_topics())
    finally:
        await admin.close()
    missing = [t for t in topics if t not in existing]
    # For every topic, not only the missing ones: it also waits until each
    # partition has a leader (a freshly restarted broker may not have elected
    # them yet). An existing topic is left as it is.
    await kafka.create_topics(
        bootstrap, topics, REPLICATION_PARTITIONS, timeout=KAFKA_TOPICS_TIMEOUT_S
    )
    return missing


def kafka_down(info: StackInfo, steps: Steps) -> None:
    """Stop the stack's broker if it runs (the ``Kafka broker`` step of ``down``)."""
    if info.kafka is None:
        return
    with steps.step("Kafka broker") as s:
        k = info.kafka
        kpid = kafka_pid(k)
        if kpid is not None:
            try:
                kafka.stop(kpid, KAFKA_STOP_TIMEOUT_S)
            except kafka.KafkaError as exc:
                raise DevStackError(f"Kafka broker (pid {kpid}) did not stop: {exc}") from exc
            info.actions.append(f"stopped Kafka broker (pid {kpid})")
            s.done(f"pid {kpid} stopped")
        else:
            if k.pid is not None:
                reap(k.pid)
            s.done("not running")
        k.pid = None
        save_info(info)
