"""``GET /task/{taskId}/events``: a task's live events (SSE) or its whole timeline (JSON).

With ``Accept: text/event-stream`` each row of the task's event log is sent as it is written
(transitions and progress), from after ``Last-Event-ID`` when the client resumes; the stream ends
after the task reaches a terminal phase.  Otherwise the answer is the timeline: phases with their
times, and each attempt with its worker, duration, outcome, FFmpeg command and version, and the
tail of FFmpeg's error output when it failed.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncIterator, Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Request, Response
from fastapi.responses import StreamingResponse

from mediatasks import tasks
from mediatasks.api.livepeer import views, wire
from mediatasks.api.livepeer.auth import Project, runtime_of
from mediatasks.api.runtime import Runtime

__all__ = ["router", "timeline"]

router = APIRouter()
RuntimeDep = Annotated[Runtime, Depends(runtime_of)]

#: Event names that end an attempt, and what they mean for it.
_ATTEMPT_ENDS = {
    "complete": "completed",
    "fail": "failed",
    "retry_later": "retried",
    "rescue": "lost",
    "cancel": "cancelled",
    "release": "released",
}
_POLL_S = 0.2
_KEEPALIVE_S = 15.0


def event_json(event: tasks.TaskEvent) -> dict[str, Any]:
    """One row of the event log."""
    body: dict[str, Any] = {
        "id": event.id,
        "event": event.name,
        "phase": str(event.phase),
        "at": wire.ms(event.at),
    }
    if event.progress is not None:
        body["progress"] = round(event.progress, 3)
    if event.data:
        body["data"] = dict(event.data)
    return body


def timeline(events: Sequence[tasks.TaskEvent]) -> dict[str, Any]:
    """Phases and attempts, reconstructed from a task's event log."""
    phases: list[dict[str, Any]] = []
    attempts: list[dict[str, Any]] = []
    current: dict[str, Any] | None = None
    for event in events:
        if not phases or phases[-1]["phase"] != str(event.phase):
            phases.append({"phase": str(event.phase), "at": wire.ms(event.at)})
        if event.name == "claim":
            current = {
                "attempt": event.data.get("attempt"),
                "worker": event.data.get("worker"),
                "startedAt": wire.ms(event.at),
                "outcome": "running",
            }
            attempts.append(current)
        elif event.name in _ATTEMPT_ENDS and current is not None:
            current["endedAt"] = wire.ms(event.at)
            current["durationMs"] = current["endedAt"] - current["startedAt"]
            current["outcome"] = _ATTEMPT_ENDS[event.name]
            for key in ("error", "ffmpeg", "stderr"):
                if key in event.data:
                    current[key] = event.data[key]
            current = None
    for entry, following in itertools.pairwise(phases):
        entry["durationMs"] = following["at"] - entry["at"]
    return {"phases": phases, "attempts": attempts}


def _sse(event: tasks.TaskEvent) -> bytes:
    data = json.dumps(event_json(event), separators=(",", ":"))
    return f"id: {event.id}\nevent: {event.name}\ndata: {data}\n\n".encode()


@router.get("/task/{task_id}/events", response_model=None)
async def task_events(
    task_id: str,
    request: Request,
    project: Project,
    runtime: RuntimeDep,
    accept: Annotated[str, Header()] = "",
    last_event_id: Annotated[str, Header()] = "",
) -> Response | dict[str, Any]:
    task = await views.visible_task(runtime, task_id, project)
    if "text/event-stream" not in accept:
        events = await runtime.store.list_events(task.id, limit=100_000)
        base = runtime.base_url(str(request.base_url))
        return {
            "task": await views.render_task(runtime, task, base),
            **timeline(events),
            "events": [event_json(event) for event in events],
        }
    # An id is a 64-bit row id: anything else resumes from the start.
    after_id = int(last_event_id) if last_event_id.isdigit() and len(last_event_id) < 19 else 0
    return StreamingResponse(
        _stream(runtime, task.id, after_id, request),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def _stream(
    runtime: Runtime, task_id: str, after_id: int, request: Request
) -> AsyncIterator[bytes]:
    loop = asyncio.get_running_loop()
    last_sent = loop.time()
    yield b"retry: 1000\n\n"
    while not await request.is_disconnected():
        events = await runtime.store.list_events(task_id, after_id=after_id)
        for event in events:
            yield _sse(event)
            after_id = event.id
            last_sent = loop.time()
        if events and events[-1].phase in tasks.TERMINAL:
            return
        if loop.time() - last_sent >= _KEEPALIVE_S:
            yield b": keep-alive\n\n"
            last_sent = loop.time()
        await asyncio.sleep(_POLL_S)
