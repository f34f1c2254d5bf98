"""Talking to a running Kafka broker: wait until it answers, create topics.

Both use aiokafka's admin client, so "ready" means the broker served a real
metadata request, not merely that its port is open. ``ops.kafka`` re-exports
the public names.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

# aiokafka ships no type information (no py.typed): see the mypy overrides.
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError, for_code

from ops.kafka_jars import KafkaError
from ops.kafka_process import broker_logs_tail, is_running

__all__ = ["create_topics", "wait_ready"]


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
                f"broker PID {pid} exited before it was ready{broker_logs_tail(data_dir)}"
            )
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise KafkaError(
                f"broker at {bootstrap} not ready after {timeout:.0f}s ({last_error})"
                f"{broker_logs_tail(data_dir)}"
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
