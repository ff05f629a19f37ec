"""Flat's score and task endpoints, mounted at ``/v2``, for the official ``flat-api`` client.

Every error answers a ``FlatErrorResponse`` (``{"code", "message"}``): 401 without a valid key,
404 for ids this key's project does not have, 400 for a request that cannot be served (a
malformed body included: FastAPI's 422 is not Flat's).  A key sees only its own project's scores
and tasks, and only ``audio-export`` tasks exist here.  Statuses are exactly the ones the client
expects: 200 for ``POST /scores`` and ``POST .../task`` (anything else makes it fail).
"""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
import tempfile
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Final, TypeVar

import pydantic
from fastapi import APIRouter, Depends, FastAPI, Header, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from starlette.background import BackgroundTask
from starlette.exceptions import HTTPException

from mediatasks import errors, service, tasks, taskstore
from mediatasks.api.flat import links, schemas, wire
from mediatasks.api.runtime import Runtime
from mediatasks.blobstore import base as blobstore
from mediatasks.scores import (
    export,
    library,
    midi,
    musicxml,
    render,
    source,
    thumbnail,
    transcription,
)
from mediatasks.scores import score as score_module

__all__ = ["FlatError", "create_flat_app"]

log = logging.getLogger(__name__)

_ModelT = TypeVar("_ModelT", bound=pydantic.BaseModel)

#: The largest request body of ``POST /scores``: a Base64 file at the size limit, and some JSON.
MAX_SCORE_BODY_BYTES: Final = source.MAX_SOURCE_BYTES * 4 // 3 + 64 * 1024
#: The largest body of the other requests.
MAX_BODY_BYTES: Final = 64 * 1024
_EVENTS_PAGE: Final = 1000
_DOWNLOAD_TYPES: Final = {
    "xml": "application/vnd.recordare.musicxml+xml",
    "mxl": musicxml.MXL_MEDIA_TYPE,
    "midi": "audio/midi",
    **export.MEDIA_TYPES,
    "thumbnail.png": thumbnail.MEDIA_TYPE,
}
_DOWNLOAD_NAMES: Final = {
    "xml": "musicxml",
    "mxl": "mxl",
    "midi": "mid",
    "mp3": "mp3",
    "wav": "wav",
    "thumbnail.png": "png",
}


