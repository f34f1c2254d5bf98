"""Sample values on /metrics are exact (store/metrics.py)."""

from __future__ import annotations

from decimal import Decimal

from store.loop_lag import LoopLag
from store.matching import Matcher
from store.metrics import _family, render_process_metrics
from store.run_cache import RunCache


def sample(text: str, prefix: str) -> str:
    (line,) = [x for x in text.splitlines() if x.startswith(prefix)]
    return line.rsplit(" ", 1)[1]


def test_a_counter_past_a_million_keeps_every_digit() -> None:
    # `:g` kept six significant digits: 1234567 hits read 1.23457e+06, so a
    # counter moved in steps of ten (of a hundred past ten million) and rate()
    # over it was wrong.
    cache = RunCache(10)
    cache.stats.hits = 1_234_567
    matcher = Matcher()
    matcher.matched = 98_765_432
    text = render_process_metrics("region-a", cache, matcher, {"accepted": 10_000_001}, LoopLag())
    hit = [x for x in text.splitlines() if 'outcome="hit"' in x]
    assert hit[0].endswith(" 1234567")
    assert sample(text, "baton_sync_matched_total{") == "98765432"
    accepted = [x for x in text.splitlines() if 'outcome="accepted"' in x]
    assert accepted[0].endswith(" 10000001")


def test_gauges_of_any_kind_render_exactly() -> None:
    lines = _family(
        "baton_x",
        "x",
        [
            ('{k="int"}', 7_654_321),
            ('{k="decimal"}', Decimal("123456789012")),
            ('{k="seconds"}', 1234567.125),
            ('{k="small"}', 0.000123),
            ('{k="nan"}', float("nan")),
            ('{k="inf"}', float("-inf")),
        ],
    )
    values = [x.rsplit(" ", 1)[1] for x in lines[2:]]
    assert values == ["7654321", "123456789012", "1234567.125", "0.000123", "NaN", "-Inf"]
