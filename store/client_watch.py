"""Whether a long-poll's client is still there.

A worker that dies (or shuts down) leaves its long-polls behind in the server:
each sleeps until its wait ends, up to half a minute. Asleep, a poll is offered
to starts as an idle poller (:mod:`store.matching`), so a start could hand its
run's first workflow task to a client that is gone, and the task would wait
for its timeout. :class:`ClientWatch` waits on the request's ASGI ``receive``
(which, once the body is read, answers only when the client disconnects) and
wakes the poll at once, which then ends without taking anything.
"""

from __future__ import annotations

import asyncio
import contextlib

from starlette.types import Receive


class ClientWatch:
    """A long-poll's client, watched from its request's ``receive``.

    Called, it answers whether the client went away (the check long-polls
    already make); :meth:`wake_when_gone` also sets an event then.
    """

    def __init__(self, receive: Receive) -> None:
        self._receive = receive
        self._task: asyncio.Task[None] | None = None
        self._wake: list[asyncio.Event] = []
        self.gone = False

    async def __call__(self) -> bool:
        if self._task is None:
            self._start()
            await asyncio.sleep(0)  # a disconnect already known is seen now
        return self.gone

    def wake_when_gone(self, ev: asyncio.Event) -> None:
        """Set ``ev`` when the client goes away (at once if it has)."""
        self._wake.append(ev)
        if self.gone:
            ev.set()
        elif self._task is None:
            self._start()

    def close(self) -> None:
        """Stop watching (the request is answered)."""
        if self._task is not None and not self._task.done():
            self._task.cancel()

    def __enter__(self) -> ClientWatch:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _start(self) -> None:
        self._task = asyncio.ensure_future(self._watch())

    async def _watch(self) -> None:
        # (cancelled: the poll was answered; an error of receive: nothing known)
        with contextlib.suppress(asyncio.CancelledError, Exception):
            while (await self._receive())["type"] != "http.disconnect":
                pass  # (more body: a well-formed poll has none left)
            self.gone = True
            for ev in self._wake:
                ev.set()
