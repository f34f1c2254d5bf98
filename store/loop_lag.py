"""How late this server process's event loop runs what is ready to run.

Every request handler, long-poll, timer and replication loop of a server
process shares one asyncio event loop. When the loop is busy, a coroutine
whose I/O is done waits its turn behind everything else that is ready: the
publisher's next step behind a burst of task completions, say. That wait is
invisible in any one request's timing but adds to all of them, and to the
replication lag. A probe sleeps :data:`PERIOD_S` again and again and records
how much later than asked it woke, as a Prometheus histogram
(``baton_event_loop_lag_seconds``).
"""

from __future__ import annotations

import asyncio
import bisect
import time
from dataclasses import dataclass, field

#: How often the probe wakes (20 times a second costs a few microseconds each).
PERIOD_S = 0.05
#: Upper bounds of the histogram's buckets, in seconds.
BUCKETS_S = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


@dataclass
class LoopLag:
    """A histogram of the probe's late wake-ups (cumulative from the start)."""

    counts: list[int] = field(default_factory=lambda: [0] * (len(BUCKETS_S) + 1))
    total_s: float = 0.0
    samples: int = 0
    max_s: float = 0.0

    def record(self, late_s: float) -> None:
        late_s = max(0.0, late_s)
        self.counts[bisect.bisect_left(BUCKETS_S, late_s)] += 1
        self.total_s += late_s
        self.samples += 1
        self.max_s = max(self.max_s, late_s)

    def cumulative(self) -> list[tuple[str, int]]:
        """(le, count) of each bucket, ``+Inf`` last, as Prometheus wants them."""
        out, running = [], 0
        for bound, n in zip((*(f"{b:g}" for b in BUCKETS_S), "+Inf"), self.counts, strict=True):
            running += n
            out.append((bound, running))
        return out

    async def run(self) -> None:
        """Probe until cancelled."""
        while True:
            start = time.perf_counter()
            await asyncio.sleep(PERIOD_S)
            self.record(time.perf_counter() - start - PERIOD_S)


def percentile_from_buckets(
    before: list[tuple[str, int]], after: list[tuple[str, int]], q: float
) -> float | None:
    """The upper bound (seconds) of the bucket holding quantile ``q`` of the samples
    taken between two reads of the cumulative histogram; None without samples
    (``inf`` when it lies beyond the last bound)."""
    diff = [(le, a - b) for (le, a), (_, b) in zip(after, before, strict=True)]
    total = diff[-1][1]
    if total <= 0:
        return None
    for le, n in diff:
        if n >= q * total:
            return float(le)
    return float("inf")