class FlatError(Exception):
    """An error answered with ``status`` and a ``FlatErrorResponse``."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def _error(
    status: int, code: str, message: str, *, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(wire.error_json(code, message), status_code=status, headers=headers)


#: Domain errors that reach the handlers: status and code, most specific first.
_DOMAIN_STATUS: Sequence[tuple[type[errors.MediaTasksError], int, str]] = (
    (errors.NotFound, 404, "NOT_FOUND"),
    (errors.LeaseLost, 409, "CONFLICT"),
    (errors.InvalidTransition, 400, "INVALID_STATE"),
    (errors.Conflict, 409, "CONFLICT"),
    (errors.InvalidInput, 400, "CLIENT_ERROR"),
    (errors.Unavailable, 503, "SERVICE_UNAVAILABLE"),
)
_HTTP_CODES: Final = {
    401: "UNAUTHORIZED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
}


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(FlatError)
    async def flat_error(_: Request, exc: FlatError) -> JSONResponse:
        return _error(exc.status, exc.code, exc.message)

    @app.exception_handler(errors.MediaTasksError)
    async def domain_error(_: Request, exc: errors.MediaTasksError) -> JSONResponse:
        for kind, status, code in _DOMAIN_STATUS:
            if isinstance(exc, kind):
                return _error(status, code, exc.message)
        return _internal(exc)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        return _error(400, "CLIENT_ERROR", _validation_message(exc.errors()))

    @app.exception_handler(HTTPException)
    async def http_error(_: Request, exc: HTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, "CLIENT_ERROR")
        return _error(exc.status_code, code, str(exc.detail), headers=exc.headers)

    @app.exception_handler(Exception)
    async def unexpected(_: Request, exc: Exception) -> JSONResponse:
        return _internal(exc)


def _internal(exc: Exception) -> JSONResponse:
    error_id = str(uuid.uuid4())
    log.error("unexpected error %s", error_id, exc_info=exc)
    body = wire.error_json("INTERNAL_ERROR", "Internal server error", error_id)
    return JSONResponse(body, status_code=500)


def _validation_message(found: Sequence[Any]) -> str:
    messages = []
    for error in found:
        where = ".".join(str(part) for part in error.get("loc", ()) if part != "body")
        text = str(error.get("msg", "invalid"))
        messages.append(f"{where}: {text}" if where else text)
    return "; ".join(messages) or "invalid request"


async def _key_of(
    request: Request, authorization: Annotated[str | None, Header()] = None
) -> taskstore.ApiKey:
    """The API key of the request (``Authorization: Bearer <key>``)."""
    if not authorization:
        raise FlatError(401, "UNAUTHORIZED", "an access token is required (Authorization: Bearer)")
    scheme, _, secret = authorization.partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        raise FlatError(401, "UNAUTHORIZED", "use an access token: Authorization: Bearer <token>")
    runtime: Runtime = request.app.state.runtime
    key = await runtime.keys.authenticate(secret.strip())
    if key is None:
        raise FlatError(401, "UNAUTHORIZED", "the access token is not valid")
    return key


Key = Annotated[taskstore.ApiKey, Depends(_key_of)]


def create_flat_app(runtime: Runtime) -> FastAPI:
    """The ``/v2`` application."""
    app = FastAPI(
        title="mediatasks: Flat API",
        description=(
            "Flat's score import and audio-export tasks.  `POST /tasks/{task}/cancel` and the "
            "`parts` of scores and revisions are additions of this service."
        ),
        version="2.0.0",
    )
    _install_error_handlers(app)
    app.state.runtime = runtime
    signer = links.Signer(links.secret_key(runtime.settings))
    scores = library.Library(runtime.blobs)
    router = APIRouter()

    def base_url(request: Request) -> str:
        return runtime.base_url(str(request.base_url))

    async def find_score(project_id: str, score_id: str) -> score_module.Score:
        try:
            return await scores.get(project_id, score_id)
        except errors.NotFound:
            raise FlatError(404, "SCORE_NOT_FOUND", f"score {score_id!r} not found") from None

    def find_revision(owner: score_module.Score, ref: str) -> score_module.Revision:
        try:
            return owner.revision(ref)
        except errors.NotFound as exc:
            raise FlatError(404, "SCORE_REVISION_NOT_FOUND", exc.message) from None

    async def find_task(project_id: str, task_id: str) -> tasks.Task:
        try:
            task = await runtime.store.get_task(task_id, project_id)
        except errors.NotFound:
            task = None
        if task is None or task.type != tasks.TaskType.AUDIO_EXPORT:
            raise FlatError(404, "TASK_NOT_FOUND", f"task {task_id!r} not found")
        return task

    async def render_task(task: tasks.Task, request: Request) -> dict[str, Any]:
        events = await _all_events(runtime.store, task.id)
        url = None
        if task.phase is tasks.Phase.COMPLETED:
            url = _result_url(task, signer, base_url(request), datetime.now(UTC))
        return wire.task_json(task, events, result_url=url)

    def score_response(owner: score_module.Score, request: Request) -> JSONResponse:
        return JSONResponse(
            wire.score_json(owner, base_url=base_url(request)),
            headers=_revision_headers(owner.last_revision),
        )

    @router.post("/scores")
    async def create_score(request: Request, key: Key) -> JSONResponse:
        body = await _read_json(request, MAX_SCORE_BODY_BYTES, code="SCORE_TOO_LARGE")
        creation = _validate(schemas.ScoreCreation, body)
        if creation.data is None:
            raise FlatError(
                400,
                "SCORE_UNSUPPORTED_FORMAT",
                "only file imports are supported: send the score file in `data` "
                "(MusicXML, MXL or MIDI)",
            )
        try:
            imported = await asyncio.to_thread(
                source.read,
                creation.data,
                data_encoding=creation.data_encoding,
                filename=creation.filename,
                title=creation.title,
            )
        except errors.InvalidInput as exc:
            raise FlatError(400, "SCORE_UNSUPPORTED_FORMAT", exc.message) from None
        created = await scores.create(
            key.project_id,
            imported,
            privacy=creation.privacy or "private",
            created_at=datetime.now(UTC),
        )
        log.info("score %s created from %s", created.id, imported.source_format)
        return score_response(created, request)

    @router.get("/scores/{score_id}")
    async def get_score(score_id: str, request: Request, key: Key) -> JSONResponse:
        return score_response(await find_score(key.project_id, score_id), request)

    @router.get("/scores/{score_id}/revisions")
    async def list_revisions(score_id: str, key: Key) -> list[dict[str, Any]]:
        owner = await find_score(key.project_id, score_id)
        return [wire.revision_json(owner, revision) for revision in owner.revisions]

    @router.get("/scores/{score_id}/revisions/{revision_id}")
    async def get_revision(score_id: str, revision_id: str, key: Key) -> dict[str, Any]:
        owner = await find_score(key.project_id, score_id)
        return wire.revision_json(owner, find_revision(owner, revision_id))

    @router.get("/scores/{score_id}/revisions/{revision_id}/{file_format}")
    async def get_revision_data(
        score_id: str,
        revision_id: str,
        file_format: str,
        key: Key,
        parts: str | None = None,
    ) -> Response:
        owner = await find_score(key.project_id, score_id)
        revision = find_revision(owner, revision_id)
        if file_format not in _DOWNLOAD_TYPES:
            listed = ", ".join(_DOWNLOAD_TYPES)
            raise FlatError(
                400,
                "SCORE_UNSUPPORTED_FORMAT",
                f"format {file_format!r} is not available: use one of {listed}",
            )
        part_ids = [part.strip() for part in (parts or "").split(",") if part.strip()]
        try:
            selected = export.normalized_parts(revision, part_ids)
        except errors.InvalidInput as exc:
            raise FlatError(400, "CLIENT_ERROR", exc.message) from None
        headers = {
            **_revision_headers(revision),
            "Content-Disposition": (
                f'attachment; filename="{owner.id}.{_DOWNLOAD_NAMES[file_format]}"'
            ),
        }
        media_type = _DOWNLOAD_TYPES[file_format]
        if file_format in export.AUDIO_FORMATS:
            audio_key = export.rendering_key(owner, revision, file_format, selected)
            if not await runtime.blobs.exists(audio_key):
                raise FlatError(
                    404,
                    "SCORE_EXPORT_NOT_FOUND",
                    f"this revision has no {file_format} rendering of these parts yet: create "
                    f"one with POST /v2/scores/{owner.id}/revisions/{revision.id}/"
                    f"{file_format}/task and wait for it to be done",
                )
            return await _blob_response(runtime.blobs, audio_key, media_type, headers)
        if file_format == "thumbnail.png":
            xml = await _revision_file(scores, owner, revision, "xml", selected)
            try:
                png = await asyncio.to_thread(thumbnail.render_png, xml)
            except errors.InvalidInput as exc:
                raise FlatError(400, "SCORE_RENDER_FAILED", exc.message) from None
            del headers["Content-Disposition"]  # an image to show, not a file to save
            return Response(content=png, media_type=media_type, headers=headers)
        data = await _revision_file(scores, owner, revision, file_format, selected)
        return Response(content=data, media_type=media_type, headers=headers)

    @router.post("/scores/{score_id}/revisions/{revision_id}/{file_format}/task")
    async def create_export_task(
        score_id: str, revision_id: str, file_format: str, request: Request, key: Key
    ) -> dict[str, Any]:
        body = await _read_json(request, MAX_BODY_BYTES, code="CLIENT_ERROR", empty={})
        options = _validate(schemas.TaskExportOptions, body)
        owner = await find_score(key.project_id, score_id)
        revision = find_revision(owner, revision_id)
        try:
            task = await export.create_audio_export(
                runtime.store,
                scores,
                project_id=key.project_id,
                score_id=owner.id,
                revision_ref=revision.id,
                audio_format=file_format,
                part_ids=options.parts,
                max_retries=runtime.settings.max_retries,
            )
        except errors.InvalidInput as exc:
            unsupported = file_format not in export.AUDIO_FORMATS
            code = "SCORE_UNSUPPORTED_FORMAT" if unsupported else "CLIENT_ERROR"
            raise FlatError(400, code, exc.message) from None
        return await render_task(task, request)

    @router.get("/tasks")
    async def list_tasks(
        request: Request, key: Key, limit: int = 20, state: str | None = None
    ) -> list[dict[str, Any]]:
        """This project's audio-export tasks, newest first: an addition of this service (Flat
        has no task list; the official client has no call for it, so nothing changes for it).
        ``state`` keeps one of Flat's states; ``limit`` is 1 to 100."""
        if not 1 <= limit <= 100:
            raise FlatError(400, "CLIENT_ERROR", "limit must be between 1 and 100")
        phases: list[tasks.Phase | None] = [p for p, name in wire.STATES.items() if name == state]
        if state is not None and not phases:
            raise FlatError(400, "CLIENT_ERROR", f"unknown task state {state!r}")
        found: list[tasks.Task] = []
        for phase in phases or [None]:  # "created" is two phases: one query for each
            query = taskstore.Query(
                project_id=key.project_id,
                limit=limit,
                order=[("created_at", True), ("id", True)],
                types=[tasks.TaskType.AUDIO_EXPORT],
                filters=[]
                if phase is None
                else [taskstore.Filter(field="phase", op="eq", value=str(phase))],
            )
            found += (await runtime.store.list_tasks(query)).items
        found.sort(key=lambda task: (task.created_at, task.id), reverse=True)
        return [await render_task(task, request) for task in found[:limit]]

    @router.get("/tasks/{task_id}")
    async def get_task(task_id: str, request: Request, key: Key) -> dict[str, Any]:
        return await render_task(await find_task(key.project_id, task_id), request)

    @router.post("/tasks/{task_id}/cancel")
    async def cancel_task(task_id: str, request: Request, key: Key) -> dict[str, Any]:
        task = await find_task(key.project_id, task_id)
        state = wire.STATES[task.phase]
        if state != "created":
            raise FlatError(
                400,
                "TASK_NOT_CANCELLABLE",
                f"task {task.id} is {state}: only a task that is still created can be canceled",
            )
        try:
            task = await service.cancel_task(runtime.store, task.id, key.project_id)
        except errors.InvalidTransition:
            task = await find_task(key.project_id, task_id)
            raise FlatError(
                400,
                "TASK_NOT_CANCELLABLE",
                f"task {task.id} is {wire.STATES[task.phase]}: it can no longer be canceled",
            ) from None
        return await render_task(task, request)

    @router.get("/exports/{task_id}/{filename}", include_in_schema=False)
    async def download(
        task_id: str, filename: str, expires: str = "", signature: str = ""
    ) -> Response:
        if not signer.check(task_id, expires, signature, now=datetime.now(UTC)):
            raise FlatError(
                403,
                "INVALID_SIGNATURE",
                "this download link is not valid or has expired: get a new one from the task",
            )
        try:
            task = await runtime.store.get_task(task_id)
        except errors.NotFound:
            task = None
        audio_key = _output_key(task) if task is not None else None
        if task is None or audio_key is None or audio_key.rsplit("/", 1)[-1] != filename:
            raise FlatError(404, "NOT_FOUND", "this file does not exist (anymore)")
        media_type = export.MEDIA_TYPES.get(Path(filename).suffix.lstrip("."), "audio/mpeg")
        return await _blob_response(runtime.blobs, audio_key, media_type, {})

    app.include_router(router)
    return app


