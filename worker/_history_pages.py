"""Reading a run's history page by page, the next page on its way while one is applied.

A worker without the run in its cache replays the whole history: for a query
or a workflow task. Fetched as one piece, a long history costs the sum of
its parts: the server building the JSON, the worker decoding it, then the
replay. Read in pages of :data:`PAGE_EVENTS`, with the request for page
``k + 1`` sent before page ``k`` is decoded and handed over, the server and
PostgreSQL build the next page while the worker decodes and replays this
one: the wait is about the longer of the two, not their sum.

Each page is decoded on its own (the codec, if any, once per page), and the
walk that restores failure text hidden by a codec runs only on pages whose
raw JSON holds such a failure.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from typing import Any

import orjson

from worker._gc import collector_paused, collector_resumed
from worker._history import events_from_wire
from worker._http import wf_path
from worker._payloads import decode_events, may_hide_failure_text
from worker.client import Client
from worker.converter import DataConverter
from worker.wire import HistoryEvent

#: Events per page. Small enough that the first page comes back quickly and
#: the pages overlap with their replay, large enough that the requests cost
#: little next to the events (about 300 KiB of JSON for signals).
PAGE_EVENTS = 1_000

#: How long a replay waits for a page with the collector paused (see ``_page``).
PAUSED_WAIT_S = 0.05


async def history_pages(
    client: Client,
    task: dict[str, Any],
    upto: int,
    converter: DataConverter,
    *,
    page_events: int | None = None,
) -> AsyncGenerator[list[HistoryEvent], None]:
    """The events of ``task``'s run before event ``upto``, decoded and typed, a page at a time.

    The pages are contiguous from event 1 and end at event ``upto - 1`` or at
    the end of the history, whichever is first.
    """
    path = wf_path(task["namespace"], task["workflow_id"], "/history")
    size = page_events or PAGE_EVENTS

    def fetch(first: int, count: int) -> asyncio.Future[bytes]:
        return asyncio.ensure_future(
            client.call(
                "GET",
                path,
                params={"run_id": task["run_id"], "from_event_id": first, "page_size": count},
                raw=True,
            )
        )

    # The first page is smaller: nothing overlaps with waiting for it.
    pending = fetch(1, max(1, size // 4)) if upto > 1 else None
    try:
        while pending is not None:
            raw = await _page(pending)
            pending = None
            with collector_paused():  # thousands of objects at once
                events = [e for e in orjson.loads(raw)["events"] if e["event_id"] < upto]
            if not events:
                return
            following = events[-1]["event_id"] + 1
            if following < upto:
                pending = fetch(following, size)  # built by the server while this page is applied
                await asyncio.sleep(0)  # let the request go out before this page's work
            yield await typed_page(events, raw, converter)
    finally:
        if pending is not None:  # the caller stopped early: the page ahead is not needed
            pending.cancel()
            pending.add_done_callback(_consume)


async def typed_page(
    events: list[dict[str, Any]], raw: bytes, converter: DataConverter
) -> list[HistoryEvent]:
    """A page's wire ``events`` decoded in place and typed; ``raw`` is the body
    they were parsed from (it says whether a failure's text is hidden)."""
    await decode_events(events, converter, hidden_text=may_hide_failure_text(raw))
    with collector_paused():
        return events_from_wire(events)


async def _page(pending: asyncio.Future[bytes]) -> bytes:
    """The page ``pending`` will be. The caller replays with the collector
    paused; a page that keeps it waiting longer than :data:`PAUSED_WAIT_S`
    (a slow or unreachable server, the client retrying) is waited for with
    the collector running."""
    done, _ = await asyncio.wait({pending}, timeout=PAUSED_WAIT_S)
    if not done:
        with collector_resumed():
            await asyncio.wait({pending})
    return pending.result()


def _consume(fut: asyncio.Future[bytes]) -> None:
    # A page that failed after all is not news to anyone: read it so asyncio
    # does not log it as never retrieved.
    if not fut.cancelled():
        fut.exception()
