"""The overview at ``/``: how the project's work went over the last hour, and what runs now.

Three parts, all of the signed-in project alone: the tasks completed and failed per minute over
the last hour (a uPlot chart, with the same numbers as a table), the queue depth per task type
now (pending, waiting, running), and the workers seen in the last minute with the project's
tasks each one runs.  ``/overview/live`` answers the same parts as a fragment, which the page
fetches every few seconds (htmx polling) and swaps in; the chart reads its numbers from it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from fastapi import APIRouter, Request
from fastapi.responses import Response

from mediatasks import tasks, taskstore
from mediatasks.api.runtime import Runtime
from mediatasks.web import render, session

__all__ = ["HOUR_MINUTES", "REFRESH_S", "WORKERS_SEEN_WITHIN", "create_router"]

#: Workers seen within this long count as alive.
WORKERS_SEEN_WITHIN: Final = timedelta(minutes=1)
#: The chart's span, in minutes (one bar of each kind per minute).
HOUR_MINUTES: Final = 60
#: How often the page refreshes its live parts.
REFRESH_S: Final = 5
_QUEUED: Final = (tasks.Phase.PENDING, tasks.Phase.WAITING, tasks.Phase.RUNNING)


@dataclasses.dataclass(frozen=True, kw_only=True)
class QueueRow:
    """The unfinished tasks of one type."""

    type: str
    pending: int
    waiting: int
    running: int

    @property
    def total(self) -> int:
        return self.pending + self.waiting + self.running


@dataclasses.dataclass(frozen=True, kw_only=True)
class WorkerRow:
    """A worker seen lately, and the project's tasks it runs."""

    worker: taskstore.WorkerRecord
    running: Sequence[taskstore.RunningTask]
    seen_s_ago: int


def _queue_rows(depth: Mapping[tuple[str, tasks.Phase], int]) -> list[QueueRow]:
    types = sorted({kind for kind, _ in depth})
    return [
        QueueRow(
            type=kind,
            pending=depth.get((kind, tasks.Phase.PENDING), 0),
            waiting=depth.get((kind, tasks.Phase.WAITING), 0),
            running=depth.get((kind, tasks.Phase.RUNNING), 0),
        )
        for kind in types
    ]


def _chart_data(counts: Sequence[taskstore.FinishedCount]) -> dict[str, list[Any]]:
    """The chart's series, as uPlot takes them: Unix seconds, completed, failed."""
    return {
        "t": [int(count.start.timestamp()) for count in counts],
        "completed": [count.completed for count in counts],
        "failed": [count.failed for count in counts],
    }


def create_router(runtime: Runtime) -> APIRouter:
    """``/`` and its live fragment ``/overview/live``."""
    router = APIRouter()

    async def live_parts(current: session.Session) -> dict[str, Any]:
        now = datetime.now(UTC)
        until = now.replace(second=0, microsecond=0) + timedelta(minutes=1)
        since = until - timedelta(minutes=HOUR_MINUTES)
        store = runtime.store
        counts = await store.finished_counts(current.project_id, since=since, until=until)
        depth = await store.queue_depth(current.project_id)
        workers = await store.list_workers(now - WORKERS_SEEN_WITHIN)
        rows = [
            WorkerRow(
                worker=worker,
                running=[t for t in worker.running if t.project_id == current.project_id],
                seen_s_ago=max(0, int((now - worker.last_seen_at).total_seconds())),
            )
            for worker in workers
        ]
        return {
            "chart": _chart_data(counts),
            "completed_hour": sum(count.completed for count in counts),
            "failed_hour": sum(count.failed for count in counts),
            "counts": counts,
            "queue": _queue_rows(depth),
            "workers": rows,
            "refresh_s": REFRESH_S,
            "updated_at": now,
        }

    @router.get("/")
    async def overview(request: Request, current: session.Current) -> Response:
        parts = await live_parts(current)
        return render.render(request, "overview.html", current, **parts)

    @router.get("/overview/live")
    async def overview_live(request: Request, current: session.Current) -> Response:
        parts = await live_parts(current)
        return render.render(request, "_overview_live.html", current, **parts)

    return router
