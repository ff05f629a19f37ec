"""``/scores``: import a score, read it, its revisions and their files, and queue an export.

Each handler parses, calls ``scores.service`` and renders (``wire``); a missing score or
revision is 404 with Flat's own codes.
"""

from __future__ import annotations

import logging
from typing import Any, Final

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from mediatasks import errors
from mediatasks.api import blobfile
from mediatasks.api.flat import body, schemas, tasks, wire
from mediatasks.api.flat.auth import FlatError, Key, RuntimeDep, SignerDep
from mediatasks.api.runtime import Runtime
from mediatasks.scores import export, musicxml, thumbnail
from mediatasks.scores import score as score_module
from mediatasks.scores import service as scores_service

__all__ = ["find_revision", "find_score", "revision_headers", "router"]

log = logging.getLogger(__name__)

router = APIRouter()

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


async def find_score(runtime: Runtime, project_id: str, score_id: str) -> score_module.Score:
    """The project's score, or 404 ``SCORE_NOT_FOUND``."""
    try:
        return await scores_service.get_score(runtime.blobs, project_id, score_id)
    except errors.NotFound:
        raise FlatError(404, "SCORE_NOT_FOUND", f"score {score_id!r} not found") from None


def find_revision(owner: score_module.Score, ref: str) -> score_module.Revision:
    """The score's revision ``ref`` (an id or ``last``), or 404 ``SCORE_REVISION_NOT_FOUND``."""
    try:
        return owner.revision(ref)
    except errors.NotFound as exc:
        raise FlatError(404, "SCORE_REVISION_NOT_FOUND", exc.message) from None


def revision_headers(revision: score_module.Revision) -> dict[str, str]:
    """Flat's headers naming the revision an answer comes from."""
    return {
        "X-Flat-Score-Revision": revision.id,
        "X-Flat-Score-Revision-Date": wire.rfc3339(revision.created_at),
    }


def _score_response(owner: score_module.Score, request: Request, runtime: Runtime) -> JSONResponse:
    return JSONResponse(
        wire.score_json(owner, base_url=runtime.base_url(str(request.base_url))),
        headers=revision_headers(owner.last_revision),
    )


@router.post("/scores")
async def create_score(request: Request, key: Key, runtime: RuntimeDep) -> JSONResponse:
    creation = body.validate(
        schemas.ScoreCreation,
        await body.read_json(request, body.MAX_SCORE_BODY_BYTES, code="SCORE_TOO_LARGE"),
    )
    if creation.data is None:
        raise FlatError(
            400,
            "SCORE_UNSUPPORTED_FORMAT",
            "only file imports are supported: send the score file in `data` "
            "(MusicXML, MXL or MIDI)",
        )
    try:
        created = await scores_service.import_score(
            runtime.blobs,
            project_id=key.project_id,
            data=creation.data,
            data_encoding=creation.data_encoding,
            filename=creation.filename,
            title=creation.title,
            privacy=creation.privacy or "private",
        )
    except errors.InvalidInput as exc:
        raise FlatError(400, "SCORE_UNSUPPORTED_FORMAT", exc.message) from None
    log.info("score %s created from %s", created.id, created.last_revision.source_format)
    return _score_response(created, request, runtime)


@router.get("/scores/{score_id}")
async def get_score(score_id: str, request: Request, key: Key, runtime: RuntimeDep) -> JSONResponse:
    owner = await find_score(runtime, key.project_id, score_id)
    return _score_response(owner, request, runtime)


@router.get("/scores/{score_id}/revisions")
async def list_revisions(score_id: str, key: Key, runtime: RuntimeDep) -> list[dict[str, Any]]:
    owner = await find_score(runtime, key.project_id, score_id)
    return [wire.revision_json(owner, revision) for revision in owner.revisions]


@router.get("/scores/{score_id}/revisions/{revision_id}")
async def get_revision(
    score_id: str, revision_id: str, key: Key, runtime: RuntimeDep
) -> dict[str, Any]:
    owner = await find_score(runtime, key.project_id, score_id)
    return wire.revision_json(owner, find_revision(owner, revision_id))


@router.get("/scores/{score_id}/revisions/{revision_id}/{file_format}")
async def get_revision_data(
    score_id: str,
    revision_id: str,
    file_format: str,
    key: Key,
    runtime: RuntimeDep,
    parts: str | None = None,
) -> Response:
    owner = await find_score(runtime, key.project_id, score_id)
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
        selected = scores_service.select_parts(revision, part_ids)
    except errors.InvalidInput as exc:
        raise FlatError(400, "CLIENT_ERROR", exc.message) from None
    headers = {
        **revision_headers(revision),
        "Content-Disposition": f'attachment; filename="{owner.id}.{_DOWNLOAD_NAMES[file_format]}"',
    }
    media_type = _DOWNLOAD_TYPES[file_format]
    if file_format in export.AUDIO_FORMATS:
        audio_key = await scores_service.latest_rendering(
            runtime.blobs, owner, revision, file_format, selected
        )
        if audio_key is None:
            raise FlatError(
                404,
                "SCORE_EXPORT_NOT_FOUND",
                f"this revision has no {file_format} rendering of these parts yet: create "
                f"one with POST /v2/scores/{owner.id}/revisions/{revision.id}/"
                f"{file_format}/task and wait for it to be done",
            )
        return await blobfile.blob_response(runtime.blobs, audio_key, media_type, headers)
    try:
        if file_format == "thumbnail.png":
            png = await scores_service.thumbnail_png(runtime.blobs, owner, revision, selected)
            del headers["Content-Disposition"]  # an image to show, not a file to save
            return Response(content=png, media_type=media_type, headers=headers)
        data = await scores_service.revision_file(
            runtime.blobs, owner, revision, file_format, selected
        )
    except errors.InvalidInput as exc:
        raise FlatError(400, "SCORE_RENDER_FAILED", exc.message) from None
    return Response(content=data, media_type=media_type, headers=headers)


@router.post("/scores/{score_id}/revisions/{revision_id}/{file_format}/task")
async def create_export_task(
    score_id: str,
    revision_id: str,
    file_format: str,
    request: Request,
    key: Key,
    runtime: RuntimeDep,
    signer: SignerDep,
) -> dict[str, Any]:
    options = body.validate(
        schemas.TaskExportOptions,
        await body.read_json(request, body.MAX_BODY_BYTES, code="CLIENT_ERROR", empty={}),
    )
    owner = await find_score(runtime, key.project_id, score_id)
    revision = find_revision(owner, revision_id)
    try:
        task = await scores_service.queue_export(
            runtime.store,
            runtime.blobs,
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
    return await tasks.render_task(task, request, runtime, signer)
