"""Pausing Python's cyclic garbage collector while a whole history is replayed.

Reading and replaying a long history allocates hundreds of thousands of
objects that live until the replay ends (decoded events, typed events, the
workflow's own state). Each 700 allocations start a collection, and every
so often a full one walks every object the process holds: a replay of 10,000
events measured 1.5-2x slower with the collector on than off, and its time
varied with whatever else the worker held. The collector is paused for the
replay and started again after it (reference counting still frees everything
that is not a cycle), as long-lived Python services do around bulk loads.

Pauses nest and overlap (replays of several runs may interleave at their
awaits): the collector runs again when the last one ends. A process that
turned the collector off itself keeps it off.
"""

from __future__ import annotations

import contextlib
import gc
import threading
from collections.abc import Iterator

_holders = 0
# Clients may run on event loops in several threads of one process.
_lock = threading.Lock()


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """Keep the cyclic garbage collector off for the body of the ``with``."""
    global _holders
    with _lock:
        if _holders == 0 and not gc.isenabled():
            ours = False  # off already, and not by us: leave it to whoever did it
        else:
            ours = True
            _holders += 1
            gc.disable()
    try:
        yield
    finally:
        if ours:
            with _lock:
                _holders -= 1
                if _holders == 0:
                    gc.enable()


@contextlib.contextmanager
def collector_resumed() -> Iterator[None]:
    """Inside :func:`collector_paused`: give one pause up for the body (a wait
    of unknown length, on the network), and take it again after.

    If other pauses are still held the collector stays off; if the process
    turned it off itself, this changes nothing.
    """
    global _holders
    with _lock:
        ours = _holders > 0
        if ours:
            _holders -= 1
            if _holders == 0:
                gc.enable()
    try:
        yield
    finally:
        if ours:
            with _lock:
                if _holders == 0:
                    gc.disable()
                _holders += 1
