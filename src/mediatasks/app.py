"""The application factory: ``create_app(settings)`` gives the whole HTTP service.

``/api`` speaks Livepeer Studio's API, ``/v2`` Flat's, ``/media`` serves assets' published media
as their playback policies allow (``mediatasks.api.media``).  ``/metrics`` (Prometheus),
``/healthz`` and ``/readyz`` are for the people who run it (``telemetry``, ``health``); the rest
of ``/`` is the dashboard, pages for people (``mediatasks.web``).  Unless
``with_worker`` is false, the same process also runs a worker: the embedded shape.  Every process
also runs a webhook sender.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from mediatasks import __version__, telemetry, web
from mediatasks import settings as settings_module
from mediatasks.api import docs, health, media
from mediatasks.api.flat.routes import create_flat_app
from mediatasks.api.livepeer import reads
from mediatasks.api.livepeer.routes import create_livepeer_app
from mediatasks.api.runtime import Runtime, open_runtime
from mediatasks.web import render as web_render
from mediatasks.webhooks import sender
from mediatasks.worker import handlers, loop

__all__ = ["create_app", "open_runtime"]

log = logging.getLogger(__name__)


def create_app(
    settings: settings_module.Settings,
    *,
    with_worker: bool = True,
    runtime: Runtime | None = None,
) -> FastAPI:
    """The service, ready for uvicorn.  The store is migrated when the app starts."""
    owned = runtime is None
    opened = runtime or open_runtime(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await opened.store.migrate()
        worker = None
        worker_job = None
        if with_worker:
            worker = loop.Worker(settings, opened.store, opened.blobs, handlers.registry())
            worker_job = asyncio.create_task(worker.run(), name="worker")
        hooks = sender.Sender(settings, opened.store)
        hooks_job = asyncio.create_task(hooks.run(), name="webhooks")
        try:
            yield
        finally:
            if worker is not None and worker_job is not None:
                worker.stop()
                await worker_job
            hooks.stop()
            await hooks_job
            if owned:
                await opened.blobs.close()
                await opened.store.close()

    app = FastAPI(
        title="mediatasks",
        version=__version__,
        lifespan=lifespan,
        telemetry=telemetry.NO_OPENTELEMETRY,
        openapi_url=None,  # docs.install serves /openapi.json and /docs, offline
        docs_url=None,
        redoc_url=None,
    )
    app.state.runtime = opened
    livepeer = create_livepeer_app(opened)
    # Inside HttpMetrics (added after it, so it runs first), which counts what it answers.
    app.add_middleware(reads.TaskReads, runtime=opened, livepeer=livepeer)
    app.add_middleware(telemetry.HttpMetrics)
    app.include_router(health.router)
    depth = telemetry.QueueDepth(opened.store, timeout_s=settings.readiness_timeout_s)

    @app.exception_handler(StarletteHTTPException)
    async def outer_http_error(request: Request, exc: StarletteHTTPException) -> Response:
        """A path that reaches no mount (``/api/task/x%0A``: a mount's pattern stops at a
        newline) still answers in its dialect's error shape."""
        if request.url.path.startswith("/api/"):
            return JSONResponse(
                {"errors": [str(exc.detail)]}, status_code=exc.status_code, headers=exc.headers
            )
        if "text/html" in request.headers.get("accept", ""):
            return web_render.error_response(
                request, exc.status_code, str(exc.detail), headers=exc.headers
            )
        return await http_exception_handler(request, exc)

    @app.exception_handler(web_render.PageError)
    async def page_error(request: Request, exc: web_render.PageError) -> Response:
        """A page that cannot be shown (not signed in, a forged form, ...) says so."""
        return exc.response(request)

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(await telemetry.render(depth), media_type=telemetry.CONTENT_TYPE)

    app.include_router(media.create_media_router(opened))
    flat = create_flat_app(opened)
    app.mount("/api", livepeer)
    app.mount("/v2", flat)
    docs.install(
        app,
        [
            docs.Dialect(
                prefix="/api", app=livepeer, tag="Livepeer Studio (/api)", slug="Livepeer"
            ),
            docs.Dialect(prefix="/v2", app=flat, tag="Flat (/v2)", slug="Flat"),
        ],
    )
    app.include_router(web.create_web_router(opened))

    return app