async def _read_json(request: Request, limit_bytes: int, *, code: str, empty: Any = None) -> Any:
    """The request's JSON body, read with a size limit; ``empty`` for an empty body."""
    declared = request.headers.get("content-length", "")
    too_large = FlatError(
        400, code, f"the request body is larger than {limit_bytes // 1024**2 or 1} MiB"
    )
    if declared.isascii() and declared.isdigit() and int(declared) > limit_bytes:
        raise too_large
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit_bytes:
            raise too_large
        chunks.append(chunk)
    raw = b"".join(chunks)
    if not raw.strip():
        if empty is None:
            raise FlatError(400, "CLIENT_ERROR", "the request needs a JSON body")
        return empty
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise FlatError(400, "CLIENT_ERROR", f"the request body is not valid JSON: {exc}") from None


def _validate(model: type[_ModelT], body: Any) -> _ModelT:
    if not isinstance(body, dict):
        raise FlatError(400, "CLIENT_ERROR", "the request body must be a JSON object")
    try:
        return model.model_validate(body)
    except pydantic.ValidationError as exc:
        raise FlatError(400, "CLIENT_ERROR", _validation_message(exc.errors())) from None


def _revision_headers(revision: score_module.Revision) -> dict[str, str]:
    return {
        "X-Flat-Score-Revision": revision.id,
        "X-Flat-Score-Revision-Date": wire.rfc3339(revision.created_at),
    }


