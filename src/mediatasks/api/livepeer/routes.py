"""Livepeer Studio's task and asset endpoints, mounted at ``/api``.

Every error answers ``{"errors": [...]}``; request validation errors are 422.  A key sees only its
own project: anything else answers 404.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from mediatasks import errors, service, tasks, telemetry
from mediatasks.api import docs
from mediatasks.api.livepeer import (
    access_control,
    answers,
    events,
    exports,
    guard,
    idempotency,
    paging,
    playback,
    reads,
    schemas,
    transcode,
    uploads,
    views,
    webhooks,
    wire,
)
from mediatasks.api.livepeer.auth import ApiError, Project
from mediatasks.api.runtime import Runtime

__all__ = ["create_livepeer_app"]

log = logging.getLogger(__name__)


_errors = answers.errors_response


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(_: Request, exc: ApiError) -> JSONResponse:
        return _errors(exc.status, exc.message)

    @app.exception_handler(errors.MediaTasksError)
    async def domain_error(_: Request, exc: errors.MediaTasksError) -> JSONResponse:
        return answers.domain_error(exc)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        messages = []
        for error in exc.errors():
            where = ".".join(str(part) for part in error.get("loc", ()) if part != "body")
            messages.append(f"{where}: {error.get('msg', 'invalid')}" if where else error["msg"])
        return _errors(422, *(messages or ["invalid request"]))

    @app.exception_handler(HTTPException)
    async def http_error(_: Request, exc: HTTPException) -> JSONResponse:
        return _errors(exc.status_code, str(exc.detail), headers=exc.headers)

    @app.exception_handler(Exception)
    async def unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error", exc_info=exc)
        return _errors(500, "Internal server error")


def create_livepeer_app(runtime: Runtime) -> FastAPI:
    """The ``/api`` application."""
    app = FastAPI(
        title="mediatasks: Livepeer Studio API",
        telemetry=telemetry.NO_OPENTELEMETRY,
        description=(
            "Livepeer Studio's task and asset API.  `POST /task/{taskId}/cancel` is an "
            "addition of this service."
        ),
        version="1.0.0",
        docs_url=None,  # docs.add_pages: the same pages, served offline
        redoc_url=None,
    )
    docs.add_pages(app, title=app.title, openapi_url="/openapi.json")
    _install_error_handlers(app)

    app.state.runtime = runtime
    app.add_middleware(idempotency.IdempotencyMiddleware, runtime=runtime)
    app.add_middleware(guard.RequestGuard, settings=runtime.settings)
    app.add_middleware(uploads.UploadCors)  # outermost: its headers go on the guard's refusals
    router = APIRouter()

    def base_url(request: Request) -> str:
        return runtime.base_url(str(request.base_url))

    async def render_task(task: tasks.Task, request: Request) -> dict[str, Any]:
        return await views.render_task(runtime, task, base_url(request))

    @router.get("/task", response_model=list[Any])
    async def list_tasks(request: Request, project: Project) -> Response:
        return await reads.task_page(runtime, request, project)

    @router.get("/task/{task_id}", response_model=dict[str, Any])
    async def get_task(task_id: str, request: Request, project: Project) -> Response:
        return await reads.one_task(runtime, request, task_id, project)

    @router.post("/task/{task_id}/retry")
    async def retry_task(task_id: str, project: Project) -> dict[str, Any]:
        await views.visible_task(runtime, task_id, project)
        task = await service.retry_task(runtime.store, task_id, project)
        return {"id": task.id}

    @router.post("/task/{task_id}/cancel")
    async def cancel_task(task_id: str, request: Request, project: Project) -> dict[str, Any]:
        await views.visible_task(runtime, task_id, project)
        task = await service.cancel_task(runtime.store, task_id, project)
        return await render_task(task, request)

    @router.post("/asset/upload/url", status_code=201)
    async def upload_from_url(
        body: schemas.NewAssetFromUrl, request: Request, response: Response, project: Project
    ) -> dict[str, Any]:
        """Import a video by URL: 201, or 200 with the first import of the same URL when it was
        asked for less than 15 minutes ago and is still under way."""
        options = body.model_dump(by_alias=True, exclude_none=True, exclude={"name", "url"})
        asset, task, created = await service.import_from_url(
            runtime.store,
            runtime.settings,
            project_id=project,
            name=body.name,
            url=body.url,
            options=options,
            storage=exports.storage_request(body.storage),
        )
        if not created:
            response.status_code = 200
        return {
            "asset": wire.asset_json(asset, base_url=base_url(request)),
            "task": {"id": task.id},
        }

    @router.post("/clip")
    async def create_clip(
        body: schemas.ClipPayload, request: Request, project: Project
    ) -> dict[str, Any]:
        """Cut a clip of an asset into a new asset.  Unlike Livepeer, which clips live streams
        by wall-clock time, ``playbackId`` names an asset and ``startTime``/``endTime`` are
        milliseconds from its start; ``endTime`` (the end of the asset when left out) must be
        after ``startTime`` and within the asset (422 otherwise)."""
        asset, task = await service.create_clip(
            runtime.store,
            runtime.settings,
            project_id=project,
            playback_id=body.playback_id,
            start_ms=body.start_time,
            end_ms=body.end_time,
            name=body.name,
        )
        return {
            "task": {"id": task.id},
            "asset": wire.asset_json(asset, base_url=base_url(request)),
        }

    @router.get("/asset")
    async def list_assets(request: Request, response: Response, project: Project) -> list[Any]:
        query = paging.list_query(request, project, paging.ASSET_FIELDS)
        page = await runtime.store.list_assets(query)
        paging.finish_page(request, response, query, page)
        return [wire.asset_json(asset, base_url=base_url(request)) for asset in page.items]

    @router.get("/asset/{asset_id}")
    async def get_asset(asset_id: str, request: Request, project: Project) -> dict[str, Any]:
        asset = await runtime.store.get_asset(asset_id, project)
        return wire.asset_json(asset, base_url=base_url(request))

    @router.delete("/asset/{asset_id}", status_code=204)
    async def delete_asset(asset_id: str, project: Project) -> Response:
        await service.delete_asset(runtime.store, runtime.blobs, asset_id, project)
        return Response(status_code=204)

    app.include_router(router)
    app.include_router(webhooks.router)
    app.include_router(exports.router)
    app.include_router(uploads.router)
    app.include_router(transcode.router)
    app.include_router(events.router)
    app.include_router(access_control.router)
    app.include_router(playback.router)
    return app
