"""Livepeer Studio's task and asset endpoints, mounted at ``/api``.

Every error answers ``{"errors": [...]}``; request validation errors are 422.  A key sees only its
own project: anything else answers 404.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from mediatasks import errors, service, tasks, taskstore
from mediatasks.api.livepeer import (
    access_control,
    events,
    exports,
    idempotency,
    playback,
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

#: Wire names of the fields a task list filters and orders on, and their store columns.
TASK_FIELDS = {
    "id": "id",
    "type": "type",
    "phase": "phase",
    "createdAt": "created_at",
    "updatedAt": "updated_at",
    "inputAssetId": "input_asset_id",
    "outputAssetId": "output_asset_id",
}
ASSET_FIELDS = {
    "id": "id",
    "name": "name",
    "phase": "phase",
    "playbackId": "playback_id",
    "createdAt": "created_at",
    "updatedAt": "updated_at",
}
_RANGE_OPS: dict[str, Literal["gt", "gte", "lt", "lte"]] = {
    "gt": "gt",
    "gte": "gte",
    "lt": "lt",
    "lte": "lte",
}
DEFAULT_LIMIT = 20
MAX_LIMIT = 1000


def _errors(status: int, *messages: str, headers: Mapping[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"errors": list(messages)}, status_code=status, headers=headers)


_DOMAIN_STATUS: Sequence[tuple[type[errors.MediaTasksError], int]] = (
    (errors.NotFound, 404),
    (errors.LeaseLost, 409),
    (errors.InvalidTransition, 400),
    (errors.Conflict, 409),
    (errors.InvalidInput, 422),
    (errors.Unavailable, 503),
)


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(_: Request, exc: ApiError) -> JSONResponse:
        return _errors(exc.status, exc.message)

    @app.exception_handler(errors.MediaTasksError)
    async def domain_error(_: Request, exc: errors.MediaTasksError) -> JSONResponse:
        for kind, status in _DOMAIN_STATUS:
            if isinstance(exc, kind):
                return _errors(status, exc.message)
        log.error("unmapped error: %r", exc)
        return _errors(500, "Internal server error")

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
        description=(
            "Livepeer Studio's task and asset API.  `POST /task/{taskId}/cancel` is an "
            "addition of this service."
        ),
        version="1.0.0",
    )
    _install_error_handlers(app)

    app.state.runtime = runtime
    app.add_middleware(idempotency.IdempotencyMiddleware, runtime=runtime)
    router = APIRouter()

    def base_url(request: Request) -> str:
        return runtime.base_url(str(request.base_url))

    async def render_task(task: tasks.Task, request: Request) -> dict[str, Any]:
        return await views.render_task(runtime, task, base_url(request))

    @router.get("/task")
    async def list_tasks(request: Request, response: Response, project: Project) -> list[Any]:
        query = _list_query(request, project, TASK_FIELDS, types=sorted(wire.VISIBLE_TYPES))
        page = await runtime.store.list_tasks(query)
        items = _finish_page(request, response, query, page)
        return [await render_task(task, request) for task in items]

    @router.get("/task/{task_id}")
    async def get_task(task_id: str, request: Request, project: Project) -> dict[str, Any]:
        return await render_task(await views.visible_task(runtime, task_id, project), request)

    @router.post("/task/{task_id}/retry")
    async def retry_task(task_id: str, project: Project) -> dict[str, Any]:
        await views.visible_task(runtime, task_id, project)
        task = await runtime.store.retry(task_id, project)
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
        query = _list_query(request, project, ASSET_FIELDS)
        page = await runtime.store.list_assets(query)
        items = _finish_page(request, response, query, page)
        return [wire.asset_json(asset, base_url=base_url(request)) for asset in items]

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


def _list_query(
    request: Request, project: str, fields: Mapping[str, str], *, types: Sequence[str] = ()
) -> taskstore.Query:
    """Studio's list parameters: limit, cursor (``skip<N>``), order, filters, count."""
    params = request.query_params
    if "projectId" in params:
        raise ApiError(400, "projectId as query param not supported")
    raw_limit = params.get("limit", "")
    limit = int(raw_limit) if raw_limit.isdigit() and int(raw_limit) > 0 else DEFAULT_LIMIT
    limit = min(limit, MAX_LIMIT)
    cursor = params.get("cursor", "")
    offset = 0
    if cursor:
        if not (cursor.startswith("skip") and cursor[4:].isdigit()):
            raise ApiError(400, "invalid cursor")
        offset = int(cursor[4:])
    order: list[tuple[str, bool]] = []
    for part in filter(None, params.get("order", "").split(",")):
        name, _, descending = part.rpartition("-")
        if name not in fields or descending not in {"true", "false"}:
            raise ApiError(400, f"invalid order: {part}")
        order.append((fields[name], descending == "true"))
    filters = _filters(params.get("filters"), fields)
    return taskstore.Query(
        project_id=project,
        limit=limit + 1,  # one more, to know whether a next page exists
        offset=offset,
        order=order or [("updated_at", True), ("created_at", True)],
        filters=filters,
        types=types,
        with_total=params.get("count") in {"1", "true"},
    )


def _filters(raw: str | None, fields: Mapping[str, str]) -> list[taskstore.Filter]:
    if not raw:
        return []
    try:
        parsed = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ApiError(400, "error parsing filters") from exc
    if not isinstance(parsed, list):
        raise ApiError(400, "error parsing filters")
    found = []
    for item in parsed:
        if not isinstance(item, dict) or item.get("id") not in fields or "value" not in item:
            raise ApiError(400, "error parsing filters")
        column = fields[item["id"]]
        value = item["value"]
        if isinstance(value, dict):
            for op, bound in value.items():
                if op not in _RANGE_OPS or not isinstance(bound, int | float):
                    raise ApiError(400, "error parsing filters")
                found.append(taskstore.Filter(field=column, op=_RANGE_OPS[op], value=bound))
        elif isinstance(value, str | int | float) and not isinstance(value, bool):
            if column == "name":
                found.append(taskstore.Filter(field=column, op="like", value=value))
            else:
                found.append(taskstore.Filter(field=column, op="eq", value=value))
        else:
            raise ApiError(400, "error parsing filters")
    return found


def _finish_page(
    request: Request, response: Response, query: taskstore.Query, page: taskstore.Page[Any]
) -> Sequence[Any]:
    """Trim the extra row, and set ``Link`` (only when a next page exists) and the count."""
    limit = query.limit - 1
    items = page.items[:limit]
    if len(page.items) > limit:
        next_url = request.url.include_query_params(
            limit=str(limit), cursor=f"skip{query.offset + limit}"
        )
        response.headers["Link"] = f'<{next_url}>; rel="next"'
    if page.total is not None:
        response.headers["X-Total-Count"] = str(page.total)
    return items
