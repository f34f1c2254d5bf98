"""HTTP routes of pause: a workflow stops before it makes more progress, and goes on."""

from __future__ import annotations

from fastapi import FastAPI, Path
from starlette.responses import Response

from store import activity_control, pause
from store.api_guard import JSON, WORKFLOW_ID_PARAM
from store.context import Store
from worker import wire

#: What may be done to an activity (the route checks it; the document lists it).
ACTION: str = Path(json_schema_extra={"enum": ["pause", "unpause", "reset"]})


def add_pause_routes(app: FastAPI, store: Store, prefix: str) -> None:
    wf_path = f"{prefix}/namespaces/{{namespace}}/workflows/{WORKFLOW_ID_PARAM}"

    @app.post(f"{wf_path}/pause", response_model=wire.PauseResponse)
    async def pause_workflow(namespace: str, workflow_id: str, req: wire.PauseRequest) -> Response:
        return JSON(await pause.pause_workflow(store, namespace, workflow_id, req))

    @app.post(f"{wf_path}/unpause", response_model=wire.PauseResponse)
    async def unpause_workflow(
        namespace: str, workflow_id: str, req: wire.PauseRequest
    ) -> Response:
        return JSON(await pause.unpause_workflow(store, namespace, workflow_id, req))

    @app.post(
        f"{prefix}/namespaces/{{namespace}}/activities/{{action}}",
        response_model=wire.ActivityControlResponse,
    )
    async def control_activity(
        namespace: str, req: wire.ActivityControlRequest, action: str = ACTION
    ) -> Response:
        """pause, unpause or reset one activity of a workflow's current run (the
        ids travel in the body: a workflow id may hold any character)."""
        return JSON(
            await activity_control.control_activity(
                store, namespace, req.workflow_id, req.activity_id, action, req
            )
        )
