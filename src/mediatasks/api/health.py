"""``GET /healthz`` and ``GET /readyz`` (what they check: ``mediatasks.health``)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from mediatasks import __version__
from mediatasks.health import check

__all__ = ["router"]

router = APIRouter(include_in_schema=False)


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """Alive: the process answers."""
    return {"status": "ok", "version": __version__}


@router.get("/readyz")
async def readyz(request: Request) -> JSONResponse:
    """Ready: both stores answer; else 503 with what did not."""
    runtime: Any = request.app.state.runtime
    found = await check(
        runtime.store, runtime.blobs, timeout_s=runtime.settings.readiness_timeout_s
    )
    body = {"status": "ready" if found.ready else "unavailable", "checks": found.parts}
    return JSONResponse(body, status_code=200 if found.ready else 503)
