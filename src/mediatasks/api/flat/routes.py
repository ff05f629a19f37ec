"""Flat's score and task endpoints, mounted at ``/v2``, for the official ``flat-api`` client.

Every error answers a ``FlatErrorResponse`` (``{"code", "message"}``): 401 without a valid key,
404 for ids this key's project does not have, 400 for a request that cannot be served (a
malformed body included: FastAPI's 422 is not Flat's).  A key sees only its own project's scores
and tasks, and only ``audio-export`` tasks exist here.  Statuses are exactly the ones the client
expects: 200 for ``POST /scores`` and ``POST .../task`` (anything else makes it fail).

The handlers live in one module per concern (``scores``, ``tasks``); each parses, calls
``mediatasks.scores.service`` and renders with ``wire``.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping, Sequence
from typing import Final

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from mediatasks import errors, telemetry
from mediatasks.api import docs
from mediatasks.api.flat import body, links, scores, tasks, wire
from mediatasks.api.flat.auth import FlatError
from mediatasks.api.runtime import Runtime

__all__ = ["FlatError", "create_flat_app"]

log = logging.getLogger(__name__)


def _error(
    status: int, code: str, message: str, *, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(wire.error_json(code, message), status_code=status, headers=headers)


#: Domain errors that reach the handlers: status and code, most specific first.
_DOMAIN_STATUS: Sequence[tuple[type[errors.MediaTasksError], int, str]] = (
    (errors.NotFound, 404, "NOT_FOUND"),
    (errors.LeaseLost, 409, "CONFLICT"),
    (errors.InvalidTransition, 400, "INVALID_STATE"),
    (errors.Conflict, 409, "CONFLICT"),
    (errors.InvalidInput, 400, "CLIENT_ERROR"),
    (errors.Unavailable, 503, "SERVICE_UNAVAILABLE"),
)
_HTTP_CODES: Final = {
    401: "UNAUTHORIZED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
}


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(FlatError)
    async def flat_error(_: Request, exc: FlatError) -> JSONResponse:
        return _error(exc.status, exc.code, exc.message)

    @app.exception_handler(errors.MediaTasksError)
    async def domain_error(_: Request, exc: errors.MediaTasksError) -> JSONResponse:
        for kind, status, code in _DOMAIN_STATUS:
            if isinstance(exc, kind):
                return _error(status, code, exc.message)
        return _internal(exc)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        return _error(400, "CLIENT_ERROR", body.validation_message(exc.errors()))

    @app.exception_handler(HTTPException)
    async def http_error(_: Request, exc: HTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, "CLIENT_ERROR")
        return _error(exc.status_code, code, str(exc.detail), headers=exc.headers)

    @app.exception_handler(Exception)
    async def unexpected(_: Request, exc: Exception) -> JSONResponse:
        return _internal(exc)


def _internal(exc: Exception) -> JSONResponse:
    error_id = str(uuid.uuid4())
    log.error("unexpected error %s", error_id, exc_info=exc)
    answer = wire.error_json("INTERNAL_ERROR", "Internal server error", error_id)
    return JSONResponse(answer, status_code=500)


def create_flat_app(runtime: Runtime) -> FastAPI:
    """The ``/v2`` application."""
    app = FastAPI(
        title="mediatasks: Flat API",
        telemetry=telemetry.NO_OPENTELEMETRY,
        description=(
            "Flat's score import and audio-export tasks.  `POST /tasks/{task}/cancel` and the "
            "`parts` of scores and revisions are additions of this service."
        ),
        version="2.0.0",
        docs_url=None,  # docs.add_pages: the same pages, served offline
        redoc_url=None,
    )
    docs.add_pages(app, title=app.title, openapi_url="/openapi.json")
    _install_error_handlers(app)
    app.state.runtime = runtime
    app.state.signer = links.Signer(links.secret_key(runtime.settings))
    app.include_router(scores.router)
    app.include_router(tasks.router)
    return app
