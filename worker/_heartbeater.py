"""An activity attempt's heartbeats: throttled, sent, and what their answers say."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

from worker._limits import heartbeat_too_large, largest_over
from worker.errors import (
    ApplicationError,
    BatonError,
    InvalidArgumentError,
    PayloadTooLargeError,
    TaskNotFoundError,
)

if TYPE_CHECKING:
    from worker._activity_runner import ActivityRunner

log = logging.getLogger("baton.worker")


class _Heartbeater:
    """Sends an attempt's heartbeats, throttled, and learns of cancellation.

    Attributes:
        cancelled: The server asked for the activity to be canceled
            (``cancel_requested``); the attempt is cancelled and reported so.
        stopping: The attempt is being stopped, whatever the reason (the
            server's cancel, a task gone, a worker's shutdown): what
            ``activity.is_cancelled()`` reads, since a sync activity's thread
            can learn of it no other way.
        lost: The server no longer knows the task (it timed out, was retried,
            the run closed or the namespace moved): the attempt is cancelled
            and nothing is reported, since no cancel was asked for.
    """

    def __init__(
        self,
        worker: ActivityRunner,
        token: str,
        heartbeat_s: float | None,
        *,
        start_to_close_s: float | None = None,
        schedule_to_close_s: float | None = None,
    ):
        self.worker = worker
        self.token = token
        self.interval = min(max((heartbeat_s or 30.0) * 0.5, 0.05), 10.0)
        self.cancelled = asyncio.Event()
        self.stopping = asyncio.Event()
        self.lost = False
        #: Why the attempt was stopped because its heartbeat details were
        #: refused (they cannot be encoded, or the server will not take them).
        self.refused: ApplicationError | None = None
        #: The attempt's info flags (``paused``), set from heartbeat responses.
        self.flags: dict[str, bool] = {}
        # Deadlines measured from when this process got the task, which is
        # after the server started (and scheduled) the attempt: once one of
        # them passes here, it has passed on the server too.
        self._received = time.monotonic()
        self._heartbeat_s = heartbeat_s
        self._budget_s = min(
            (s for s in (start_to_close_s, schedule_to_close_s) if s is not None), default=None
        )
        self._last_acked: float | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.attempt: asyncio.Future[Any] | None = None
        self._pending: tuple[Any, ...] | None = None
        self._sender: asyncio.Task[None] | None = None
        self._last_sent = 0.0
        self._in_flight = False  # a heartbeat request is on its way
        self._flushing = False  # the attempt is over: ``flush`` sends what is pending
        self._watch: asyncio.TimerHandle | None = None  # see ``watch``

    def record(self, details: tuple[Any, ...]) -> None:
        """Called by ``activity.heartbeat`` (possibly from a thread)."""
        if self.loop is None:
            return
        self.loop.call_soon_threadsafe(self._record, details)

    def _record(self, details: tuple[Any, ...]) -> None:
        self._pending = details
        if self._flushing:
            return  # the flush sends it
        if self._sender is None or self._sender.done():
            self._sender = asyncio.create_task(self._send_soon())

    async def _send_soon(self) -> None:
        wait = self._last_sent + self.interval - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        await self._send_pending()

    async def flush(self) -> None:
        """Send the details the throttle still holds back, now, and wait for the answer.

        Called when an attempt fails: the server starts the next attempt when
        the failure is reported, with the details recorded by then. A
        heartbeat already on its way is waited for, not sent twice; one that
        ``stop`` cut off is sent again.
        """
        self._flushing = True
        sender = self._sender
        if sender is not None and not sender.done():
            if not self._in_flight:
                sender.cancel()  # asleep in the throttle: its details are still pending
            await asyncio.wait([sender])
        if self._pending is not None and not self.lost:
            try:
                await self._send_pending()
            except Exception as exc:  # the failure report matters more than its details
                log.warning("could not send the last heartbeat of a failed attempt: %s", exc)

    async def _send_pending(self) -> None:
        details, self._pending = self._pending, None
        if details is None:
            return
        self._last_sent = time.monotonic()
        self._in_flight = True
        try:
            try:
                encoded = await self.worker.converter.encode(list(details))
            except (TypeError, ValueError) as exc:  # a codec's own; the converter's are typed
                raise InvalidArgumentError(str(exc)) from exc
            payloads = [p.model_dump() for p in encoded]
            res = await self.worker._call(
                "/activity-tasks/heartbeat", {"task_token": self.token, "details": payloads}
            )
        except asyncio.CancelledError:
            if self._pending is None:
                self._pending = details  # it may not have arrived: a flush sends it again
            raise
        except TaskNotFoundError as exc:
            # Not a cancel request: nobody asked for one, and the server must
            # not record the attempt as canceled. Stop working on it, quietly.
            log.info("activity task is gone, stopping the attempt: %s", exc.message)
            self.give_up()
            return
        except (InvalidArgumentError, PayloadTooLargeError) as exc:
            # Details that cannot be sent never will be: working on would
            # leave the next attempt without them (and, with a heartbeat
            # timeout, end this one for no visible reason). As in Temporal's
            # SDK, the attempt fails with the reason; details over the
            # payload limit fail the activity for good, as Temporal's server
            # does: every attempt would send them again.
            self.refused = ApplicationError(
                f"the activity's heartbeat details were refused: {exc.message}",
                type=type(exc).__name__,
            )
            if isinstance(exc, PayloadTooLargeError):
                limit = await self.worker._payload_limit(exc)
                size = None if limit is None else largest_over(payloads, limit)
                self.refused = heartbeat_too_large(exc.message, size, limit)
            self._stop_attempt()
            return
        except BatonError as exc:
            log.warning("heartbeat failed: %s", exc)
            return
        finally:
            self._in_flight = False
        self._last_acked = time.monotonic()
        if res:
            self.flags["paused"] = bool(res.get("paused"))
        if res and res.get("cancel_requested") and not self.cancelled.is_set():
            self.cancelled.set()
            self._stop_attempt()
        if self._pending is not None and not self._flushing:
            self._sender = asyncio.create_task(self._send_soon())

    def timed_out(self) -> bool:
        """Whether the server has surely timed the attempt out by now.

        Its start-to-close or schedule-to-close time has passed, or its
        heartbeat timeout has since the last heartbeat the server confirmed
        (and none is on its way).
        """
        now = time.monotonic()
        if self._budget_s is not None and now - self._received > self._budget_s:
            return True
        if self._heartbeat_s is None or (self._sender is not None and not self._sender.done()):
            return False
        last = self._received if self._last_acked is None else self._last_acked
        return now - last > self._heartbeat_s

    def watch(self) -> None:
        """Give the attempt up once the server has surely timed it out.

        The server starts the retry then (or closes the activity): an attempt
        left running would do its work beside the next one, or for nobody,
        and a sync one would never see ``is_cancelled()``.
        """
        if self.loop is None or self.stopping.is_set():
            return
        if self.timed_out():
            log.info("stopping an activity attempt past its timeout")
            self.give_up()
            return
        deadlines = []
        if self._budget_s is not None:
            deadlines.append(self._received + self._budget_s)
        if self._heartbeat_s is not None:
            last = self._received if self._last_acked is None else self._last_acked
            deadlines.append(last + self._heartbeat_s)
        if deadlines:
            # a deadline passed with a heartbeat on its way: look again soon
            delay = max(min(deadlines) - time.monotonic(), 0.05)
            self._watch = self.loop.call_later(delay, self.watch)

    def give_up(self) -> None:
        """Stop an attempt the server no longer waits for, reporting nothing."""
        self.lost = True
        self._stop_attempt()

    def _stop_attempt(self) -> None:
        self.stopping.set()
        if self.attempt is not None and not self.attempt.done():
            self.attempt.cancel()

    def stop(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
        if self._sender is not None and not self._sender.done():
            self._sender.cancel()
