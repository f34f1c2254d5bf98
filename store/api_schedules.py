"""HTTP routes of schedules, and of the test clock that drives them in tests."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from fastapi import FastAPI, Query
from pydantic import BaseModel, ValidationError
from starlette.responses import Response

from store import clock, schedule_view, schedules
from store.api_guard import JSON
from store.context import Store
from store.errors import ScheduleNotFound, TestClockOff
from store.run_lock import send_to_active_region
from store.sql import QUERIES as Q
from worker import wire


def action_input(schedule: Any) -> list[wire.Payload]:
    """The payloads of a definition's action input, to check as a start's
    (base64, size): a schedule stores them as sent and starts a run with them
    at every fire, so one no worker could decode would fail every run it
    starts. An item that is no payload at all is left to the definition's own
    check, which names it."""
    action = schedule.get("action") if isinstance(schedule, dict) else None
    items = action.get("input") if isinstance(action, dict) else None
    payloads = []
    for item in items if isinstance(items, list) else []:
        try:
            payloads.append(wire.Payload.model_validate(item))
        except ValidationError:
            continue
    return payloads


def add_schedule_routes(
    app: FastAPI, store: Store, prefix: str, checked: Callable[[BaseModel], None]
) -> None:
    path = f"{prefix}/namespaces/{{namespace}}/schedules"

    def checked_input(schedule: Any) -> None:
        for payload in action_input(schedule):
            checked(payload)  # base64 and this server's payload size limit

    @app.post(path, status_code=201, response_model=wire.CreateScheduleResponse)
    async def create_schedule(namespace: str, req: wire.CreateScheduleRequest) -> Response:
        checked_input(req.schedule)
        return JSON(await schedules.create_schedule(store, namespace, req), status_code=201)

    @app.get(path, response_model=wire.ListSchedulesResponse)
    async def list_schedules(
        namespace: str,
        query: str = "",
        page_size: int = Query(100, ge=1, le=1000),
        page_token: str | None = None,
    ) -> Response:
        return JSON(
            await schedule_view.list_schedules(
                store, namespace, query=query, page_size=page_size, page_token=page_token
            )
        )

    @app.get(f"{path}/{{schedule_id}}", response_model=wire.ScheduleDescription)
    async def describe_schedule(namespace: str, schedule_id: str) -> Response:
        try:
            return JSON(await schedule_view.describe_schedule(store, namespace, schedule_id))
        except ScheduleNotFound as exc:
            # a standby the create has not reached yet sends the caller on
            async with store.pool.acquire() as conn:
                await send_to_active_region(store, conn, namespace, exc)
            raise

    @app.put(f"{path}/{{schedule_id}}", response_model=wire.UpdateScheduleResponse)
    async def update_schedule(
        namespace: str, schedule_id: str, req: wire.UpdateScheduleRequest
    ) -> Response:
        checked_input(req.schedule)
        return JSON(await schedules.update_schedule(store, namespace, schedule_id, req))

    @app.delete(f"{path}/{{schedule_id}}", response_model=wire.DeleteScheduleResponse)
    async def delete_schedule(
        namespace: str,
        schedule_id: str,
        reason: str = Query("", max_length=1000),
        request_id: str | None = Query(None, min_length=1, max_length=256),
    ) -> Response:
        return JSON(
            await schedules.delete_schedule(store, namespace, schedule_id, reason, request_id)
        )

    @app.post(f"{path}/{{schedule_id}}/pause", response_model=wire.PauseScheduleResponse)
    async def pause_schedule(
        namespace: str, schedule_id: str, req: wire.PauseScheduleRequest
    ) -> Response:
        return JSON(await schedules.pause_schedule(store, namespace, schedule_id, req))

    @app.post(f"{path}/{{schedule_id}}/unpause", response_model=wire.UnpauseScheduleResponse)
    async def unpause_schedule(
        namespace: str, schedule_id: str, req: wire.UnpauseScheduleRequest
    ) -> Response:
        return JSON(await schedules.unpause_schedule(store, namespace, schedule_id, req))

    @app.post(f"{path}/{{schedule_id}}/trigger", response_model=wire.TriggerScheduleResponse)
    async def trigger_schedule(
        namespace: str, schedule_id: str, req: wire.TriggerScheduleRequest
    ) -> Response:
        return JSON(await schedules.trigger_schedule(store, namespace, schedule_id, req))

    @app.post(f"{path}/{{schedule_id}}/backfill", response_model=wire.BackfillScheduleResponse)
    async def backfill_schedule(
        namespace: str, schedule_id: str, req: wire.BackfillScheduleRequest
    ) -> Response:
        return JSON(await schedules.backfill_schedule(store, namespace, schedule_id, req))

    # ------------------------------------------------------------------ test clock

    @app.get(f"{prefix}/clock", response_model=wire.ClockResponse)
    async def get_clock() -> Response:
        return JSON(_clock_view())

    @app.post(f"{prefix}/clock/advance", response_model=wire.ClockResponse)
    async def advance_clock(req: wire.AdvanceClockRequest) -> Response:
        if not clock.enabled():
            raise TestClockOff()
        clock.advance(timedelta(seconds=req.seconds))
        async with store.pool.acquire() as conn:
            # wake the region's timer loop now, not at its next idle check
            await conn.execute(Q["notify_timers"])
        return JSON(_clock_view())


def _clock_view() -> dict[str, object]:
    return {
        "now": clock.utcnow().isoformat().replace("+00:00", "Z"),
        "test_clock": clock.enabled(),
        "offset_s": clock.offset().total_seconds(),
    }
