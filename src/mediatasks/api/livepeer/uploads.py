"""Uploads: ``POST /asset/request-upload``, then a raw ``PUT`` or a resumable tus 1.0 upload.

``request-upload`` creates the asset (``uploading``) and its upload task (``pending``) and answers
two URLs signed for that one asset: ``url`` takes a raw ``PUT`` of the whole file; ``tusEndpoint``
speaks tus 1.0 (creation, ``HEAD``, ``PATCH`` at an offset, termination).  Both URLs are derived
from the asset alone, so they stay the same for it: a client resumes after a dropped connection
or a restart of the server.  The bytes are written to a file in the data folder as they come
(its size is the tus offset), and when the last one arrives the file goes to the blob store and
the task is scheduled.

Partial uploads live on the API server that receives them: in the scaled shape, a client's
requests for one upload must reach the same server (or the servers must share the data folder).

A page on any site may send a file to these URLs from the browser (``UploadCors``): the signed
URL is the credential, no cookie or API key goes with it, so every origin is allowed, and the
tus headers a client must read (``Location``, ``Upload-Offset``...) are exposed.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Annotated, Any, Final

from fastapi import APIRouter, Depends, Request, Response
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Receive, Scope, Send

from mediatasks import assets, errors, service, signing, tasks
from mediatasks.api.livepeer import exports, guard, schemas, wire
from mediatasks.api.livepeer.auth import ApiError, Project, runtime_of
from mediatasks.api.runtime import Runtime

__all__ = ["UploadCors", "router"]

router = APIRouter()
RuntimeDep = Annotated[Runtime, Depends(runtime_of)]

TUS_VERSION: Final = "1.0.0"
#: Upload URLs work for this long after the asset was created (Studio's: 12 h).
URL_LIFETIME = timedelta(hours=24)
_TUS_HEADERS: Final = {"Tus-Resumable": TUS_VERSION, "Cache-Control": "no-store"}
_locks: dict[str, asyncio.Lock] = {}
#: The signed upload URLs, under the ``/api`` application.
_UPLOAD_PATHS: Final = ("/asset/upload/direct", "/asset/upload/tus")


class UploadCors:
    """ASGI middleware of the ``/api`` application: CORS for the signed upload URLs alone
    (Starlette's ``CORSMiddleware``, answering preflights and adding its headers to every
    answer, errors included, so that a page can read why an upload was refused)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.cors = CORSMiddleware(
            app,
            allow_origins=["*"],
            allow_methods=["POST", "HEAD", "PATCH", "DELETE", "PUT", "OPTIONS"],
            allow_headers=[
                "Content-Type",
                "Tus-Resumable",
                "Upload-Length",
                "Upload-Offset",
                "Upload-Metadata",
                "Upload-Defer-Length",
                "X-HTTP-Method-Override",
                "X-Requested-With",
            ],
            expose_headers=[
                "Location",
                "Upload-Offset",
                "Upload-Length",
                "Upload-Metadata",
                "Tus-Resumable",
                "Tus-Version",
                "Tus-Extension",
                "Tus-Max-Size",
            ],
            max_age=600,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and guard.route_path(scope).startswith(_UPLOAD_PATHS):
            await self.cors(scope, receive, send)
        else:
            await self.app(scope, receive, send)


_PURPOSE: Final = "asset-upload"


def upload_token(runtime: Runtime, asset: assets.Asset) -> str:
    """The token of an asset's upload URLs: the same every time for the same asset."""
    expires = int((asset.created_at + URL_LIFETIME).timestamp())
    key = signing.load_secret_key(runtime.settings)
    return f"{asset.id}.{expires}.{signing.sign(key, _PURPOSE, asset.id, expires)}"


def _asset_of_token(runtime: Runtime, token: str) -> str:
    asset_id, _, rest = token.partition(".")
    expires, _, signature = rest.partition(".")
    key = signing.load_secret_key(runtime.settings)
    if not signing.check(key, _PURPOSE, asset_id, expires, signature):
        raise ApiError(403, "invalid or expired signed upload URL")
    return asset_id


class _Upload:
    """The partial file of one asset's upload, and the length the client announced."""

    def __init__(self, runtime: Runtime, asset_id: str) -> None:
        folder = runtime.settings.data_dir / "uploads"
        folder.mkdir(parents=True, exist_ok=True)
        self.part = folder / f"{asset_id}.part"
        self.meta = folder / f"{asset_id}.json"

    @property
    def offset(self) -> int:
        return self.part.stat().st_size if self.part.exists() else 0

    def _meta(self) -> dict[str, Any]:
        found: dict[str, Any] = json.loads(self.meta.read_text()) if self.meta.exists() else {}
        return found

    @property
    def length(self) -> int | None:
        length: int | None = self._meta().get("length")
        return length

    @property
    def done(self) -> bool:
        return bool(self._meta().get("done"))

    def start(self, length: int | None) -> None:
        self.meta.write_text(json.dumps({"length": length}))
        self.part.touch()

    def finished(self) -> None:
        """Every byte arrived: the partial file goes, its length is kept for ``HEAD``."""
        self.meta.write_text(json.dumps({"length": self.offset, "done": True}))
        self.part.unlink(missing_ok=True)

    def remove(self) -> None:
        self.part.unlink(missing_ok=True)
        self.meta.unlink(missing_ok=True)


async def _pending_task(runtime: Runtime, asset_id: str) -> tasks.Task:
    try:
        await runtime.store.get_asset(asset_id)
    except errors.NotFound as exc:
        raise ApiError(404, "asset not found") from exc
    task = await runtime.store.task_of_asset(asset_id)
    if task is None:
        raise ApiError(404, "asset not found")
    if task.phase is not tasks.Phase.PENDING:
        raise ApiError(422, "asset has already been uploaded")
    return task


async def _append(
    runtime: Runtime, upload: _Upload, chunks: AsyncIterator[bytes], limit: int
) -> None:
    """Append a request body to the partial file, never past ``limit`` bytes in all."""
    written = upload.offset
    with upload.part.open("ab") as file:
        async for chunk in chunks:
            written += len(chunk)
            if written > limit:
                raise ApiError(413, f"the upload is larger than {limit} bytes")
            await asyncio.to_thread(file.write, chunk)


async def _finish(runtime: Runtime, upload: _Upload, task: tasks.Task) -> None:
    if upload.offset == 0:
        raise ApiError(422, "the upload is empty")
    await service.finish_upload(runtime.store, runtime.blobs, task, upload.part)
    upload.finished()


@router.post("/asset/request-upload")
async def request_upload(
    body: schemas.NewAsset, request: Request, project: Project, runtime: RuntimeDep
) -> dict[str, Any]:
    options = body.model_dump(by_alias=True, exclude_none=True, exclude={"name"})
    asset, task = await service.request_upload(
        runtime.store,
        runtime.settings,
        project_id=project,
        name=body.name,
        options=options,
        storage=exports.storage_request(body.storage),
    )
    base = runtime.base_url(str(request.base_url))
    token = upload_token(runtime, asset)
    return {
        "url": f"{base}/api/asset/upload/direct?token={token}",
        "tusEndpoint": f"{base}/api/asset/upload/tus?token={token}",
        "asset": wire.asset_json(asset, base_url=base),
        "task": {"id": task.id},
    }


@router.put("/asset/upload/direct")
async def direct_upload(token: str, request: Request, runtime: RuntimeDep) -> dict[str, Any]:
    """The raw bytes of the whole file; a repeated PUT starts the file over."""
    asset_id = _asset_of_token(runtime, token)
    async with _locks.setdefault(asset_id, asyncio.Lock()):
        task = await _pending_task(runtime, asset_id)
        upload = _Upload(runtime, asset_id)
        upload.remove()
        upload.start(None)  # a raw PUT has no announced length
        try:
            await _append(runtime, upload, request.stream(), runtime.settings.max_source_bytes)
            await _finish(runtime, upload, task)
        except BaseException:
            upload.remove()
            raise
    return {}


def _tus(status: int, **headers: str) -> Response:
    return Response(status_code=status, headers={**_TUS_HEADERS, **headers})


def _check_version(request: Request) -> None:
    version = request.headers.get("tus-resumable")
    if version is not None and version != TUS_VERSION:
        raise ApiError(412, f"unsupported tus version {version}")


@router.options("/asset/upload/tus")
@router.options("/asset/upload/tus/{asset_id}")
async def tus_options(runtime: RuntimeDep) -> Response:
    return _tus(
        204,
        **{
            "Tus-Version": TUS_VERSION,
            "Tus-Extension": "creation,termination",
            "Tus-Max-Size": str(runtime.settings.max_source_bytes),
        },
    )


@router.post("/asset/upload/tus")
async def tus_create(token: str, request: Request, runtime: RuntimeDep) -> Response:
    """Creation: answers the upload's URL; creating it again answers the same one."""
    _check_version(request)
    asset_id = _asset_of_token(runtime, token)
    length = request.headers.get("upload-length", "")
    if not length.isdigit():
        raise ApiError(400, "Upload-Length is required")
    if int(length) > runtime.settings.max_source_bytes:
        raise ApiError(413, f"the upload is larger than {runtime.settings.max_source_bytes} bytes")
    await _pending_task(runtime, asset_id)
    upload = _Upload(runtime, asset_id)
    if upload.length != int(length):
        upload.remove()
        upload.start(int(length))
    base = runtime.base_url(str(request.base_url))
    return _tus(201, Location=f"{base}/api/asset/upload/tus/{asset_id}?token={token}")


@router.head("/asset/upload/tus/{asset_id}")
async def tus_head(asset_id: str, token: str, request: Request, runtime: RuntimeDep) -> Response:
    if _asset_of_token(runtime, token) != asset_id:
        raise ApiError(403, "invalid signed upload URL")
    upload = _Upload(runtime, asset_id)
    length = upload.length
    if length is None:
        return _tus(404)
    offset = length if upload.done else upload.offset
    return _tus(200, **{"Upload-Offset": str(offset), "Upload-Length": str(length)})


@router.patch("/asset/upload/tus/{asset_id}")
async def tus_patch(asset_id: str, token: str, request: Request, runtime: RuntimeDep) -> Response:
    _check_version(request)
    if _asset_of_token(runtime, token) != asset_id:
        raise ApiError(403, "invalid signed upload URL")
    if request.headers.get("content-type") != "application/offset+octet-stream":
        raise ApiError(415, "Content-Type must be application/offset+octet-stream")
    offset = request.headers.get("upload-offset", "")
    async with _locks.setdefault(asset_id, asyncio.Lock()):
        task = await _pending_task(runtime, asset_id)
        upload = _Upload(runtime, asset_id)
        length = upload.length
        if length is None:
            return _tus(404)
        if not offset.isdigit() or int(offset) != upload.offset:
            raise ApiError(409, f"Upload-Offset must be {upload.offset}")
        try:
            await _append(runtime, upload, request.stream(), length)
        except ClientDisconnect:
            pass  # keep what arrived: the client resumes from the offset it reads with HEAD
        if upload.offset == length:
            await _finish(runtime, upload, task)
            return _tus(204, **{"Upload-Offset": str(length)})
        return _tus(204, **{"Upload-Offset": str(upload.offset)})


@router.delete("/asset/upload/tus/{asset_id}")
async def tus_terminate(asset_id: str, token: str, runtime: RuntimeDep) -> Response:
    """Termination: the partial upload is removed and the asset's task cancelled."""
    if _asset_of_token(runtime, token) != asset_id:
        raise ApiError(403, "invalid signed upload URL")
    async with _locks.setdefault(asset_id, asyncio.Lock()):
        task = await _pending_task(runtime, asset_id)
        _Upload(runtime, asset_id).remove()
        await runtime.store.cancel(task.id)
    return _tus(204)
