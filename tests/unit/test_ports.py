"""Ports the local stack and the tests listen on stay out of the ephemeral range."""

from __future__ import annotations

from ops import kafka


def test_listening_ports_lie_below_the_ephemeral_range() -> None:
    low, high = kafka.ephemeral_range()
    assert 1024 <= low <= high
    ports = kafka.free_ports(20)
    assert len(set(ports)) == 20
    # A port in the ephemeral range can be taken as the local port of an
    # outgoing connection while its listener is down (a broker restarting).
    assert all(1024 <= p < low for p in ports), (ports, low)
