"""The overview at ``/``: the workers seen in the last minute and what each runs for this
project."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Final

from fastapi import APIRouter, Request
from fastapi.responses import Response

from mediatasks.api.runtime import Runtime
from mediatasks.web import render, session

__all__ = ["create_router"]

#: Workers seen within this long count as alive.
WORKERS_SEEN_WITHIN: Final = timedelta(minutes=1)


def create_router(runtime: Runtime) -> APIRouter:
    """``/``."""
    router = APIRouter()

    @router.get("/")
    async def overview(request: Request, current: session.Current) -> Response:
        now = datetime.now(UTC)
        workers = await runtime.store.list_workers(now - WORKERS_SEEN_WITHIN)
        mine = [
            (worker, [task for task in worker.running if task.project_id == current.project_id])
            for worker in workers
        ]
        return render.render(request, "overview.html", current, workers=mine, now=now)

    return router
