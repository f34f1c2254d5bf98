"""HTTP routes of visibility and recovery: search attributes, list, count, reset."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from fastapi import FastAPI, Query
from pydantic import BaseModel
from starlette.responses import Response

from store import reset
from store.api_guard import JSON, WORKFLOW_ID_PARAM
from store.batch import service as batch_service
from store.context import Store
from store.namespaces import get_namespace
from store.visibility import listing, registry
from store.visibility.listing import MAX_PAGE_SIZE
from worker import wire

#: A list's page size as the server takes it (the document gives the bounds).
PAGE_SIZE: int = Query(100, ge=1, le=MAX_PAGE_SIZE)


def add_visibility_routes(
    app: FastAPI, store: Store, prefix: str, checked: Callable[[BaseModel], None]
) -> None:
    ns_path = f"{prefix}/namespaces/{{namespace}}"
    wf_path = f"{ns_path}/workflows/{WORKFLOW_ID_PARAM}"

    @app.get(f"{ns_path}/search-attributes", response_model=wire.SearchAttributesResponse)
    async def list_search_attributes(namespace: str) -> Response:
        async with store.pool.acquire() as conn:
            ns = await get_namespace(conn, namespace)
        return JSON({"attributes": registry.describe(ns)})

    @app.post(f"{ns_path}/search-attributes", response_model=wire.SearchAttributeChange)
    async def add_search_attribute(namespace: str, req: wire.SearchAttributeRequest) -> Response:
        return JSON(await registry.add_attribute(store, namespace, req.name, req.type))

    # any text: a name holding "/" is answered as a bad name, not a missing route
    @app.delete(
        f"{ns_path}/search-attributes/{{name:anytext}}", response_model=wire.SearchAttributeChange
    )
    async def remove_search_attribute(namespace: str, name: str) -> Response:
        return JSON(await registry.remove_attribute(store, namespace, name))

    @app.get(f"{ns_path}/workflows", response_model=wire.ListResponse)
    async def list_workflows(
        namespace: str,
        query: str | None = None,
        status: str | None = None,
        workflow_type: str | None = None,
        task_queue: str | None = None,
        started_after: datetime | None = None,
        started_before: datetime | None = None,
        workflow_id_prefix: str | None = None,
        page_size: int = PAGE_SIZE,
        page_token: str | None = None,
        include_system: bool = False,
    ) -> Response:
        return JSON(
            await listing.list_workflows(
                store,
                namespace,
                query=query,
                include_system=include_system,
                status=status,
                workflow_type=workflow_type,
                task_queue=task_queue,
                started_after=started_after,
                started_before=started_before,
                workflow_id_prefix=workflow_id_prefix,
                page_size=page_size,
                page_token=page_token,
            )
        )

    @app.get(f"{ns_path}/workflow-count", response_model=wire.CountResponse)
    async def count_workflows(
        namespace: str, query: str = "", group_by: str | None = None, include_system: bool = False
    ) -> Response:
        return JSON(
            await listing.count_runs(
                store, namespace, query, group_by=group_by, include_system=include_system
            )
        )

    @app.post(f"{wf_path}/reset", response_model=wire.ResetResponse)
    async def reset_workflow(namespace: str, workflow_id: str, req: wire.ResetRequest) -> Response:
        res = await reset.reset_workflow(store, namespace, workflow_id, req)
        return JSON(res.model_dump())

    # ------------------------------------------------------------------ batch jobs

    @app.post(f"{ns_path}/batches", status_code=201, response_model=wire.StartBatchResponse)
    async def start_batch(namespace: str, req: wire.StartBatchRequest) -> Response:
        # a signal job's input as a signal's: a payload no worker could decode
        # (or past the limit) would fail the job on every run it reaches
        checked(req)
        res = await batch_service.start_batch(store, namespace, req)
        return JSON(res, status_code=201)

    @app.get(f"{ns_path}/batches", response_model=wire.ListBatchesResponse)
    async def list_batches(
        namespace: str, page_size: int = PAGE_SIZE, page_token: str | None = None
    ) -> Response:
        return JSON(
            await batch_service.list_batches(
                store, namespace, page_size=page_size, page_token=page_token
            )
        )

    @app.get(f"{ns_path}/batches/{{job_id}}", response_model=wire.BatchJobInfo)
    async def describe_batch(namespace: str, job_id: str) -> Response:
        return JSON(await batch_service.describe_batch(store, namespace, job_id))

    @app.post(f"{ns_path}/batches/{{job_id}}/stop", response_model=wire.StopBatchResponse)
    async def stop_batch(namespace: str, job_id: str, req: wire.StopBatchRequest) -> Response:
        return JSON(await batch_service.stop_batch(store, namespace, job_id, req.reason))
