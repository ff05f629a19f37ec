"""Tasks, scores and errors in Flat's JSON shape, as the official ``flat-api`` client parses them.

Everything here is a pure function of stored records.  The Task view follows DESIGN.md's table:
``pending`` and ``waiting`` are ``created`` (never ``blocked``, which older clients reject),
``running`` is ``doing``, then ``done``, ``error`` or ``canceled``.  Dates are RFC 3339 in UTC
with milliseconds and ``Z``; ``progress.percent`` is 0 to 100 and its ``text`` follows from the
progress value (``scores.export.step_text``); ``errorHistory`` has one entry per failed attempt.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Final

from mediatasks import tasks
from mediatasks.scores import export
from mediatasks.scores import score as score_module

__all__ = [
    "AVATAR",
    "FAILURE_EVENTS",
    "STATES",
    "error_history",
    "error_json",
    "progress_json",
    "revision_json",
    "rfc3339",
    "score_json",
    "task_json",
    "user_json",
]

#: Flat's task state for each phase.
STATES: Final[Mapping[tasks.Phase, str]] = {
    tasks.Phase.PENDING: "created",
    tasks.Phase.WAITING: "created",
    tasks.Phase.RUNNING: "doing",
    tasks.Phase.COMPLETED: "done",
    tasks.Phase.FAILED: "error",
    tasks.Phase.CANCELLED: "canceled",
}
#: The task events that end an attempt in failure.
FAILURE_EVENTS: Final = frozenset({"retry_later", "rescue", "fail"})
#: ``user.picture`` must be a string: a neutral one-colour avatar, needing no route.
AVATAR: Final = (
    "data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 1 1'%3E"
    "%3Crect width='1' height='1' fill='%23ccc'/%3E%3C/svg%3E"
)
#: The message of a failed task that recorded none.
_UNKNOWN_ERROR: Final = "Unable to export the score"


def rfc3339(moment: datetime) -> str:
    """``2026-11-22T10:00:02.010Z``: UTC, milliseconds, ``Z``."""
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def _percent(fraction: float | None) -> float | int:
    value = round(max(0.0, min(1.0, fraction or 0.0)) * 100, 1)
    return int(value) if value.is_integer() else value


def progress_json(task: tasks.Task) -> dict[str, Any]:
    """``{"percent": 0..100, "text": ...}`` for the task's phase and progress."""
    state = STATES[task.phase]
    if state == "done":
        return {"percent": 100, "text": "Done"}
    if state == "doing":
        fraction = task.progress or 0.0
        return {"percent": _percent(fraction), "text": export.step_text(fraction)}
    if state == "created":
        text = "Waiting to be retried" if task.retries else "Waiting to be processed"
        return {"percent": _percent(task.progress), "text": text}
    text = "Failed" if state == "error" else "Canceled"
    return {"percent": _percent(task.progress), "text": text}


def error_history(events: Iterable[tasks.TaskEvent]) -> list[str]:
    """One message per failed attempt, oldest first."""
    history = []
    for event in events:
        if event.name in FAILURE_EVENTS:
            message = event.data.get("error")
            history.append(str(message) if message else _UNKNOWN_ERROR)
    return history


def task_json(
    task: tasks.Task, events: Sequence[tasks.TaskEvent], *, result_url: str | None
) -> dict[str, Any]:
    """A task as Flat's ``GET /tasks/{task}`` returns it; ``result_url`` is used once done."""
    state = STATES[task.phase]
    params = task.params
    body: dict[str, Any] = {
        "id": task.id,
        "type": task.type,
        "state": state,
        "progress": progress_json(task),
        "creationDate": rfc3339(task.created_at),
        "modificationDate": rfc3339(task.updated_at),
        "isCancellable": state == "created",
    }
    for key in ("format", "score", "revision"):
        if isinstance(params.get(key), str):
            body[key] = params[key]
    if state in ("done", "error"):
        body["doneDate"] = rfc3339(task.updated_at)
    if state == "done" and result_url:
        body["result"] = {"url": result_url}
    elif state == "error":
        body["result"] = {"error": task.error_message or _UNKNOWN_ERROR}
    history = error_history(events)
    if history:
        body["errorHistory"] = history
    return body


def user_json(project_id: str) -> dict[str, Any]:
    """The owner of a project's scores, as a ``UserPublic``: the project itself."""
    return {
        "id": project_id,
        "type": "user",
        "product": "flat",
        "username": project_id,
        "printableName": f"Project {project_id[:8]}",
        "picture": AVATAR,
    }


def _part_json(part: score_module.Part) -> dict[str, Any]:
    return {"id": part.id, "name": part.name, "instrument": score_module.instrument_id(part)}


def score_json(owner: score_module.Score, *, base_url: str) -> dict[str, Any]:
    """A score as Flat's ``ScoreDetails``; its parts are in ``parts`` (an addition)."""
    user = user_json(owner.project_id)
    url = f"{base_url}/v2/scores/{owner.id}"
    parts = owner.last_revision.parts
    instruments = [score_module.instrument_id(part) for part in parts]
    body: dict[str, Any] = {
        "id": owner.id,
        "title": owner.title,
        "privacy": owner.privacy,
        "user": user,
        "htmlUrl": url,
        "editHtmlUrl": url,
        "collaborators": [
            {
                "id": f"{owner.id}-{owner.project_id}",
                "aclRead": True,
                "aclWrite": True,
                "aclAdmin": True,
                "isCollaborator": True,
                "collaboratorType": "owner",
                "score": owner.id,
                "user": user,
            }
        ],
        "creationDate": rfc3339(owner.created_at),
        "modificationDate": rfc3339(owner.modified_at),
        "instruments": instruments,
        "instrumentsNames": [part.name for part in parts],
        "samples": instruments,
        "parts": [_part_json(part) for part in parts],
        "lastRevision": owner.last_revision.id,
    }
    if owner.composer:
        body["composer"] = owner.composer
    return body


def revision_json(owner: score_module.Score, revision: score_module.Revision) -> dict[str, Any]:
    """A revision as Flat's ``ScoreRevision``; its parts are in ``parts`` (an addition)."""
    return {
        "id": revision.id,
        "score": owner.id,
        "user": owner.project_id,
        "date": rfc3339(revision.created_at),
        "autosave": False,
        "description": f"Imported from {revision.source_format.label}",
        "sourceFormat": str(revision.source_format),
        "parts": [_part_json(part) for part in revision.parts],
    }


def error_json(code: str, message: str, error_id: str | None = None) -> dict[str, Any]:
    """A ``FlatErrorResponse``."""
    body = {"code": code, "message": message}
    if error_id is not None:
        body["id"] = error_id
    return body
