"""The server's event-loop lag histogram on /metrics: what ready coroutines wait."""

from __future__ import annotations

import asyncio
import re
import time

import httpx
import pytest

from store.loop_lag import BUCKETS_S, LoopLag, percentile_from_buckets
from tests.conftest import Region

pytestmark = pytest.mark.integration
NAME = "baton_event_loop_lag_seconds"


def buckets(text: str) -> list[tuple[str, int]]:
    return [
        (m.group(1), int(m.group(2)))
        for m in re.finditer(NAME + r'_bucket\{[^}]*le="([^"]+)"\} (\d+)', text)
    ]


async def test_a_blocked_event_loop_shows_in_the_lag_histogram(region: Region) -> None:
    async with httpx.AsyncClient() as http:
        await asyncio.sleep(0.3)  # some probes on an idle loop
        before = buckets((await http.get(f"{region.url}/metrics")).text)
        assert [le for le, _ in before] == [*(f"{b:g}" for b in BUCKETS_S), "+Inf"]
        assert before[-1][1] > 0
        # the in-process server shares this loop: hold it as a CPU-bound handler would
        time.sleep(0.3)  # noqa: ASYNC251 (blocking the loop is the point)
        await asyncio.sleep(0.2)
        text = (await http.get(f"{region.url}/metrics")).text
    after = buckets(text)
    late = dict(after)["+Inf"] - dict(after)["0.25"] - (dict(before)["+Inf"] - dict(before)["0.25"])
    assert late >= 1, text
    assert f"{NAME}_count" in text and f"{NAME}_sum" in text
    assert "# TYPE baton_event_loop_lag_seconds histogram" in text


def test_percentiles_come_from_the_samples_between_two_reads() -> None:
    lag = LoopLag()
    for _ in range(98):
        lag.record(0.0005)
    before = lag.cumulative()
    for _ in range(98):
        lag.record(0.003)
    lag.record(0.07)
    lag.record(-0.001)  # a probe that woke early counts as on time
    after = lag.cumulative()
    assert percentile_from_buckets(before, after, 0.5) == 0.005
    assert percentile_from_buckets(before, after, 0.995) == 0.1
    assert percentile_from_buckets(after, after, 0.5) is None
    lag.record(9.0)
    assert percentile_from_buckets(after, lag.cumulative(), 0.99) == float("inf")
    assert lag.max_s == 9.0 and lag.samples == 199
