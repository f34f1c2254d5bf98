"""The HTTP API of a region (FastAPI; OpenAPI at /openapi.json, docs at /docs).

Every error answers ``{"error": {"code", "message", "retryable", "details"}}``
with the HTTP status of its store error class; the code is stable.
"""

from __future__ import annotations

import logging
from functools import partial
from typing import Any, Literal

import asyncpg
from fastapi import FastAPI, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Match
from starlette.types import Receive, Scope, Send

from store import activity_tasks as acts
from store import messages, starts, tasks, workflows
from store.api_fast import HotRoutes, member_check, unexpected_error
from store.api_guard import (
    JSON,
    WORKFLOW_ID_PARAM,
    GuardedRoute,
    RequestGuard,
    body_problem,
)
from store.api_openapi import ERROR_RESPONSES, answer_head, install_openapi
from store.api_pause import add_pause_routes
from store.api_payloads import walk_payload_sizes
from store.api_schedules import add_schedule_routes
from store.api_versioning import add_versioning_routes
from store.api_visibility import add_visibility_routes
from store.client_watch import ClientWatch
from store.context import Store
from store.errors import (
    DATABASE_UNAVAILABLE,
    ConflictNotFound,
    InvalidArgument,
    MalformedRequest,
    MethodNotAllowed,
    NamespaceAlreadyExists,
    NamespaceNotActive,
    RouteNotFound,
    StoreError,
)
from store.health import METRICS_TIMEOUT_S, bounded, check_database
from store.metrics import render_metrics, render_process_metrics
from store.namespaces import Namespace, get_namespace, update_namespace
from store.sql import QUERIES as Q
from store.task_queues import add_task_queue_routes
from worker import wire

log = logging.getLogger("baton.api")
SERVER_VERSION = "0.1.0"
PREFIX = "/api/v1"


def error_response(exc: StoreError) -> JSON:
    body = {
        "error": {
            "code": exc.code.value,
            "message": exc.message,
            "retryable": exc.retryable,
            "details": exc.details,
        }
    }
    return JSON(body, status_code=exc.http_status)


class _BatonApp(FastAPI):
    """FastAPI behind the request guard.

    The guard is in front of FastAPI's own layers (error and telemetry
    middleware, its body limit), not inside them: the hot routes it answers
    never enter them, which is about a tenth of a server's CPU under load.
    Every other request goes on through all of FastAPI as before.
    """

    guard: RequestGuard | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.guard is None:
            await super().__call__(scope, receive, send)
        else:
            await self.guard(scope, receive, send)


