"""Rendering that needs the store: a task with its asset snapshot and queue position."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from mediatasks import errors, tasks
from mediatasks.api.livepeer import wire
from mediatasks.api.runtime import Runtime

__all__ = ["render_task", "visible_task"]


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


async def visible_task(runtime: Runtime, task_id: str, project: str) -> tasks.Task:
    """The project's task, if this dialect shows its type; ``NotFound`` otherwise."""
    task = await runtime.store.get_task(task_id, project)
    if task.type not in wire.VISIBLE_TYPES:
        raise errors.NotFound("task not found")
    return task
