"""Rendering that needs the store: a task with its asset snapshot and queue position."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
from fastapi.responses import Response

from mediatasks import errors, tasks, taskstore
from mediatasks.api.livepeer import wire
from mediatasks.api.runtime import Runtime

__all__ = ["Json", "render_task", "render_view", "visible_task", "visible_view"]


class Json(Response):
    """A JSON answer encoded by orjson: what a route returns when FastAPI's own validation and
    encoding of the value would cost more than the work of the route (a page of tasks)."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


async def render_task(runtime: Runtime, task: tasks.Task, base_url: str) -> dict[str, Any]:
    """A task in Livepeer's shape, with its asset snapshot, queue position and ETA."""
    output_asset = None
    if task.output_asset_id and task.output:
        try:
            output_asset = await runtime.store.get_asset(task.output_asset_id)
        except errors.NotFound:
            output_asset = None
    position = None
    if task.phase is tasks.Phase.WAITING:
        position = await runtime.store.queue_position(task)
    return wire.task_json(
        task,
        output_asset=output_asset,
        base_url=base_url,
        queue_position=position,
        now=datetime.now(UTC),
    )


def render_view(view: taskstore.TaskView, base_url: str) -> dict[str, Any]:
    """A task read with ``view_task`` or ``view_tasks``, in Livepeer's shape: no further read."""
    return wire.task_json(
        view.task,
        output_asset=view.output_asset,
        base_url=base_url,
        queue_position=view.queue_position,
        now=datetime.now(UTC),
    )


async def visible_view(runtime: Runtime, task_id: str, project: str) -> taskstore.TaskView:
    """``visible_task`` with what its answer shows, in one read of the store."""
    view = await runtime.store.view_task(task_id, project)
    if view.task.type not in wire.VISIBLE_TYPES:
        raise errors.NotFound("task not found")
    return view


async def visible_task(runtime: Runtime, task_id: str, project: str) -> tasks.Task:
    """The project's task, if this dialect shows its type; ``NotFound`` otherwise."""
    task = await runtime.store.get_task(task_id, project)
    if task.type not in wire.VISIBLE_TYPES:
        raise errors.NotFound("task not found")
    return task
