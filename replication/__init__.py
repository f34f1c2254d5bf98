"""Cross-region replication of workflow histories through Kafka."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from replication.applier import Applier
from replication.fence import PeerFence
from replication.publisher import Publisher, topic_for
from replication.versions import next_version, region_of, wins
from store.context import Store


def server_loops() -> list[Callable[[Store], Coroutine[Any, Any, None]]]:
    """The replication loops every region server runs (publisher, applier, peer fence)."""
    return [
        lambda store: Publisher(store).run(),
        lambda store: Applier(store).run(),
        lambda store: PeerFence(store).run(),
    ]


def server_checks() -> list[Callable[[Store], Coroutine[Any, Any, None]]]:
    """What a region server checks before it runs its loops and serves: whether
    a peer holds a namespace it thinks active here under a newer version."""
    return [lambda store: PeerFence(store).check_at_start()]


__all__ = [
    "Applier",
    "PeerFence",
    "Publisher",
    "next_version",
    "region_of",
    "server_checks",
    "server_loops",
    "topic_for",
    "wins",
]
