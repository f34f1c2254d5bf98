"""The server's clock: real time, or in tests a clock that only moves forward on request.

Every time the server records (event times, timer fire times, the timer
loop's "now") comes from :func:`utcnow`. With ``test_clock = true`` in the
config, ``POST /v1/clock/advance`` moves it forward, so a test covers years of
schedule fires and long timers without sleeping. The clock belongs to the
server process: every region served by one process shares it, and a region
served by several processes needs each of them advanced (tests use one).
Workers take workflow time from the history, so they follow the server's
clock; activities keep real time.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

_offset = timedelta(0)
_enabled = False


def utcnow() -> datetime:
    return datetime.now(UTC) + _offset


def enable() -> None:
    """Allow :func:`advance` in this process (``test_clock = true``)."""
    global _enabled
    _enabled = True


def enabled() -> bool:
    return _enabled


def offset() -> timedelta:
    return _offset


def advance(by: timedelta) -> datetime:
    """Move the clock forward by ``by`` (never back: time the store recorded
    stays in the past); returns the new now."""
    global _offset
    if not _enabled:
        raise RuntimeError("the test clock is off: set test_clock = true in the config")
    if by < timedelta(0):
        raise ValueError("the test clock only moves forward")
    _offset += by
    return utcnow()


def reset() -> None:
    """Back to real time, off (the server that enabled the test clock stopped)."""
    global _offset, _enabled
    _offset, _enabled = timedelta(0), False
