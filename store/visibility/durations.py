"""Durations as Temporal's list queries write them (``ExecutionDuration``)."""

from __future__ import annotations

import re
from datetime import timedelta

_DURATION_RE = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h|d)")
_DURATION_UNITS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
    "d": 86400.0,
}
_CLOCK_RE = re.compile(r"(\d+):([0-5]?\d):([0-5]?\d(?:\.\d+)?)")


def query_duration(text: str) -> timedelta | None:
    """``text`` as a duration: Go-style ("90s", "1h30m", "250ms"), "hh:mm:ss",
    or an integer of nanoseconds (the unit Temporal stores ExecutionDuration
    in: 1000 is a microsecond, not 1000 seconds); None if it is none of them."""
    try:
        if re.fullmatch(r"\d+", text):
            return timedelta(microseconds=int(text) // 1000)
        clock = _CLOCK_RE.fullmatch(text)
        if clock is not None:
            hours, minutes, seconds = clock.groups()
            return timedelta(hours=int(hours), minutes=int(minutes), seconds=float(seconds))
        pos, total = 0, 0.0
        for m in _DURATION_RE.finditer(text):
            if m.start() != pos:
                break
            total += float(m.group(1)) * _DURATION_UNITS[m.group(2)]
            pos = m.end()
        if pos != len(text) or not text:
            return None
        return timedelta(seconds=total)
    except (OverflowError, ValueError):
        return None
