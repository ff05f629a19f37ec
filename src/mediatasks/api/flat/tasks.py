"""``/tasks``: follow and cancel audio exports, and ``/exports``: their signed download links.

Only ``audio-export`` tasks exist here; any other id is 404 ``TASK_NOT_FOUND``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from mediatasks import errors
from mediatasks import tasks as tasks_module
from mediatasks.api import blobfile
from mediatasks.api.flat import links, wire
from mediatasks.api.flat.auth import FlatError, Key, RuntimeDep, SignerDep
from mediatasks.api.runtime import Runtime
from mediatasks.scores import export
from mediatasks.scores import service as scores_service

__all__ = ["render_task", "result_url", "router"]

router = APIRouter()


async def _find_task(runtime: Runtime, project_id: str, task_id: str) -> tasks_module.Task:
    try:
        return await scores_service.get_export(runtime.store, project_id, task_id)
    except errors.NotFound:
        raise FlatError(404, "TASK_NOT_FOUND", f"task {task_id!r} not found") from None


def result_url(
    task: tasks_module.Task, signer: links.Signer, base: str, now: datetime
) -> str | None:
    """The signed link to a completed export's file; ``None`` before it is done."""
    key = scores_service.exported_audio_key(task)
    if key is None:
        return None
    expires = signer.expires(now)
    name = key.rsplit("/", 1)[-1]
    signature = signer.signature(task.id, expires)
    return f"{base}/v2/exports/{task.id}/{name}?expires={expires}&signature={signature}"


async def render_task(
    task: tasks_module.Task, request: Request, runtime: Runtime, signer: links.Signer
) -> dict[str, Any]:
    """A task in Flat's shape, its result link made for this request's base URL."""
    events = await scores_service.all_events(runtime.store, task.id)
    url = None
    if task.phase is tasks_module.Phase.COMPLETED:
        base = runtime.base_url(str(request.base_url))
        url = result_url(task, signer, base, datetime.now(UTC))
    return wire.task_json(task, events, result_url=url)


@router.get("/tasks")
async def list_tasks(
    request: Request,
    key: Key,
    runtime: RuntimeDep,
    signer: SignerDep,
    limit: int = 20,
    state: str | None = None,
) -> list[dict[str, Any]]:
    """This project's audio-export tasks, newest first: an addition of this service (Flat
    has no task list; the official client has no call for it, so nothing changes for it).
    ``state`` keeps one of Flat's states; ``limit`` is 1 to 100."""
    if not 1 <= limit <= 100:
        raise FlatError(400, "CLIENT_ERROR", "limit must be between 1 and 100")
    phases = [phase for phase, name in wire.STATES.items() if name == state]
    if state is not None and not phases:
        raise FlatError(400, "CLIENT_ERROR", f"unknown task state {state!r}")
    found = await scores_service.list_exports(
        runtime.store, key.project_id, limit=limit, phases=phases
    )
    return [await render_task(task, request, runtime, signer) for task in found]


@router.get("/tasks/{task_id}")
async def get_task(
    task_id: str, request: Request, key: Key, runtime: RuntimeDep, signer: SignerDep
) -> dict[str, Any]:
    task = await _find_task(runtime, key.project_id, task_id)
    return await render_task(task, request, runtime, signer)


@router.post("/tasks/{task_id}/cancel")
async def cancel_task(
    task_id: str, request: Request, key: Key, runtime: RuntimeDep, signer: SignerDep
) -> dict[str, Any]:
    """Cancel a task that is still ``created`` (an addition of this service)."""
    try:
        task = await scores_service.cancel_export(runtime.store, key.project_id, task_id)
    except errors.NotFound:
        raise FlatError(404, "TASK_NOT_FOUND", f"task {task_id!r} not found") from None
    except errors.InvalidTransition:
        task = await _find_task(runtime, key.project_id, task_id)
        raise FlatError(
            400,
            "TASK_NOT_CANCELLABLE",
            f"task {task.id} is {wire.STATES[task.phase]}: only a task that is still "
            "created can be canceled",
        ) from None
    return await render_task(task, request, runtime, signer)


@router.get("/exports/{task_id}/{filename}", include_in_schema=False)
async def download(
    task_id: str,
    filename: str,
    runtime: RuntimeDep,
    signer: SignerDep,
    expires: str = "",
    signature: str = "",
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
    audio_key = scores_service.exported_audio_key(task) if task is not None else None
    if task is None or audio_key is None or audio_key.rsplit("/", 1)[-1] != filename:
        raise FlatError(404, "NOT_FOUND", "this file does not exist (anymore)")
    media_type = export.MEDIA_TYPES.get(Path(filename).suffix.lstrip("."), "audio/mpeg")
    return await blobfile.blob_response(runtime.blobs, audio_key, media_type, {})
