"""Error answers of the ``/api`` dialect: ``{"errors": [...]}`` with the status an error means.

The application's exception handlers answer with these, and so does ``reads.TaskReads``, which
answers the two task reads before the application's routing: one mapping for both.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

from fastapi.responses import JSONResponse

from mediatasks import errors
from mediatasks.api.livepeer.auth import ApiError

__all__ = ["domain_error", "error_of", "errors_response"]

log = logging.getLogger("mediatasks.api.livepeer.routes")

_DOMAIN_STATUS: Sequence[tuple[type[errors.MediaTasksError], int]] = (
    (errors.NotFound, 404),
    (errors.LeaseLost, 409),
    (errors.InvalidTransition, 400),
    (errors.Conflict, 409),
    (errors.InvalidInput, 422),
    (errors.Unavailable, 503),
)


def errors_response(
    status: int, *messages: str, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    """``{"errors": messages}`` with ``status``."""
    return JSONResponse({"errors": list(messages)}, status_code=status, headers=headers)


def domain_error(exc: errors.MediaTasksError) -> JSONResponse:
    """The answer of an error of the domain (``errors``): 404, 409, 400, 422, 503, else 500."""
    for kind, status in _DOMAIN_STATUS:
        if isinstance(exc, kind):
            return errors_response(status, exc.message)
    log.error("unmapped error: %r", exc)
    return errors_response(500, "Internal server error")


def error_of(exc: Exception) -> JSONResponse | None:
    """The answer of an ``ApiError`` or a domain error; ``None`` for any other exception."""
    if isinstance(exc, ApiError):
        return errors_response(exc.status, exc.message)
    if isinstance(exc, errors.MediaTasksError):
        return domain_error(exc)
    return None