def create_app(store: Store) -> FastAPI:
    """The FastAPI application serving one region."""
    app = _BatonApp(
        title="Baton",
        version=SERVER_VERSION,
        description="Durable-execution workflow store: API of one region.",
        responses=ERROR_RESPONSES,
    )
    install_openapi(app)
    app.state.store = store
    app.router.route_class = GuardedRoute
    limit = store.config.max_payload_bytes
    # A body may carry several payloads; refuse absurd bodies before parsing them.
    body_limit = limit * 4 + 1024 * 1024

    def checked(model: BaseModel) -> None:
        walk_payload_sizes(model, limit, "request")

    app.guard = RequestGuard(
        partial(FastAPI.__call__, app),
        limit=body_limit,
        render=error_response,
        fast=HotRoutes(store, checked, error_response),
        member=member_check(store),
    )

    @app.exception_handler(StoreError)
    async def store_error(_request: Request, exc: StoreError) -> Response:
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        errors = exc.errors()
        whole = next((e for e in errors if tuple(e.get("loc", ())) == ("body",)), None)
        if whole is not None:
            # no JSON object at all: say how to send one, not "Field required"
            kind = request.headers.get("content-type", "")
            return error_response(body_problem(kind, str(whole.get("type", ""))))
        if any(e.get("type") == "json_invalid" for e in errors):
            first = next(e for e in errors if e.get("type") == "json_invalid")
            return error_response(
                MalformedRequest(
                    f"request body is not valid JSON: {first.get('ctx', {}).get('error', '')}"
                )
            )
        problems = [
            {
                "field": ".".join(str(p) for p in e.get("loc", ()) if p != "body"),
                "problem": e.get("msg", ""),
            }
            for e in errors
        ]
        text = "; ".join(f"{p['field'] or 'body'}: {p['problem']}" for p in problems[:5])
        return error_response(InvalidArgument(f"invalid request: {text}", problems=problems))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        # Starlette's own answers (no such route, wrong method, a body it
        # could not read) in the typed shape like every other error.
        asked = f"{request.method} {request.url.path}"
        if exc.status_code == 404:
            err: StoreError = RouteNotFound(
                f"no such route: {asked}; the API's routes are in /openapi.json (browse /docs)"
            )
        elif exc.status_code == 405:
            allowed = _methods_of(request)
            takes = f"it takes {', '.join(allowed)}" if allowed else "it takes other methods"
            err = MethodNotAllowed(
                f"{asked}: this route does not take {request.method}; {takes} (see /openapi.json)"
            )
            # RFC 9110: a 405 names the methods the resource takes
            answer = error_response(err)
            answer.headers["Allow"] = ", ".join(allowed + (["HEAD"] if "GET" in allowed else []))
            return answer
        elif exc.status_code < 500:
            err = MalformedRequest(f"the request could not be read: {exc.detail}")
        else:
            err = StoreError(f"internal error: {exc.detail}")
        return error_response(err)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        return error_response(unexpected_error(exc, f"{request.method} {request.url.path}"))

    # Starlette answers through the handler of Exception and then raises the
    # error again for the server to log with its traceback; a database's
    # errors have handlers of their own, so an outage is answered and logged
    # in one line (see unexpected_error), and a real fault once.
    for kind in (*DATABASE_UNAVAILABLE, asyncpg.PostgresError):
        app.add_exception_handler(kind, unexpected)

    # ------------------------------------------------------------------ cluster

    @app.get(f"{PREFIX}/cluster", response_model=wire.ClusterInfo)
    async def cluster() -> Response:
        async with store.pool.acquire() as conn:
            version = await conn.fetchval("SELECT max(version) FROM baton_schema")
        return JSON(
            {
                "region": store.region,
                "url": store.config.regions[store.region].url,
                "regions": store.region_urls,
                "schema_version": version,
                "server_version": SERVER_VERSION,
                "max_payload_bytes": limit,
            }
        )

    @app.get("/healthz", response_model=wire.HealthResponse)
    async def healthz() -> Response:
        await check_database(store.pool, store.region)
        return JSON({"ok": True, "region": store.region})

    async def region_figures() -> str:
        # bounded as a whole by METRICS_TIMEOUT_S below, which names the reads
        async with store.pool.acquire(timeout=METRICS_TIMEOUT_S + 1) as conn:
            return await render_metrics(conn, store.region, store.config.regions)

    @app.get("/metrics", response_class=PlainTextResponse)
    async def metrics() -> Response:
        text = await bounded(
            store.pool,
            "the metrics' reads",
            region_figures,
            region=store.region,
            timeout_s=METRICS_TIMEOUT_S,
        )
        text += render_process_metrics(
            store.region, store.run_cache, store.matcher, store.speculation, store.loop_lag
        )
        return Response(text, media_type="text/plain; version=0.0.4")

    # ------------------------------------------------------------------ namespaces

    def ns_info(ns: Namespace) -> dict[str, Any]:
        return {
            "name": ns.name,
            "regions": ns.regions,
            "active_region": ns.active_region,
            "failover_version": ns.failover_version,
            "state": ns.state,
            "retention_days": ns.retention_days,
            "description": ns.description,
        }

    @app.post(f"{PREFIX}/namespaces", response_model=wire.NamespaceInfo, status_code=201)
    async def create_namespace(req: wire.CreateNamespaceRequest) -> Response:
        regions = req.regions or [store.region]
        active = req.active_region or regions[0]
        store.config.check_namespace_regions(regions, active)
        if active != store.region:
            # The row is written where the namespace is active and reaches its
            # other regions through that region's outbox, as every write does:
            # a region that is not active for it has no stream that ships it
            # (and must not hold a namespace it is not a region of).
            url = store.region_urls.get(active)
            raise NamespaceNotActive(
                f"namespace {req.name!r} would be active in {active}, not in {store.region}: "
                f"send its create to {url or active}",
                active_region=active,
                active_url=url,
            )
        version = store.config.regions[active].initial_version
        async with store.pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                Q["insert_namespace"],
                req.name,
                regions,
                active,
                version,
                req.retention_days,
                req.description,
                req.request_id,
            )
            if row is not None:
                await conn.execute(Q["outbox_namespace"], req.name)
            elif req.request_id:
                # this create again (its first answer lost): answered as the first
                row = await conn.fetchrow(Q["namespace_created_by"], req.name, req.request_id)
        if row is None:
            raise NamespaceAlreadyExists(
                f"namespace {req.name!r} exists already: use it, or create one under another name"
            )
        return JSON(ns_info(Namespace.from_row(row)), status_code=201)

    @app.get(f"{PREFIX}/namespaces", response_model=list[wire.NamespaceInfo])
    async def list_namespaces() -> Response:
        async with store.pool.acquire() as conn:
            rows = await conn.fetch(Q["list_namespaces"], store.region)
        return JSON([ns_info(Namespace.from_row(r)) for r in rows])

    @app.get(f"{PREFIX}/namespaces/{{namespace}}", response_model=wire.NamespaceInfo)
    async def describe_namespace(namespace: str, executions: bool = True) -> Response:
        # executions=false leaves out the count of runs by status (a scan of
        # them all), for a caller that asks only whether the namespace exists
        async with store.pool.acquire() as conn:
            ns = await get_namespace(conn, namespace)
            counts = await conn.fetch(Q["count_executions"], namespace) if executions else None
        info = ns_info(ns)
        if counts is not None:
            # every status, 0 where none: a script reads executions["running"]
            # of a namespace with no running run too
            info["executions"] = {status.value: 0 for status in wire.WorkflowStatus}
            info["executions"].update({r["status"]: r["n"] for r in counts})
        return JSON(info)

    @app.patch(f"{PREFIX}/namespaces/{{namespace}}", response_model=wire.NamespaceInfo)
    async def patch_namespace(namespace: str, req: wire.UpdateNamespaceRequest) -> Response:
        ns, changed = await update_namespace(
            store, namespace, retention_days=req.retention_days, description=req.description
        )
        return JSON({**ns_info(ns), "changed": changed})

    # ------------------------------------------------------------------ workflows

    ns_path = f"{PREFIX}/namespaces/{{namespace}}"
    wf_path = f"{ns_path}/workflows/{WORKFLOW_ID_PARAM}"

    @app.post(
        f"{ns_path}/workflows",
        response_model=wire.StartWorkflowResponse,
        responses={
            201: {"model": wire.StartWorkflowResponse, "description": "A new run started"},
        },
        response_description="A retried request id found the earlier start (started false)",
    )
    async def start_workflow(namespace: str, req: wire.StartWorkflowRequest) -> Response:
        checked(req)
        body, status = await starts.start_and_wait(store, namespace, req)
        return JSON(body, status_code=status)

    @app.post(
        f"{ns_path}/signal-with-start",
        response_model=wire.StartWorkflowResponse,
        responses={201: {"model": wire.StartWorkflowResponse, "description": "A new run started"}},
        response_description="The running run was signalled (started false)",
    )
    async def signal_with_start(namespace: str, req: wire.SignalWithStartRequest) -> Response:
        checked(req)
        if req.wait_result_s is not None:
            raise InvalidArgument(
                "wait_result_s is for starts only: wait for a signal-with-start's "
                "outcome with GET .../result?wait_s="
            )
        if req.id_conflict_policy != wire.WorkflowIdConflictPolicy.FAIL:
            raise InvalidArgument(
                "id_conflict_policy is for starts only: a signal-with-start signals the "
                "running run (or, with id_reuse_policy=terminate_if_running, ends it)"
            )
        start = wire.StartWorkflowRequest.model_validate(
            req.model_dump(exclude={"signal_name", "signal_input"})
        )
        res = await starts.start_workflow(
            store, namespace, start, signal=(req.signal_name, req.signal_input)
        )
        # as a start answers: 201 when it started a run, 200 when it signalled one
        return JSON(res.model_dump(), status_code=201 if res.started else 200)

    add_visibility_routes(app, store, PREFIX, checked)
    add_versioning_routes(app, store, PREFIX)
    add_task_queue_routes(app, store, PREFIX)
    add_pause_routes(app, store, PREFIX)
    add_schedule_routes(app, store, PREFIX, checked)

    @app.get(f"{wf_path}/history", response_model=wire.HistoryResponse)
    async def history(
        namespace: str,
        workflow_id: str,
        run_id: str | None = None,
        from_event_id: int = Query(1, ge=1, le=2**63 - 1),
        wait_s: float = Query(0.0, ge=0, le=120),
        page_size: int = Query(workflows.MAX_HISTORY_PAGE, ge=1, le=workflows.MAX_HISTORY_PAGE),
    ) -> Response:
        return JSON(
            await workflows.get_history(
                store, namespace, workflow_id, run_id, from_event_id, wait_s, limit=page_size
            )
        )

    @app.get(f"{wf_path}/result", response_model=wire.ResultResponse)
    async def result(
        namespace: str,
        workflow_id: str,
        run_id: str | None = None,
        wait_s: float = Query(0.0, ge=0, le=120),
        follow: bool = True,
    ) -> Response:
        # follow=false: this run's own close, not the chain's (Temporal's follow_runs)
        return JSON(
            await workflows.get_result(store, namespace, workflow_id, run_id, wait_s, follow=follow)
        )

    @app.post(f"{wf_path}/signal", response_model=wire.RunResponse)
    async def signal(namespace: str, workflow_id: str, req: wire.SignalRequest) -> Response:
        checked(req)
        run_id = await workflows.signal_workflow(store, namespace, workflow_id, req)
        return JSON({"run_id": run_id})

    @app.post(f"{wf_path}/query", response_model=wire.QueryResponse)
    async def query(namespace: str, workflow_id: str, req: wire.QueryRequest) -> Response:
        checked(req)
        return JSON(await messages.query_workflow(store, namespace, workflow_id, req))

    @app.post(f"{wf_path}/update", response_model=wire.UpdateResponse)
    async def update(namespace: str, workflow_id: str, req: wire.UpdateRequest) -> Response:
        checked(req)
        return JSON(await messages.update_workflow(store, namespace, workflow_id, req))

    @app.get(f"{wf_path}/updates/{{update_id}}", response_model=wire.UpdateResponse)
    async def update_outcome(
        namespace: str,
        workflow_id: str,
        update_id: str = Path(min_length=1, max_length=256),
        run_id: str | None = None,
        wait_s: float = Query(30.0, gt=0, le=3600),
        stage: Literal["accepted", "completed"] = "completed",
    ) -> Response:
        """The outcome of the update of that id sent before (Temporal's
        ``get_update_handle``), waited for up to ``wait_s``; nothing is sent."""
        req = wire.UpdateRequest(
            update_id=update_id, name="-", run_id=run_id, timeout_s=wait_s, wait_for_stage=stage
        )
        return JSON(await messages.update_workflow(store, namespace, workflow_id, req, poll=True))

    @app.post(f"{wf_path}/cancel", response_model=wire.RunResponse)
    async def cancel(namespace: str, workflow_id: str, req: wire.CancelRequest) -> Response:
        run_id = await workflows.cancel_workflow(store, namespace, workflow_id, req)
        return JSON({"run_id": run_id})

    @app.post(f"{wf_path}/terminate", response_model=wire.RunResponse)
    async def terminate(namespace: str, workflow_id: str, req: wire.TerminateRequest) -> Response:
        run_id = await workflows.terminate_workflow(store, namespace, workflow_id, req)
        return JSON({"run_id": run_id})

    @app.get(f"{wf_path}/buffered", response_model=wire.BufferedResponse)
    async def buffered(namespace: str, workflow_id: str, run_id: str) -> Response:
        """Inputs waiting behind the run's started workflow task (read by standbys
        when a replication message was too large to carry them)."""
        async with store.pool.acquire() as conn:
            row = await workflows._get_run(conn, namespace, workflow_id, run_id)
            rows = await conn.fetch(Q["buffered_of_run"], namespace, workflow_id, row["run_id"], 0)
        return JSON(
            {
                "run_id": str(row["run_id"]),
                "buffered": [
                    {"seq": r["seq"], "event_type": r["event_type"], "attributes": r["attributes"]}
                    for r in rows
                ],
            }
        )

    @app.get(
        f"{ns_path}/replication-conflicts/{{conflict_id}}",
        response_model=wire.ConflictEventsResponse,
    )
    async def conflict_events(
        namespace: str, conflict_id: int = Path(ge=1, le=2**63 - 1)
    ) -> Response:
        """The signals and starts of an archived losing branch (read by the region
        that re-applies them when the replication message was too large)."""
        async with store.pool.acquire() as conn:
            await get_namespace(conn, namespace)
            events = await conn.fetchval(Q["conflict_reapply_events"], namespace, conflict_id)
        if events is None:
            raise ConflictNotFound(f"no conflict {conflict_id} of namespace {namespace!r} here")
        return JSON({"id": conflict_id, "events": events})

    @app.get(wf_path, response_model=wire.DescribeResponse)
    async def describe(namespace: str, workflow_id: str, run_id: str | None = None) -> Response:
        return JSON(await workflows.describe_workflow(store, namespace, workflow_id, run_id))

    # ------------------------------------------------------------------ tasks

    @app.post(f"{ns_path}/workflow-tasks/poll", response_model=wire.WorkflowTaskPollResponse)
    async def poll_workflow_task(
        namespace: str, req: wire.PollRequest, request: Request
    ) -> Response:
        with ClientWatch(request.receive) as watch:
            return JSON({"task": await tasks.poll_workflow_task(store, namespace, req, watch)})

    @app.post(
        f"{ns_path}/workflow-tasks/complete",
        response_model=wire.RespondWorkflowTaskCompletedResponse,
    )
    async def complete_workflow_task(
        namespace: str, req: wire.RespondWorkflowTaskCompleted
    ) -> Response:
        checked(req)
        return JSON(await tasks.complete_workflow_task(store, namespace, req))

    @app.post(f"{ns_path}/workflow-tasks/fail", response_model=wire.EmptyResponse)
    async def fail_workflow_task(namespace: str, req: wire.RespondWorkflowTaskFailed) -> Response:
        await tasks.fail_workflow_task(store, namespace, req)
        return JSON({})

    @app.post(f"{ns_path}/query-tasks/respond", response_model=wire.EmptyResponse)
    async def respond_query(namespace: str, req: wire.RespondQueryTask) -> Response:
        checked(req)
        await tasks.respond_query(store, namespace, req)
        return JSON({})

    @app.post(f"{ns_path}/sticky-queues/close", response_model=wire.EmptyResponse)
    async def close_sticky_queue(namespace: str, req: wire.CloseStickyQueueRequest) -> Response:
        """A worker that shuts down hands its cached runs back to their task queues."""
        async with store.pool.acquire() as conn, conn.transaction():
            await get_namespace(conn, namespace)
            await conn.execute(Q["close_sticky_queue"], namespace, req.sticky_task_queue)
        return JSON({})

    @app.post(f"{ns_path}/activity-tasks/poll", response_model=wire.ActivityTaskPollResponse)
    async def poll_activity_task(
        namespace: str, req: wire.PollRequest, request: Request
    ) -> Response:
        with ClientWatch(request.receive) as watch:
            return JSON({"task": await acts.poll_activity_task(store, namespace, req, watch)})

    @app.post(f"{ns_path}/activity-tasks/complete", response_model=wire.RespondActivityResponse)
    async def complete_activity_task(
        namespace: str,
        req: wire.RespondActivityTaskCompleted,
        return_new_workflow_task: bool = False,
    ) -> Response:
        checked(req)
        return JSON(
            await acts.complete_activity_task(store, namespace, req, return_new_workflow_task)
        )

    @app.post(f"{ns_path}/activity-tasks/fail", response_model=wire.RespondActivityResponse)
    async def fail_activity_task(
        namespace: str, req: wire.RespondActivityTaskFailed, return_new_workflow_task: bool = False
    ) -> Response:
        checked(req)
        return JSON(await acts.fail_activity_task(store, namespace, req, return_new_workflow_task))

    @app.post(f"{ns_path}/activity-tasks/canceled", response_model=wire.RespondActivityResponse)
    async def canceled_activity_task(
        namespace: str, req: wire.RespondActivityTaskCanceled
    ) -> Response:
        return JSON(await acts.cancel_activity_task(store, namespace, req))

    @app.post(f"{ns_path}/activity-tasks/token", response_model=wire.ActivityTokenResponse)
    async def activity_token(namespace: str, req: wire.ActivityTokenRequest) -> Response:
        """The task token of an activity's running attempt, named by ids."""
        return JSON(await acts.activity_token_by_id(store, namespace, req))

    @app.post(f"{ns_path}/activity-tasks/heartbeat", response_model=wire.HeartbeatResponse)
    async def heartbeat(namespace: str, req: wire.HeartbeatRequest) -> Response:
        checked(req)
        return JSON(await acts.heartbeat_activity(store, namespace, req))

    answer_head(app)  # HEAD too: load balancers and uptime checks often probe with it
    return app


def _methods_of(request: Request) -> list[str]:
    """The methods the routes of ``request``'s path take (each route names its own)."""
    methods: set[str] = set()
    for route in request.app.routes:
        match, _ = route.matches(request.scope)
        if match is not Match.NONE:
            methods |= getattr(route, "methods", None) or set()
    return sorted(methods - {"HEAD"})
