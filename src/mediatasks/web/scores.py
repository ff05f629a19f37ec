"""``/scores``: the project's Flat scores, a file import, and audio exports (mp3 or wav) whose
progress moves on the page until an audio player plays the result.

The pages call ``scores.service``, as ``/v2`` does.  An unfinished export's row asks for itself
again every second (htmx) and stops once the export has ended, so a player, once shown, is never
replaced while it plays.  The audio is served to the signed-in project only.
"""

from __future__ import annotations

import base64
from typing import Any, Final

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from mediatasks import errors, tasks
from mediatasks.api import blobfile
from mediatasks.api.runtime import Runtime
from mediatasks.scores import export, source
from mediatasks.scores import score as score_module
from mediatasks.scores import service as scores_service
from mediatasks.web import render, session

__all__ = ["EXPORTS_SHOWN", "REFRESH_S", "create_router"]

#: How often an unfinished export's row refreshes itself, in seconds.
REFRESH_S: Final = 1
#: How many of a score's exports its page lists, newest first.
EXPORTS_SHOWN: Final = 20
#: The largest file the import form takes (what ``/v2`` takes, once decoded).
MAX_FILE_BYTES: Final = source.MAX_SOURCE_BYTES
_ACCEPT: Final = ".musicxml,.xml,.mxl,.mid,.midi"


def _state_text(task: tasks.Task) -> str:
    """What an export is doing, in words."""
    if task.phase is tasks.Phase.RUNNING:
        return export.step_text(task.progress or 0.0)
    if task.phase in scores_service.QUEUED:
        return "Waiting to be retried" if task.retries else "Waiting for a worker"
    if task.phase is tasks.Phase.COMPLETED:
        return "Done"
    if task.phase is tasks.Phase.FAILED:
        return task.error_message or "Failed"
    return "Cancelled"


def _export_view(task: tasks.Task) -> dict[str, Any]:
    params = task.params
    return {
        "task": task,
        "format": str(params.get("format", "")),
        "parts": list(params.get("parts") or []),
        "live": task.phase not in tasks.TERMINAL,
        "text": _state_text(task),
        "audio": scores_service.exported_audio_key(task) is not None,
        "media_type": export.MEDIA_TYPES.get(str(params.get("format", "")), "audio/mpeg"),
    }


def create_router(runtime: Runtime) -> APIRouter:
    """``/scores`` and the pages under it."""
    router = APIRouter()

    async def find_score(score_id: str, current: session.Session) -> score_module.Score:
        try:
            return await scores_service.get_score(runtime.blobs, current.project_id, score_id)
        except errors.NotFound:
            raise render.PageError(404, "This score does not exist (anymore).") from None

    async def find_export(task_id: str, current: session.Session) -> tasks.Task:
        try:
            return await scores_service.get_export(runtime.store, current.project_id, task_id)
        except errors.NotFound:
            raise render.PageError(404, "This export does not exist.") from None

    def list_page(
        request: Request,
        current: session.Session,
        found: list[score_module.Score],
        *,
        problem: str = "",
        status_code: int = 200,
    ) -> Response:
        return render.render(
            request,
            "scores.html",
            current,
            status_code=status_code,
            scores=found,
            problem=problem,
            accept=_ACCEPT,
            max_mib=MAX_FILE_BYTES // 1024**2,
        )

    @router.get("/scores")
    async def list_scores(request: Request, current: session.Current) -> Response:
        found = await scores_service.list_scores(runtime.blobs, current.project_id)
        return list_page(request, current, found)

    @router.post("/scores")
    async def import_score(request: Request, current: session.Current) -> Response:
        form = await request.form()
        upload = form.get("file")
        title = form.get("title")
        problem = ""
        data = b""
        filename = None
        if upload is None or isinstance(upload, str) or not upload.filename:
            problem = "Choose a score file to import (MusicXML, MXL or MIDI)."
        else:
            filename = upload.filename
            data = await upload.read(MAX_FILE_BYTES + 1)
            if len(data) > MAX_FILE_BYTES:
                problem = f"The file is larger than {MAX_FILE_BYTES // 1024**2} MiB."
            elif not data:
                problem = "The file is empty."
        if not problem:
            try:
                created = await scores_service.import_score(
                    runtime.blobs,
                    project_id=current.project_id,
                    data=base64.b64encode(data).decode(),
                    data_encoding="base64",
                    filename=filename,
                    title=title if isinstance(title, str) else None,
                )
            except errors.InvalidInput as exc:
                problem = f"This file cannot be imported: {exc.message}"
            else:
                return RedirectResponse(f"/scores/{created.id}?imported=1", status_code=303)
        found = await scores_service.list_scores(runtime.blobs, current.project_id)
        return list_page(request, current, found, problem=problem, status_code=422)

    async def score_page(
        request: Request,
        current: session.Session,
        owner: score_module.Score,
        *,
        problem: str = "",
        status_code: int = 200,
    ) -> Response:
        exports = await scores_service.list_exports(
            runtime.store, current.project_id, limit=EXPORTS_SHOWN, score_id=owner.id
        )
        return render.render(
            request,
            "score.html",
            current,
            status_code=status_code,
            score=owner,
            revision=owner.last_revision,
            exports=[_export_view(task) for task in exports],
            formats=export.AUDIO_FORMATS,
            imported=request.query_params.get("imported") == "1",
            problem=problem,
            refresh_s=REFRESH_S,
        )

    @router.get("/scores/{score_id}")
    async def show_score(score_id: str, request: Request, current: session.Current) -> Response:
        return await score_page(request, current, await find_score(score_id, current))

    @router.post("/scores/{score_id}/exports")
    async def create_export(score_id: str, request: Request, current: session.Current) -> Response:
        owner = await find_score(score_id, current)
        form = await request.form()
        audio_format = form.get("format")
        parts = [p for p in form.getlist("parts") if isinstance(p, str)]
        try:
            await scores_service.queue_export(
                runtime.store,
                runtime.blobs,
                project_id=current.project_id,
                score_id=owner.id,
                revision_ref=owner.last_revision.id,
                audio_format=audio_format if isinstance(audio_format, str) else "",
                part_ids=parts or None,
                max_retries=runtime.settings.max_retries,
            )
        except errors.InvalidInput as exc:
            return await score_page(request, current, owner, problem=exc.message, status_code=422)
        return RedirectResponse(f"/scores/{owner.id}", status_code=303)

    @router.get("/scores/exports/{task_id}/row")
    async def export_row(task_id: str, request: Request, current: session.Current) -> Response:
        """One export's row: what an unfinished row refreshes itself with."""
        task = await find_export(task_id, current)
        return render.render(
            request, "_score_export.html", current, item=_export_view(task), refresh_s=REFRESH_S
        )

    @router.get("/scores/exports/{task_id}/audio")
    async def export_audio(task_id: str, current: session.Current) -> Response:
        task = await find_export(task_id, current)
        key = scores_service.exported_audio_key(task)
        if key is None:
            raise render.PageError(404, "This export has no audio yet.")
        media_type = export.MEDIA_TYPES.get(str(task.params.get("format")), "audio/mpeg")
        name = f"{task.params.get('score', 'score')}.{task.params.get('format', 'mp3')}"
        headers = {"Content-Disposition": f'inline; filename="{name}"'}
        try:
            return await blobfile.blob_response(runtime.blobs, key, media_type, headers)
        except errors.NotFound:
            raise render.PageError(404, "This export's audio is gone.") from None

    return router
