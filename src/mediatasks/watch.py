"""Following a project's tasks as they change: what a live page shows of each.

``follow`` reads the project's task event log, the log that ``GET /api/task/{id}/events``
streams for one task, and turns it into what a list of tasks needs to move without a reload:
the status of each task it watches (phase, progress, queue position, ETA) when it changes, and
the project's counts per phase when any of its tasks changed.  A waiting task's queue position
and a running task's ETA also move without an event of its own (other tasks are claimed, time
passes): they are read again every ``refresh_s``.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncGenerator, Mapping, Sequence
from datetime import UTC, datetime

from mediatasks import errors, tasks, taskstore

__all__ = ["Change", "TaskStatus", "follow", "status_of"]


@dataclasses.dataclass(frozen=True, kw_only=True)
class TaskStatus:
    """What a live page shows of one task."""

    id: str
    phase: tasks.Phase
    #: 0..1; only while running.
    progress: float | None
    #: 1 for the next task to run; only while waiting.
    queue_position: int | None
    #: When it should finish; only while running, once it made some progress.
    eta: datetime | None
    attempt: int
    retries: int
    error_message: str | None
    updated_at: datetime


@dataclasses.dataclass(frozen=True, kw_only=True)
class Change:
    """What moved since the last ``Change``."""

    #: The watched tasks whose status differs from the one last given.
    statuses: Sequence[TaskStatus] = ()
    #: The project's tasks per phase (of the followed types), when any of its tasks changed.
    counts: Mapping[tasks.Phase, int] | None = None
    #: How many tasks (of the followed types) were created since following started.
    created: int = 0


async def status_of(
    store: taskstore.TaskStore, task: tasks.Task, now: datetime | None = None
) -> TaskStatus:
    """The status of ``task`` as it is now; the queue position is the one ``/api`` shows."""
    now = now or datetime.now(UTC)
    position = None
    if task.phase is tasks.Phase.WAITING:
        position = await store.queue_position(task)
    running = task.phase is tasks.Phase.RUNNING
    return TaskStatus(
        id=task.id,
        phase=task.phase,
        progress=(task.progress or 0.0) if running else None,
        queue_position=position,
        eta=tasks.eta(task, now),
        attempt=task.attempt,
        retries=task.retries,
        error_message=None if task.phase is tasks.Phase.COMPLETED else task.error_message,
        updated_at=task.updated_at,
    )


def _same(a: TaskStatus, b: TaskStatus) -> bool:
    """Equal but for an ETA that moved by less than a second (it is recomputed each time)."""
    if a.eta is not None and b.eta is not None and abs((a.eta - b.eta).total_seconds()) < 1:
        return dataclasses.replace(a, eta=b.eta) == b
    return a == b


async def follow(
    store: taskstore.TaskStore,
    project_id: str,
    task_ids: Sequence[str],
    *,
    types: Sequence[str] = (),
    poll_s: float = 0.25,
    refresh_s: float = 2.0,
) -> AsyncGenerator[Change | None, None]:
    """Follow the project's tasks: first the status of each of ``task_ids`` and the counts, then
    a ``Change`` whenever something moved, and ``None`` after each poll that found nothing (the
    caller checks there whether its client is still listening).

    A task id that is not the project's (or whose type is not in ``types``, when given) is left
    out silently: nobody learns whether another project's task exists.
    """
    loop = asyncio.get_running_loop()
    after = await store.last_event_id(project_id)
    watched: dict[str, TaskStatus | None] = dict.fromkeys(task_ids)
    created = 0

    async def statuses(ids: Sequence[str]) -> list[TaskStatus]:
        moved = []
        for task_id in ids:
            try:
                task = await store.get_task(task_id, project_id)
            except errors.NotFound:
                watched.pop(task_id, None)
                continue
            if types and task.type not in types:
                watched.pop(task_id, None)
                continue
            status = await status_of(store, task)
            last = watched.get(task_id)
            if last is None or not _same(status, last):
                watched[task_id] = status
                moved.append(status)
        return moved

    first = await store.count_tasks_by_phase(project_id, types=types)
    yield Change(statuses=await statuses(list(watched)), counts=first)
    refreshed = loop.time()
    while True:
        await asyncio.sleep(poll_s)
        events = await store.list_project_events(project_id, after_id=after)
        changed_ids: set[str] = set()
        if events:
            after = events[-1].id
            changed_ids = {event.task_id for event in events}
            created += sum(
                1
                for event in events
                if event.name == "created" and (not types or event.data.get("type") in types)
            )
        ids = [task_id for task_id in watched if task_id in changed_ids]
        if loop.time() - refreshed >= refresh_s:
            refreshed = loop.time()
            ids = [
                task_id
                for task_id, last in watched.items()
                if task_id in changed_ids or last is None or last.phase in tasks.ACTIVE
            ]
        moved = await statuses(ids) if ids else []
        counts: Mapping[tasks.Phase, int] | None = None
        if events:
            counts = await store.count_tasks_by_phase(project_id, types=types)
        if moved or counts is not None:
            yield Change(statuses=moved, counts=counts, created=created)
        else:
            yield None
