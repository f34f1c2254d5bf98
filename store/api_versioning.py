"""HTTP routes of worker versioning: deployments, their versions, run overrides."""

from __future__ import annotations

from fastapi import FastAPI
from starlette.responses import Response

from store import deployments
from store.api_guard import JSON, WORKFLOW_ID_PARAM
from store.context import Store
from worker import wire


def add_versioning_routes(app: FastAPI, store: Store, prefix: str) -> None:
    ns_path = f"{prefix}/namespaces/{{namespace}}"
    dep_path = f"{ns_path}/deployments/{{deployment}}"

    @app.get(f"{ns_path}/deployments", response_model=wire.ListDeploymentsResponse)
    async def list_deployments(namespace: str) -> Response:
        return JSON({"deployments": await deployments.list_deployments(store, namespace)})

    @app.get(dep_path, response_model=wire.DeploymentDescription)
    async def describe_deployment(namespace: str, deployment: str) -> Response:
        return JSON(await deployments.describe_deployment(store, namespace, deployment))

    @app.post(f"{dep_path}/current", response_model=wire.SetDeploymentVersionResponse)
    async def set_current(
        namespace: str, deployment: str, req: wire.SetDeploymentVersionRequest
    ) -> Response:
        return JSON(await deployments.set_version(store, namespace, deployment, "current", req))

    @app.post(f"{dep_path}/ramping", response_model=wire.SetDeploymentVersionResponse)
    async def set_ramping(
        namespace: str, deployment: str, req: wire.SetDeploymentVersionRequest
    ) -> Response:
        return JSON(await deployments.set_version(store, namespace, deployment, "ramping", req))

    @app.post(f"{ns_path}/pollers/stopped", response_model=wire.EmptyResponse)
    async def pollers_stopped(namespace: str, req: wire.PollersStoppedRequest) -> Response:
        """A worker that shuts down: its task queue (and version) has one poller fewer now."""
        await deployments.pollers_stopped(store, namespace, req)
        return JSON({})

    @app.post(
        f"{ns_path}/workflows/{WORKFLOW_ID_PARAM}/versioning",
        response_model=wire.UpdateVersioningResponse,
    )
    async def update_versioning(
        namespace: str, workflow_id: str, req: wire.UpdateVersioningRequest
    ) -> Response:
        return JSON(await deployments.update_versioning(store, namespace, workflow_id, req))
