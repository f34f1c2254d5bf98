"""A server that stops sends the notifications of what it committed last.

Its writes notify from one sender connection once they committed
(store/notify.py); a stop that came before that send, or during it, must
still send them, or another server's waiter on the run (a result long-poll)
sleeps until its own timeout."""

from __future__ import annotations

import asyncio

import pytest

from store.notify import Notifier
from tests.conftest import Region

pytestmark = pytest.mark.integration


async def test_a_notifier_closed_before_its_first_send_still_sends(region: Region) -> None:
    sender = Notifier(region.dsn)
    other = Notifier(region.dsn)
    await sender.start()
    await other.start()
    try:
        async with other.subscribe("baton_closed_v1", "default/closing") as ev:
            sender.publish([("baton_closed_v1", "default/closing")])
            await sender.close()  # a graceful stop right after the commit
            await asyncio.wait_for(ev.wait(), 5)
    finally:
        await other.close()


async def test_a_notifier_closed_during_a_send_sends_it(region: Region) -> None:
    sender = Notifier(region.dsn)
    other = Notifier(region.dsn)
    await sender.start()
    await other.start()
    try:
        async with (
            other.subscribe("baton_history_v1", "default/first") as first,
            other.subscribe("baton_history_v1", "default/second") as second,
        ):
            sender.publish([("baton_history_v1", "default/first")])
            await asyncio.wait_for(first.wait(), 5)  # the sender is connected
            sender.publish([("baton_history_v1", "default/second")])
            await asyncio.sleep(0)  # the send loop takes the key and sends it
            await sender.close()
            await asyncio.wait_for(second.wait(), 5)
    finally:
        await other.close()