async def _all_events(store: taskstore.TaskStore, task_id: str) -> list[tasks.TaskEvent]:
    found: list[tasks.TaskEvent] = []
    after_id = 0
    while True:
        page = await store.list_events(task_id, after_id=after_id, limit=_EVENTS_PAGE)
        found.extend(page)
        if len(page) < _EVENTS_PAGE:
            return found
        after_id = page[-1].id


def _output_key(task: tasks.Task) -> str | None:
    """The blob key of a completed audio export's file."""
    if task.type != tasks.TaskType.AUDIO_EXPORT or task.phase is not tasks.Phase.COMPLETED:
        return None
    produced = (task.output or {}).get("audioExport")
    if not isinstance(produced, dict) or not isinstance(produced.get("key"), str):
        return None
    key: str = produced["key"]
    return key


def _result_url(task: tasks.Task, signer: links.Signer, base: str, now: datetime) -> str | None:
    key = _output_key(task)
    if key is None:
        return None
    expires = signer.expires(now)
    name = key.rsplit("/", 1)[-1]
    signature = signer.signature(task.id, expires)
    return f"{base}/v2/exports/{task.id}/{name}?expires={expires}&signature={signature}"


async def _revision_file(
    scores: library.Library,
    owner: score_module.Score,
    revision: score_module.Revision,
    file_format: str,
    part_ids: Sequence[str],
) -> bytes:
    """The ``xml``, ``mxl`` or ``midi`` file of a revision (or of some of its parts)."""
    if revision.is_midi:
        if file_format == "midi" and not part_ids:
            return await scores.source(owner, revision)
        selected = revision.select_parts(part_ids)
        data = await scores.playable(owner, revision)
        if file_format == "midi":
            tracks = {part.track for part in selected if part.track is not None}
            return await asyncio.to_thread(_midi_tracks, data, tracks)
        xml = await asyncio.to_thread(_transcribe, data, selected, owner.title)
        if file_format == "mxl":
            return await asyncio.to_thread(musicxml.pack_mxl, xml)
        return xml
    if (
        file_format == "mxl"
        and not part_ids
        and revision.source_format is score_module.SourceFormat.MXL
    ):
        return await scores.source(owner, revision)
    xml = await scores.playable(owner, revision)
    if part_ids:
        xml = await asyncio.to_thread(_musicxml_parts, xml, part_ids)
    if file_format == "xml":
        return xml
    if file_format == "mxl":
        return await asyncio.to_thread(musicxml.pack_mxl, xml)
    try:
        rendered = await asyncio.to_thread(render.musicxml_to_midi, xml)
    except errors.TaskFailure as exc:
        raise FlatError(400, "SCORE_RENDER_FAILED", exc.message) from None
    return rendered.data


def _midi_tracks(data: bytes, tracks: set[int]) -> bytes:
    return midi.to_bytes(midi.select_tracks(midi.parse(data), tracks))


def _transcribe(data: bytes, parts: Sequence[score_module.Part], title: str) -> bytes:
    return transcription.midi_to_musicxml(midi.parse(data), parts, title=title)


def _musicxml_parts(xml: bytes, part_ids: Sequence[str]) -> bytes:
    return musicxml.serialize(musicxml.select_parts(musicxml.parse(xml), part_ids))


async def _blob_response(
    blobs: blobstore.BlobStore, key: str, media_type: str, headers: Mapping[str, str]
) -> Response:
    """Stream a blob: from its local file when it has one, else through a temporary copy."""
    path = blobs.local_path(key)
    if path is not None and path.is_file():
        return FileResponse(path, media_type=media_type, headers=dict(headers))
    folder = tempfile.mkdtemp(prefix="mediatasks-download-")
    copy = Path(folder) / "blob"
    try:
        await blobs.get_file(key, copy)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    cleanup = BackgroundTask(shutil.rmtree, folder, ignore_errors=True)
    return FileResponse(copy, media_type=media_type, headers=dict(headers), background=cleanup)
